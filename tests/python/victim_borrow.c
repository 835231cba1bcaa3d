/* victim_borrow: the extension module of the CPython victims (tests/python/cases.py drives
 * it), one bug per entry point and the correct version of each (the *_ok functions):
 *   - dangling borrowed references from PyWeakref_GetObject (a callback, __eq__, a GIL
 *     release, a late Py_INCREF);
 *   - a type whose dealloc forgets PyObject_ClearWeakRefs (Leaky; Tidy is correct), one whose
 *     dealloc makes a new weakref to itself after clearing them (Notifier);
 *   - a plain pointer kept beside a weakref made from C, used after the free (observe;
 *     observe_proxy with a proxy);
 *   - weakref callbacks registered from C: subscribe/subscribe_proxy (a callback that raises,
 *     a referent leaked by keep_forever), cache_raw (death callbacks that resurrect or weakly
 *     reference the dying object through a pointer that held no reference), Fast (3.13: a
 *     dealloc that clears its weakrefs without callbacks).
 * Built -g -O1 with frame pointers and noinline guilty functions, so that the C frames the
 * tests expect are stable; the "@name" comments mark the lines they expect. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdatomic.h>
#include <stddef.h>
#include <unistd.h>

#define GUILTY __attribute__((noinline))

/* The entry points taking two positional arguments are METH_FASTCALL (see the method table):
 * ARGS2 checks the count and names them. */
#define ARGS2(a, b)                                                                        \
    (void)self;                                                                            \
    if (nargs != 2)                                                                        \
        return PyErr_Format(PyExc_TypeError, "expected 2 arguments, got %zd", nargs);      \
    PyObject *a = args[0], *b = args[1]

#if PY_VERSION_HEX >= 0x030D0000
/* deprecated in 3.13, which is the point of this module */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif

/* A callback drops the last reference between the borrow and the use. */
GUILTY static PyObject *use_after_callback(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    ARGS2(ref, cb);
    PyObject *obj = PyWeakref_GetObject(ref);           /* borrowed @cb_borrow */
    PyObject *r = PyObject_CallNoArgs(cb);              /* drops the last strong reference @cb_call */
    if (!r)
        return NULL;
    Py_DECREF(r);
    return PyObject_Repr(obj);                          /* use after free @cb_use */
}

/* The same with a strong reference taken at once: correct. */
GUILTY static PyObject *use_after_callback_ok(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    ARGS2(ref, cb);
    PyObject *obj = PyWeakref_GetObject(ref);
    Py_INCREF(obj);
    PyObject *r = PyObject_CallNoArgs(cb);
    if (!r) {
        Py_DECREF(obj);
        return NULL;
    }
    Py_DECREF(r);
    PyObject *s = PyObject_Repr(obj);
    Py_DECREF(obj);
    return s;
}

/* A rich comparison: the object's own __eq__ drops the last reference, then it is used. */
GUILTY static PyObject *use_after_eq(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    ARGS2(ref, other);
    PyObject *obj = PyWeakref_GetObject(ref);                   /* @eq_borrow */
    int eq = PyObject_RichCompareBool(obj, other, Py_EQ);       /* @eq_call */
    if (eq < 0)
        return NULL;
    return PyObject_GetAttrString(obj, "name");                 /* @eq_use */
}

GUILTY static PyObject *use_after_eq_ok(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    ARGS2(ref, other);
    PyObject *obj = PyWeakref_GetObject(ref);
    Py_INCREF(obj);
    int eq = PyObject_RichCompareBool(obj, other, Py_EQ);
    PyObject *name = eq < 0 ? NULL : PyObject_GetAttrString(obj, "name");
    Py_DECREF(obj);
    return name;
}

/* A GIL release: another thread drops the last reference meanwhile (it calls released()). */
static atomic_int released_flag;

static PyObject *released(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    atomic_store(&released_flag, 1);
    Py_RETURN_NONE;
}

