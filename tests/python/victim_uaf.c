/* victim_uaf: a use after free through a pointer that held no reference and did not come from
 * PyWeakref_GetObject (python_watch=all, docs/python.md), and its correct twin.
 * Built -g -O1 with frame pointers and noinline guilty functions, so that the C frames the
 * test expects (run_uaf.py, from the "@marker" comments) are stable. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stddef.h>

/* wide.c reads tp_flags at this offset without the headers; checked for each interpreter the
 * module is built for. */
_Static_assert(offsetof(PyTypeObject, tp_flags) == 168, "tp_flags offset (src/check/python/wide.c)");
_Static_assert(offsetof(PyTypeObject, tp_itemsize) == 40, "tp_itemsize offset (src/check/python/wide.c)");

#define GUILTY __attribute__((noinline))

/* PyList_GetItem returns a borrowed reference; the callback empties the list, which drops the
 * item's last strong reference, and the item is used afterwards. */
GUILTY static PyObject *use_after_list_clear(PyObject *self, PyObject *args)
{
    PyObject *list, *cb;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO", &list, &cb))
        return NULL;
    PyObject *item = PyList_GetItem(list, 0);           /* no reference taken @uaf_get */
    if (!item)
        return NULL;
    PyObject *r = PyObject_CallNoArgs(cb);              /* empties the list @uaf_call */
    if (!r)
        return NULL;
    Py_DECREF(r);
    return PyObject_GetAttrString(item, "name");        /* use after free @uaf_use */
}

/* The same with a reference held across the call: correct. */
GUILTY static PyObject *use_after_list_clear_ok(PyObject *self, PyObject *args)
{
    PyObject *list, *cb;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO", &list, &cb))
        return NULL;
    PyObject *item = PyList_GetItem(list, 0);
    if (!item)
        return NULL;
    Py_INCREF(item);
    PyObject *r = PyObject_CallNoArgs(cb);
    if (!r) {
        Py_DECREF(item);
        return NULL;
    }
    Py_DECREF(r);
    PyObject *name = PyObject_GetAttrString(item, "name");
    Py_DECREF(item);
    return name;
}

/* The same, but the item is kept with a Py_INCREF that comes too late (after the free): the
 * count of the freed object changes, which is seen at exit. */
GUILTY static PyObject *incref_after_list_clear(PyObject *self, PyObject *args)
{
    PyObject *list, *cb;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO", &list, &cb))
        return NULL;
    PyObject *item = PyList_GetItem(list, 0);           /* no reference taken */
    if (!item)
        return NULL;
    PyObject *r = PyObject_CallNoArgs(cb);              /* empties the list @late_call */
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_INCREF(item);                                    /* too late: kept, never released */
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"incref_after_list_clear", incref_after_list_clear, METH_VARARGS, NULL},
    {"use_after_list_clear", use_after_list_clear, METH_VARARGS, NULL},
    {"use_after_list_clear_ok", use_after_list_clear_ok, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "victim_uaf", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_victim_uaf(void)
{
    return PyModule_Create(&module);
}
