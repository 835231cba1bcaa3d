/* locks.c: a lock registry for a Python program, written the way real extensions still write
 * it (pygame's surface locks keep their owners the same way): the owners are held weakly,
 * and release_all() notifies each one through the borrowed pointer PyWeakref_GetObject
 * returns.
 *
 * The bug, on purpose: the owner's on_release() callback may drop the last strong reference
 * to the owner, and release_all() then writes to it. It "works" most of the time, reading
 * and writing freed memory. `wref-check -- python3 demo.py` reports it (scripts/demo.sh).
 * The fix is one line: Py_INCREF(owner) after the borrow, Py_DECREF(owner) after the use
 * (or PyWeakref_GetRef on 3.13+). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *owners;   /* list of weakref.ref to the lock owners */

static PyObject *lock(PyObject *self, PyObject *owner)
{
    (void)self;
    PyObject *ref = PyWeakref_NewRef(owner, NULL);
    if (!ref)
        return NULL;
    int r = PyList_Append(owners, ref);
    Py_DECREF(ref);
    if (r < 0)
        return NULL;
    Py_RETURN_NONE;
}

static int notify_owner(PyObject *ref)
{
    PyObject *owner = PyWeakref_GetObject(ref);            /* a borrowed reference */
    if (owner == Py_None)
        return 0;                                           /* the owner died earlier: fine */
    PyObject *r = PyObject_CallMethod(owner, "on_release", NULL);   /* may drop the last reference */
    if (!r)
        return -1;
    Py_DECREF(r);
    return PyObject_SetAttrString(owner, "locked", Py_False);      /* BUG: owner may be freed */
}

static PyObject *release_all(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    PyObject *list = owners;
    owners = PyList_New(0);
    if (!owners) {
        owners = list;
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        if (notify_owner(PyList_GET_ITEM(list, i)) < 0) {
            Py_DECREF(list);
            return NULL;
        }
    }
    Py_DECREF(list);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"lock", lock, METH_O, "Register owner as a lock holder (held weakly)."},
    {"release_all", release_all, METH_NOARGS, "Release every lock, calling owner.on_release()."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "locks", "A lock registry (wref demo).", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_locks(void)
{
    owners = PyList_New(0);
    return owners ? PyModule_Create(&module) : NULL;
}