GUILTY static void wait_released(void)
{
    for (int i = 0; i < 20000 && !atomic_load(&released_flag); i++)
        usleep(500);
}

GUILTY static PyObject *use_after_gil_release(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    ARGS2(ref, go);
    atomic_store(&released_flag, 0);
    PyObject *obj = PyWeakref_GetObject(ref);             /* @gil_borrow */
    PyObject *r = PyObject_CallMethod(go, "set", NULL);   /* lets the other thread run */
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_BEGIN_ALLOW_THREADS
    wait_released();
    Py_END_ALLOW_THREADS
    return PyObject_Str(obj);                             /* @gil_use */
}

GUILTY static PyObject *use_after_gil_release_ok(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    ARGS2(ref, go);
    atomic_store(&released_flag, 0);
    PyObject *obj = PyWeakref_GetObject(ref);
    Py_INCREF(obj);
    PyObject *r = PyObject_CallMethod(go, "set", NULL);
    if (!r) {
        Py_DECREF(obj);
        return NULL;
    }
    Py_DECREF(r);
    Py_BEGIN_ALLOW_THREADS
    wait_released();
    Py_END_ALLOW_THREADS
    PyObject *s = PyObject_Str(obj);
    Py_DECREF(obj);
    return s;
}

/* A Py_INCREF that comes too late: the object is returned to Python after it died. */
GUILTY static PyObject *incref_too_late(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    ARGS2(ref, cb);
    PyObject *obj = PyWeakref_GetObject(ref);           /* @late_borrow */
    PyObject *r = PyObject_CallNoArgs(cb);              /* @late_call */
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_INCREF(obj);                                     /* too late: it is freed already */
    return obj;
}

GUILTY static PyObject *incref_in_time(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    ARGS2(ref, cb);
    PyObject *obj = PyWeakref_GetObject(ref);
    Py_INCREF(obj);
    PyObject *r = PyObject_CallNoArgs(cb);
    if (!r) {
        Py_DECREF(obj);
        return NULL;
    }
    Py_DECREF(r);
    return obj;
}

/* A borrowed pointer kept past the call (BUG: no reference), used by a later call. The
 * "rebound" case borrows it from two threads, the newest borrow from the main thread. */
static PyObject *kept;

GUILTY static PyObject *borrow_keep(PyObject *self, PyObject *ref)
{
    (void)self;
    kept = PyWeakref_GetObject(ref);                    /* @rb_borrow */
    Py_RETURN_NONE;
}

GUILTY static PyObject *use_kept(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    return PyObject_Repr(kept);                         /* @rb_use */
}

/* The common correct pattern of SIP, Cython and pythoncapi-compat: borrow, INCREF at once. */
static PyObject *get_ref(PyObject *self, PyObject *ref)
{
    (void)self;
    PyObject *obj = PyWeakref_GetObject(ref);
    Py_INCREF(obj);
    return obj;
}

/* A type with a weakref list whose dealloc forgets PyObject_ClearWeakRefs (gh-108295's bug),
 * and its correct twin. */
typedef struct {
    PyObject_HEAD
    PyObject *weakreflist;
} WeakObject;

/* A static type of WeakObject instances (a weakref list, no GC) with its own dealloc. */
#define WEAK_TYPE(cname, pyname, dealloc)                                                                  \
    static PyTypeObject cname = {PyVarObject_HEAD_INIT(NULL, 0).tp_name = "victim_borrow." pyname,       \
                                 .tp_basicsize = sizeof(WeakObject), .tp_dealloc = dealloc,              \
                                 .tp_flags = Py_TPFLAGS_DEFAULT,                                         \
                                 .tp_weaklistoffset = offsetof(WeakObject, weakreflist),                 \
                                 .tp_new = PyType_GenericNew}

GUILTY static void leaky_dealloc(PyObject *self)
{
    Py_TYPE(self)->tp_free(self);   /* BUG: the weakrefs to self are never cleared */
}

