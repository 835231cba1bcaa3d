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
_Static_assert(offsetof(PyTypeObject, tp_flags) == 168, "tp_flags offset (capi.h PY_TP_FLAGS_OFFSET)");
_Static_assert(offsetof(PyTypeObject, tp_traverse) == 184, "tp_traverse offset (capi.h PY_TP_TRAVERSE_OFFSET)");

/* The running frame as src/check/python/pystack.c reads it from the thread state (its `lay`
 * table; at run time it is also checked once against the C API). */
#if PY_VERSION_HEX < 0x030B0000
#include <frameobject.h>
#if PY_VERSION_HEX >= 0x030A0000
_Static_assert(offsetof(PyFrameObject, f_lasti) == 96, "3.10 f_lasti");
#else
_Static_assert(offsetof(PyFrameObject, f_lasti) == 104, "3.9 f_lasti");
#endif
_Static_assert(offsetof(PyThreadState, frame) == 24, "tstate->frame");
_Static_assert(offsetof(PyFrameObject, f_code) == 32, "f_code");
_Static_assert(offsetof(PyFrameObject, f_back) == 24, "f_back");
#else
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif
#include <internal/pycore_frame.h>
_Static_assert(offsetof(PyFrameObject, f_frame) == 24, "PyFrameObject.f_frame");
#if PY_VERSION_HEX >= 0x030D0000
_Static_assert(offsetof(PyThreadState, current_frame) == 72, "3.13 tstate->current_frame");
_Static_assert(offsetof(_PyInterpreterFrame, f_executable) == 0, "3.13 f_executable");
_Static_assert(offsetof(_PyInterpreterFrame, instr_ptr) == 56, "3.13 instr_ptr");
_Static_assert(offsetof(_PyInterpreterFrame, owner) == 70, "3.13 owner");
_Static_assert(offsetof(PyCodeObject, co_code_adaptive) == 200, "3.13 co_code_adaptive");
_Static_assert(offsetof(_PyInterpreterFrame, previous) == 8, "3.13 previous");
_Static_assert(offsetof(PyCodeObject, _co_firsttraceable) == 184, "3.13 _co_firsttraceable");
_Static_assert(FRAME_OWNED_BY_CSTACK == 3, "FRAME_OWNED_BY_CSTACK");
_Static_assert(FRAME_OWNED_BY_GENERATOR == 1, "FRAME_OWNED_BY_GENERATOR");
#elif PY_VERSION_HEX >= 0x030C0000
_Static_assert(offsetof(PyThreadState, cframe) == 56 && offsetof(_PyCFrame, current_frame) == 0, "3.12 cframe");
_Static_assert(offsetof(_PyInterpreterFrame, f_code) == 0, "3.12 f_code");
_Static_assert(offsetof(_PyInterpreterFrame, prev_instr) == 56, "3.12 prev_instr");
_Static_assert(offsetof(_PyInterpreterFrame, owner) == 70, "3.12 owner");
_Static_assert(offsetof(PyCodeObject, co_code_adaptive) == 192, "3.12 co_code_adaptive");
_Static_assert(offsetof(_PyInterpreterFrame, previous) == 8, "3.12 previous");
_Static_assert(offsetof(PyCodeObject, _co_firsttraceable) == 176, "3.12 _co_firsttraceable");
_Static_assert(FRAME_OWNED_BY_CSTACK == 3, "FRAME_OWNED_BY_CSTACK");
#else
_Static_assert(offsetof(PyThreadState, cframe) == 56 && offsetof(_PyCFrame, current_frame) == 8, "3.11 cframe");
_Static_assert(offsetof(_PyInterpreterFrame, f_code) == 32, "3.11 f_code");
_Static_assert(offsetof(_PyInterpreterFrame, prev_instr) == 56, "3.11 prev_instr");
_Static_assert(offsetof(_PyInterpreterFrame, owner) == 69, "3.11 owner");
_Static_assert(offsetof(PyCodeObject, co_code_adaptive) == 184, "3.11 co_code_adaptive");
_Static_assert(offsetof(_PyInterpreterFrame, previous) == 48, "3.11 previous");
_Static_assert(offsetof(PyCodeObject, _co_firsttraceable) == 168, "3.11 _co_firsttraceable");
#endif
#endif

/* The current thread state pystack.c reads without a call on 3.9-3.11 (its
 * PY39/PY311_RUNTIME_TSTATE_CURRENT): the global _PyThreadState_UncheckedGet returns. 3.12+
 * keep it in a thread-local of libpython, found at run time. */
#if PY_VERSION_HEX < 0x030C0000
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif
#undef _PyGC_FINALIZED   /* 3.11: Python.h's public definition, which pycore_gc.h redefines */
#include <internal/pycore_runtime.h>
_Static_assert(offsetof(_PyRuntimeState, gilstate.tstate_current) == (PY_VERSION_HEX >= 0x030B0000 ? 576 : 568),
               "_PyRuntime.gilstate.tstate_current");
#endif
