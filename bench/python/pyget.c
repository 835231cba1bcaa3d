/* pyget.c: the extension module wref_pybench, the cost of one PyWeakref_GetObject call as an
 * extension module makes it (bench/python/pybench.py, scripts/callgrind-gate.sh).
 *
 *   get_same(ref, n) -> (wall ns, cpu ns)   n times: o = PyWeakref_GetObject(ref); Py_INCREF(o);
 *                               Py_DECREF(o)
 *   get_many(refs, n) -> (wall ns, cpu ns)  the same, cycling through a tuple of weakrefs to
 *                               distinct objects
 *   callgrind(impl, ref, refs, n, cls)  under valgrind --tool=callgrind --instr-atstart=no: one
 *                               dump per case, named "impl/op/n" (bench/callgrind_gate.py), after
 *                               an "empty" dump (the subtraction baseline) and a warm-up; the cases
 *                               py_get_same, py_get_many, and py_alloc_free: n objects made by
 *                               cls() and each freed 256 iterations later (allocations and frees
 *                               through the object domain, which the checker's allocator hook sees)
 *
 * The loops run in C, timed inside the process (CLOCK_MONOTONIC, and the thread's CPU time, which
 * a shared machine's time slicing does not inflate), so the figure is the
 * call itself (the module's call of the libpython function, or of the checker's interposer
 * when it runs under wref-check), not the interpreter's dispatch of a Python call. The
 * referents stay alive (the caller holds them): nothing is freed inside the timed loops. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <time.h>
#include <valgrind/callgrind.h>

#if PY_VERSION_HEX >= 0x030D0000
/* deprecated in 3.13 (it returns a borrowed reference): the function this bench measures */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif

static double now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

typedef struct {
    double wall, cpu;
} stamp;

static stamp now(void)
{
    return (stamp){now_ns(CLOCK_MONOTONIC), now_ns(CLOCK_THREAD_CPUTIME_ID)};
}

static PyObject *elapsed(stamp t0, stamp t1)
{
    return Py_BuildValue("(dd)", t1.wall - t0.wall, t1.cpu - t0.cpu);
}

/* One borrow and the strong reference a correct caller takes at once. noinline: the same C
 * call site for every iteration and both loops, as in a real extension. Returns 0 when the
 * weakref is dead (the bench keeps its referents alive: an error). */
__attribute__((noinline)) static int get_one(PyObject *ref)
{
    PyObject *o = PyWeakref_GetObject(ref);
    if (!o || o == Py_None)
        return 0;
    Py_INCREF(o);
    Py_DECREF(o);
    return 1;
}

static int loop_same(PyObject *ref, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        if (!get_one(ref))
            return 0;
    return 1;
}

static int loop_many(PyObject *refs, Py_ssize_t n)
{
    Py_ssize_t k = PyTuple_GET_SIZE(refs);
    for (Py_ssize_t i = 0, j = 0; i < n; i++) {
        if (!get_one(PyTuple_GET_ITEM(refs, j)))
            return 0;
        if (++j == k)
            j = 0;
    }
    return 1;
}

static PyObject *dead(void)
{
    PyErr_SetString(PyExc_ValueError, "wref_pybench: a weakref is dead or not a weakref");
    return NULL;
}

static int check_refs(PyObject *refs)
{
    if (!PyTuple_Check(refs) || PyTuple_GET_SIZE(refs) == 0) {
        PyErr_SetString(PyExc_TypeError, "wref_pybench: refs must be a non-empty tuple of weakrefs");
        return 0;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(refs); i++)
        if (!PyWeakref_Check(PyTuple_GET_ITEM(refs, i))) {
            dead();
            return 0;
        }
    return 1;
}

static PyObject *get_same(PyObject *self, PyObject *args)
{
    PyObject *ref;
    Py_ssize_t n;
    (void)self;
    if (!PyArg_ParseTuple(args, "On", &ref, &n))
        return NULL;
    if (!PyWeakref_Check(ref))
        return dead();
    stamp t0 = now();
    int ok = loop_same(ref, n);
    stamp t1 = now();
    return ok ? elapsed(t0, t1) : dead();
}

static PyObject *get_many(PyObject *self, PyObject *args)
{
    PyObject *refs;
    Py_ssize_t n;
    (void)self;
    if (!PyArg_ParseTuple(args, "On", &refs, &n) || !check_refs(refs))
        return NULL;
    stamp t0 = now();
    int ok = loop_many(refs, n);
    stamp t1 = now();
    return ok ? elapsed(t0, t1) : dead();
}

/* n objects made by calling cls, each kept in a ring of RING and dropped RING iterations
 * later, so that the allocator hands out some 257 blocks in turn (one block again and again
 * would make the count hang on where that one block sits: the checker's free takes a slower
 * path for a block whose first words end a page); 0 when a call failed (exception set). */
#define RING 256
static PyObject *ring[RING];

static int __attribute__((noinline)) loop_alloc_free(PyObject *cls, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PyObject_CallNoArgs(cls);
        if (!o)
            return 0;
        Py_XSETREF(ring[i % RING], o);
    }
    return 1;
}

static PyObject *callgrind(PyObject *self, PyObject *args)
{
    const char *impl;
    PyObject *ref, *refs, *cls;
    Py_ssize_t n;
    char same[128], many[128], alloc[128];
    (void)self;
    if (!PyArg_ParseTuple(args, "sOOnO", &impl, &ref, &refs, &n, &cls) || !check_refs(refs))
        return NULL;
    if (!PyWeakref_Check(ref))
        return dead();
    /* warm-up: first borrows (the checker's stack captures, its site cache), every record, the
     * allocation site */
    if (!loop_same(ref, n) || !loop_many(refs, n))
        return dead();
    if (!loop_alloc_free(cls, n))
        return NULL;
    snprintf(same, sizeof same, "%s/py_get_same/%zd", impl, n);
    snprintf(many, sizeof many, "%s/py_get_many/%zd", impl, n);
    snprintf(alloc, sizeof alloc, "%s/py_alloc_free/%zd", impl, n);
    /* each dump resets the counts: a case's dump holds its loop alone */
    CALLGRIND_START_INSTRUMENTATION;
    CALLGRIND_ZERO_STATS;
    CALLGRIND_DUMP_STATS_AT("empty");
    int ok = loop_same(ref, n);
    CALLGRIND_DUMP_STATS_AT(same);
    ok = loop_many(refs, n) && ok;
    CALLGRIND_DUMP_STATS_AT(many);
    int made = loop_alloc_free(cls, n);
    CALLGRIND_DUMP_STATS_AT(alloc);
    CALLGRIND_STOP_INSTRUMENTATION;
    for (size_t i = 0; i < RING; i++)
        Py_CLEAR(ring[i]);
    if (!made)
        return NULL;
    if (!ok)
        return dead();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"get_same", get_same, METH_VARARGS, "get_same(ref, n): (wall, cpu) ns for n PyWeakref_GetObject + incref/decref of one weakref"},
    {"get_many", get_many, METH_VARARGS, "get_many(refs, n): the same, cycling through a tuple of weakrefs"},
    {"callgrind", callgrind, METH_VARARGS, "callgrind(impl, ref, refs, n, cls): one callgrind dump per case"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "wref_pybench", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_wref_pybench(void)
{
    return PyModule_Create(&module);
}