static void tidy_dealloc(PyObject *self)
{
    if (((WeakObject *)self)->weakreflist)
        PyObject_ClearWeakRefs(self);
    Py_TYPE(self)->tp_free(self);
}

WEAK_TYPE(LeakyType, "Leaky", leaky_dealloc);
WEAK_TYPE(TidyType, "Tidy", tidy_dealloc);

/* A weakref made from C (no callback). */
GUILTY static PyObject *make_ref(PyObject *self, PyObject *obj)
{
    (void)self;
    return PyWeakref_NewRef(obj, NULL);   /* @mk_ref */
}

/* An observer that makes a weakref to the object (the object is watched: no borrow) and also
 * keeps a plain pointer to it (BUG with hold 0: no reference), used after the object died:
 * use-after-free in the default mode. hold 1 takes a reference: correct. */
static PyObject *observed;
static int observed_held;
static PyObject *keep(PyObject *wr);

GUILTY static PyObject *observe(PyObject *self, PyObject *args)
{
    PyObject *obj;
    int hold = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "O|i", &obj, &hold))
        return NULL;
    PyObject *wr = PyWeakref_NewRef(obj, NULL);         /* @obs_ref */
    if (!wr)
        return NULL;
    observed = obj;                                     /* BUG unless hold: no reference */
    observed_held = hold;
    if (hold)
        Py_INCREF(obj);
    return keep(wr);
}

/* The same observer with a proxy (PyWeakref_NewProxy): the report must name that API. */
GUILTY static PyObject *observe_proxy(PyObject *self, PyObject *obj)
{
    (void)self;
    PyObject *wr = PyWeakref_NewProxy(obj, NULL);       /* @obsp_ref */
    if (!wr)
        return NULL;
    observed = obj;                                     /* BUG: no reference */
    observed_held = 0;
    return keep(wr);
}

GUILTY static PyObject *use_observed(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    return PyObject_Repr(observed);                     /* @obs_use */
}

/* A reference taken through the stale pointer after the free, never released: seen at exit. */
GUILTY static PyObject *incref_observed(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    Py_INCREF(observed);                                /* too late @obs_incref */
    observed = NULL;
    Py_RETURN_NONE;
}

static PyObject *forget_observed(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    if (observed_held)
        Py_XDECREF(observed);
    observed = NULL;
    observed_held = 0;
    Py_RETURN_NONE;
}

/* A type whose dealloc notifies observers with a new weakref to the dying object after its
 * weakrefs were cleared (BUG: weakly referenced in its dying window; the weakref, kept by the
 * observers, outlives the object). */
static PyObject *closed_events;   /* the observers' list, never freed */

GUILTY static void notify_closed(PyObject *self)
{
    PyObject *wr = PyWeakref_NewRef(self, NULL);        /* @wd_ref */
    if (!wr || PyList_Append(closed_events, wr) < 0)
        PyErr_Clear();
    Py_XDECREF(wr);
}

GUILTY static void notifier_dealloc(PyObject *self)
{
    if (((WeakObject *)self)->weakreflist)
        PyObject_ClearWeakRefs(self);
    notify_closed(self);                                /* @wd_notify */
    Py_TYPE(self)->tp_free(self);
}

WEAK_TYPE(NotifierType, "Notifier", notifier_dealloc);

/* ---- weakref callbacks registered from C ------------------------------------------------ */

/* The weakrefs an extension keeps (a C-level registry, never freed, like a real one). */
static PyObject *subscriptions;

