/* victim_fork.c: the extension module victim_fork (fork_load.py): a fork while another thread
 * is inside the checker's CPython frontend; and get (getobject_cases.py).
 *
 *   get(x)             PyWeakref_GetObject(x) as a new reference (None when it returns None),
 *                      or its exception: what the interposer answers for any argument
 *
 *   hammer(cls)        GIL held (released briefly every 1024 rounds), until stop: makes an
 *                      instance of cls and a weakref to it, borrows it (PyWeakref_GetObject),
 *                      frees the weakref and the instance made 64 rounds before: each step
 *                      goes through the frontend's locks (the watch table, the allocator
 *                      hook while watched objects are alive, the quarantine)
 *   fork_children(k, timeout_ms) -> (exited 0, hung, other)
 *                      with the GIL released (so that hammer runs meanwhile), forks k times;
 *                      each child exits at once with exit(0), which runs the checker's exit
 *                      work (it takes the frontend's locks). A child that has not exited after
 *                      timeout_ms is hung (killed; the run stops there). Stops hammer at the
 *                      end.
 *
 * Without the frontend's fork handlers, a child forked while hammer held a frontend lock
 * inherits it held by a thread it does not have, and hangs in its exit work. The module itself
 * is correct code: nothing here is a finding. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX >= 0x030D0000
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"   /* the function under test */
#endif

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_int running, stop;

static PyObject *hammer(PyObject *self, PyObject *cls)
{
    (void)self;
    enum { RING = 64 };
    PyObject *ring[RING] = {NULL};   /* the newest objects stay alive a while: watched ones exist */
    long n = 0;
    atomic_store(&running, 1);
    while (!atomic_load(&stop) && n < 50000000) {
        PyObject *o = PyObject_CallNoArgs(cls);
        PyObject *wr = o ? PyWeakref_NewRef(o, NULL) : NULL;
        if (!wr) {
            Py_XDECREF(o);
            break;
        }
        PyObject *b = PyWeakref_GetObject(wr);
        Py_DECREF(wr);
        if (b != o) {
            Py_DECREF(o);
            PyErr_SetString(PyExc_AssertionError, "PyWeakref_GetObject returned another object");
            break;
        }
        Py_XSETREF(ring[n % RING], o);   /* frees the one borrowed RING rounds ago */
        if (++n % 1024 == 0) {   /* lets the main thread reach fork_children */
            Py_BEGIN_ALLOW_THREADS
            Py_END_ALLOW_THREADS
        }
    }
    atomic_store(&running, 0);
    for (int i = 0; i < RING; i++)
        Py_XDECREF(ring[i]);
    return PyErr_Occurred() ? NULL : PyLong_FromLong(n);
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
    nanosleep(&ts, NULL);
}

static PyObject *fork_children(PyObject *self, PyObject *args)
{
    (void)self;
    int k, timeout_ms;
    if (!PyArg_ParseTuple(args, "ii", &k, &timeout_ms))
        return NULL;
    int ok = 0, hung = 0, other = 0;
    unsigned seed = 12345;
    fflush(NULL);
    Py_BEGIN_ALLOW_THREADS
    for (int w = 0; !atomic_load(&running) && w < 100000; w++)
        sleep_us(1000);
    for (int i = 0; i < k && !hung; i++) {
        sleep_us(100 + (long)(rand_r(&seed) % 2000));   /* hammer runs; forks at varied points */
        pid_t pid = fork();
        if (pid == 0)
            exit(0);   /* the checker's exit work runs here */
        if (pid < 0) {
            other++;
            break;
        }
        int st = 0, waited = 0;
        pid_t got;
        while ((got = waitpid(pid, &st, WNOHANG)) == 0 && waited < timeout_ms) {
            sleep_us(1000);
            waited++;
        }
        if (got == 0) {
            hung++;
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
        } else if (got == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            ok++;
        } else {
            other++;
        }
    }
    atomic_store(&stop, 1);
    Py_END_ALLOW_THREADS
    return Py_BuildValue("(iii)", ok, hung, other);
}

static PyObject *get(PyObject *self, PyObject *x)
{
    (void)self;
    PyObject *o = PyWeakref_GetObject(x);
    Py_XINCREF(o);
    return o;
}

static PyMethodDef methods[] = {
    {"get", get, METH_O, NULL},
    {"hammer", hammer, METH_O, NULL},
    {"fork_children", fork_children, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "victim_fork", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_victim_fork(void)
{
    return PyModule_Create(&module);
}
