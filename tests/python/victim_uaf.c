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

/* The same, but the pointer is released after the free: a lone late Py_DECREF, the only use. */
GUILTY static PyObject *decref_after_list_clear(PyObject *self, PyObject *args)
{
    PyObject *list, *cb;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO", &list, &cb))
        return NULL;
    PyObject *item = PyList_GetItem(list, 0);           /* no reference taken */
    if (!item)
        return NULL;
    PyObject *r = PyObject_CallNoArgs(cb);              /* empties the list @decref_call */
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_DECREF(item);                                    /* a reference it never had @decref_use */
    Py_RETURN_NONE;
}

/* The same, but the stale pointer is handed to Python code after the callback: use(item)
 * reads its attribute, in a Python frame of its own (so the use's Python stack is one the
 * checker has not stored before: run_uaf.py's uaf_store). */
GUILTY static PyObject *pass_after_list_clear(PyObject *self, PyObject *args)
{
    PyObject *list, *cb, *use;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOO", &list, &cb, &use))
        return NULL;
    PyObject *item = PyList_GetItem(list, 0);           /* no reference taken */
    if (!item)
        return NULL;
    PyObject *r = PyObject_CallNoArgs(cb);              /* empties the list @pass_call */
    if (!r)
        return NULL;
    Py_DECREF(r);
    return PyObject_CallFunctionObjArgs(use, item, NULL);   /* use after free @pass_use */
}

/* fill_type_cache(code, n): n fresh (not interned) copies of the name "co_filename", each looked
 * up on the code object `code`, go into CPython's type attribute cache, and the copies the cache
 * keeps are held by it alone (the others are freed here). The cache is keyed by the name's
 * hash on 3.9 and by its address on 3.10+: n copies cover every entry a "co_filename" string
 * can land in (pymalloc's blocks of its size class). wref-check's store of a new Python stack
 * (src/check/python/pystack.c) then looks up a new copy of that name on a code object: the cache
 * entry it replaces held one of these, which is freed during the store, every time. Returns
 * how many copies the cache kept. */
static PyObject *fill_type_cache(PyObject *self, PyObject *args)
{
    PyObject *code;
    Py_ssize_t n;
    (void)self;
    if (!PyArg_ParseTuple(args, "On", &code, &n) || n <= 0)
        return NULL;
    PyObject **names = PyMem_Calloc((size_t)n, sizeof *names);
    if (!names)
        return PyErr_NoMemory();
    Py_ssize_t kept = 0, made = 0;
    for (; made < n; made++) {
        PyObject *r = NULL;
        if (!(names[made] = PyUnicode_FromString("co_filename")) || !(r = PyObject_GetAttr(code, names[made])))
            break;
        Py_DECREF(r);
    }
    for (Py_ssize_t i = 0; i < n && names[i]; i++) {
        kept += Py_REFCNT(names[i]) > 1;   /* the cache holds it too */
        Py_DECREF(names[i]);
    }
    PyMem_Free(names);
    if (made < n)
        return NULL;
    return PyLong_FromSsize_t(kept);
}

static PyMethodDef methods[] = {
    {"fill_type_cache", fill_type_cache, METH_VARARGS, NULL},
    {"pass_after_list_clear", pass_after_list_clear, METH_VARARGS, NULL},
    {"incref_after_list_clear", incref_after_list_clear, METH_VARARGS, NULL},
    {"decref_after_list_clear", decref_after_list_clear, METH_VARARGS, NULL},
    {"use_after_list_clear", use_after_list_clear, METH_VARARGS, NULL},
    {"use_after_list_clear_ok", use_after_list_clear_ok, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "victim_uaf", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_victim_uaf(void)
{
    return PyModule_Create(&module);
}