/* Keeps a new weakref (or NULL after an error) in the registry; None, or NULL on an error. */
static PyObject *keep(PyObject *wr)
{
    int rc = wr ? PyList_Append(subscriptions, wr) : -1;
    Py_XDECREF(wr);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* A callback registered from C with PyWeakref_NewRef. */
GUILTY static PyObject *subscribe(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    ARGS2(obj, cb);
    return keep(PyWeakref_NewRef(obj, cb));             /* @sub_reg */
}

/* The same with PyWeakref_NewProxy. */
GUILTY static PyObject *subscribe_proxy(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    ARGS2(obj, cb);
    return keep(PyWeakref_NewProxy(obj, cb));           /* @sub_proxy */
}

/* A reference taken and never released: the object leaks, its callbacks never run. */
GUILTY static PyObject *keep_forever(PyObject *self, PyObject *obj)
{
    (void)self;
    Py_INCREF(obj);   /* BUG: never released */
    Py_RETURN_NONE;
}

/* A cache that keeps a pointer without a reference, and a death callback (registered from C)
 * that hands the cached pointer out again: the object is resurrected in its dying window,
 * and freed anyway. The correct callback forgets the pointer instead. */
static PyObject *raw_cache;       /* BUG: holds no reference */
static PyObject *handed_out;      /* what the callback handed out (a strong reference) */

GUILTY static PyObject *on_death(PyObject *self, PyObject *wr)
{
    (void)self;
    (void)wr;
    Py_INCREF(raw_cache);                               /* the dying object gains a reference */
    Py_XDECREF(handed_out);
    handed_out = raw_cache;
    Py_RETURN_NONE;
}

static PyObject *on_death_ok(PyObject *self, PyObject *wr)
{
    (void)self;
    (void)wr;
    raw_cache = NULL;
    Py_RETURN_NONE;
}

/* Another death callback: a new weakref to the dying object, through the same pointer. */
GUILTY static PyObject *on_death_weakref(PyObject *self, PyObject *wr)
{
    (void)self;
    (void)wr;
    PyObject *again = PyWeakref_NewRef(raw_cache, NULL);  /* @uac_wr */
    Py_XDECREF(again);
    Py_RETURN_NONE;
}

static PyMethodDef on_death_defs[] = {{"on_death", on_death, METH_O, NULL},
                                      {"on_death_ok", on_death_ok, METH_O, NULL},
                                      {"on_death_weakref", on_death_weakref, METH_O, NULL}};

/* mode 0: on_death (the bug), 1: on_death_ok, 2: on_death_weakref (the bug, another shape) */
GUILTY static PyObject *cache_raw(PyObject *self, PyObject *args)
{
    PyObject *obj;
    int mode = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "O|i", &obj, &mode) || mode < 0 || mode > 2)
        return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_ValueError, "mode %d", mode);
    raw_cache = obj;
    PyObject *cb = PyCFunction_New(&on_death_defs[mode], NULL);
    if (!cb)
        return NULL;
    PyObject *wr = PyWeakref_NewRef(obj, cb);           /* @uac_reg */
    Py_DECREF(cb);
    return keep(wr);
}

static PyObject *take_handed_out(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    PyObject *o = handed_out ? handed_out : Py_None;
    Py_INCREF(o);
    Py_CLEAR(handed_out);
    return o;
}

#if PY_VERSION_HEX >= 0x030D0000
/* A type whose dealloc clears its weakrefs without callbacks (3.13's unstable API): the
 * callbacks extension code registered on it never run. */
GUILTY static void fast_dealloc(PyObject *self)
{
    PyUnstable_Object_ClearWeakRefsNoCallbacks(self);  /* @sup_clear */
    Py_TYPE(self)->tp_free(self);
}

WEAK_TYPE(FastType, "Fast", fast_dealloc);
#endif

#if PY_VERSION_HEX >= 0x030C0000
/* 3.12+: the same bug with a weakref list the interpreter manages (Py_TPFLAGS_MANAGED_WEAKREF:
 * in the pre-header, obj - 4 words), a GC heap type; TidyManaged is its correct twin. */
GUILTY static void leaky_managed_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    tp->tp_free(self);   /* BUG: the weakrefs to self are never cleared */
    Py_DECREF(tp);
}

