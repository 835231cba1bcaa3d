/* layout_check.c: the PyTypeObject offsets and flag values src/check/python/capi.h hardcodes
 * (the frontend is built without Python headers) match this interpreter's headers. Compiled,
 * never run, once per tested interpreter (tests/python/CMakeLists.txt): a mismatch fails the
 * build. Keep the numbers in step with capi.h. */
#include <Python.h>

#include <stddef.h>

_Static_assert(offsetof(PyTypeObject, tp_name) == 24, "tp_name offset");
_Static_assert(offsetof(PyTypeObject, tp_basicsize) == 32, "tp_basicsize offset");
_Static_assert(offsetof(PyTypeObject, tp_weaklistoffset) == 208, "tp_weaklistoffset offset");
_Static_assert(Py_TPFLAGS_HAVE_GC == (1UL << 14), "Py_TPFLAGS_HAVE_GC");
#if PY_VERSION_HEX >= 0x030B0000
_Static_assert(Py_TPFLAGS_MANAGED_DICT == (1UL << 4), "Py_TPFLAGS_MANAGED_DICT");
#endif
#if PY_VERSION_HEX >= 0x030C0000
_Static_assert(Py_TPFLAGS_MANAGED_WEAKREF == (1UL << 3), "Py_TPFLAGS_MANAGED_WEAKREF");
#endif
_Static_assert(PYMEM_DOMAIN_OBJ == 2, "PYMEM_DOMAIN_OBJ");
_Static_assert(Py_tp_repr == 66 && Py_tp_dealloc == 52 && Py_tp_getattro == 58 && Py_nb_bool == 9 &&
                   Py_sq_contains == 41 && Py_tp_richcompare == 67,
               "typeslots.h numbers");
_Static_assert(sizeof(PyObject) == 16, "PyObject head");
/* The weakref fields callbacks.c reads (the callback and the list link) and the slots of its
 * wrapper type. */
_Static_assert(offsetof(PyWeakReference, wr_callback) == 24, "PyWeakReference.wr_callback");
_Static_assert(offsetof(PyWeakReference, wr_next) == 48, "PyWeakReference.wr_next");
_Static_assert(Py_tp_clear == 51 && Py_tp_traverse == 71 && Py_tp_call == 50, "typeslots.h numbers");
_Static_assert(Py_TPFLAGS_HEAPTYPE == (1UL << 9) && Py_TPFLAGS_TYPE_SUBCLASS == (1UL << 31) &&
                   Py_TPFLAGS_HAVE_VERSION_TAG == (1UL << 18),
               "type flags");
_Static_assert(METH_NOARGS == 0x0004, "METH_NOARGS");