static void tidy_managed_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    PyObject_ClearWeakRefs(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static int managed_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

#define MANAGED_SPEC(cname, pyname, dealloc)                                                           \
    static PyType_Slot cname##_slots[] = {{Py_tp_dealloc, (void *)dealloc},                           \
                                          {Py_tp_traverse, (void *)managed_traverse},                 \
                                          {Py_tp_new, (void *)PyType_GenericNew}, {0, NULL}};         \
    static PyType_Spec cname##_spec = {"victim_borrow." pyname, sizeof(PyObject), 0,                  \
                                       Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_MANAGED_WEAKREF, \
                                       cname##_slots}
MANAGED_SPEC(leaky_managed, "LeakyManaged", leaky_managed_dealloc);
MANAGED_SPEC(tidy_managed, "TidyManaged", tidy_managed_dealloc);
#endif

#define FASTCALL(name) {#name, (PyCFunction)(void (*)(void))name, METH_FASTCALL, NULL}
static PyMethodDef methods[] = {
    FASTCALL(subscribe),
    FASTCALL(subscribe_proxy),
    {"keep_forever", keep_forever, METH_O, NULL},
    {"cache_raw", cache_raw, METH_VARARGS, NULL},
    {"take_handed_out", take_handed_out, METH_NOARGS, NULL},
    FASTCALL(use_after_callback),
    FASTCALL(use_after_callback_ok),
    FASTCALL(use_after_eq),
    FASTCALL(use_after_eq_ok),
    FASTCALL(use_after_gil_release),
    FASTCALL(use_after_gil_release_ok),
    {"released", released, METH_NOARGS, NULL},
    FASTCALL(incref_too_late),
    FASTCALL(incref_in_time),
    {"borrow_keep", borrow_keep, METH_O, NULL},
    {"use_kept", use_kept, METH_NOARGS, NULL},
    {"get_ref", get_ref, METH_O, NULL},
    {"make_ref", make_ref, METH_O, NULL},
    {"observe", observe, METH_VARARGS, NULL},
    {"observe_proxy", observe_proxy, METH_O, NULL},
    {"use_observed", use_observed, METH_NOARGS, NULL},
    {"incref_observed", incref_observed, METH_NOARGS, NULL},
    {"forget_observed", forget_observed, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "victim_borrow", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_victim_borrow(void)
{
    if (PyType_Ready(&LeakyType) < 0 || PyType_Ready(&TidyType) < 0 || PyType_Ready(&NotifierType) < 0)
        return NULL;
#if PY_VERSION_HEX >= 0x030D0000
    if (PyType_Ready(&FastType) < 0)
        return NULL;
#endif
    if (!subscriptions && !(subscriptions = PyList_New(0)))
        return NULL;
    if (!closed_events && !(closed_events = PyList_New(0)))
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&LeakyType);
    Py_INCREF(&TidyType);
    Py_INCREF(&NotifierType);
    if (PyModule_AddObject(m, "Leaky", (PyObject *)&LeakyType) < 0 ||
        PyModule_AddObject(m, "Tidy", (PyObject *)&TidyType) < 0 ||
        PyModule_AddObject(m, "Notifier", (PyObject *)&NotifierType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *lm = PyType_FromSpec(&leaky_managed_spec), *tm = lm ? PyType_FromSpec(&tidy_managed_spec) : NULL;
    if (!tm || PyModule_AddObject(m, "LeakyManaged", lm) < 0 || PyModule_AddObject(m, "TidyManaged", tm) < 0) {
        Py_XDECREF(lm);
        Py_XDECREF(tm);
        Py_DECREF(m);
        return NULL;
    }
#endif
#if PY_VERSION_HEX >= 0x030D0000
    Py_INCREF(&FastType);
    if (PyModule_AddObject(m, "Fast", (PyObject *)&FastType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#endif
    return m;
}
