/* wrbench.c: wref and its peers measured side by side, in one process and one run.
 *
 *   wrbench [--rounds R] [--json PATH] [--quick]   timing mode: every case, R rounds (default 15),
 *           [--only IMPL,...] [--no-memory]        a random case order each round, medians;
 *                                                  --quick: 1 ms batches; --only: those impls
 *   wrbench --callgrind                            instruction counts: the key cases, N = 10000,
 *                                                  one CALLGRIND_DUMP_STATS_AT per case (run it
 *                                                  under valgrind --tool=callgrind --instr-atstart=no)
 *
 * Implementations ("impl"): floor (bare atomics, locks, malloc), wref and wref-check (the
 * release and checked libraries, both dlopen'ed with RTLD_LOCAL from WRBENCH_LIBWREF and
 * WRBENCH_LIBWREF_CHECK, so each resolves its own symbols), cpython (Debian's libpython3.11,
 * embedded), glib (GLib 2.74 GWeakRef / g_object_weak_ref), std (libstdc++ shared_ptr/weak_ptr,
 * peer_std.cpp), and the backtrace methods (fp, libunwind, glibc).
 *
 * Method (docs/performance.md): a case is one batch of n operations
 * whose untimed set-up and tear-down run outside wrb_t_start()/wrb_t_stop(); n is calibrated so
 * a batch takes about 10 ms; the first (calibration) batches are discarded; the main thread is
 * pinned to CPU 0, the two threads of 2-thread cases to CPUs 0 and 1. */
#define _GNU_SOURCE
#include "wrbench.h"

#include <Python.h>
#include <glib-object.h>
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <valgrind/callgrind.h>

#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wref.h"

#define ROUNDS_MAX 101
#define BATCH_NS 10e6   /* calibrated batch length */
#define CG_N 10000      /* --callgrind batch size */

long *wrb_perm;

/* ---- timing ---------------------------------------------------------------------------- */

static struct {
    int callgrind;      /* --callgrind mode */
    int armed;          /* --callgrind: dump this batch (0 during warm-up) */
    const char *name;   /* the running case, "impl/op" */
    double t0;
} tm;

static inline double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

void wrb_t_start(void)
{
    if (tm.callgrind)
        CALLGRIND_ZERO_STATS;
    else
        tm.t0 = now_ns();
}

double wrb_t_stop(void)
{
    if (tm.callgrind) {
        if (tm.armed)
            CALLGRIND_DUMP_STATS_AT(tm.name);
        return 0;
    }
    return now_ns() - tm.t0;
}

static inline void keep(const void *p)
{
    __asm__ volatile("" ::"r"(p) : "memory");
}

static void pin_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % (int)sysconf(_SC_NPROCESSORS_ONLN), &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)   /* xorshift64* */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static long rss_bytes(void)
{
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * sysconf(_SC_PAGESIZE);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "wrbench: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

static void die(const char *what)
{
    fprintf(stderr, "wrbench: %s\n", what);
    exit(2);
}

/* ---- 2-thread cases: two pinned threads, each runs loop(arg, slot, n) ------------------------ */

typedef void (*loop_fn)(void *arg, int slot, long n);

struct thr {
    loop_fn loop;
    void *arg;
    int slot;
    long n;
    pthread_barrier_t *bar;
    double t0, t1;
};

static void *thr_main(void *p)
{
    struct thr *t = p;
    pin_to(t->slot);
    pthread_barrier_wait(t->bar);
    t->t0 = now_ns();
    t->loop(t->arg, t->slot, t->n);
    t->t1 = now_ns();
    return NULL;
}

/* Wall time for both threads to do n operations each; same: both use slot 0. */
static double run2(loop_fn loop, void *arg, int same, long n)
{
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    struct thr t[2];
    pthread_t id[2];
    for (int i = 0; i < 2; i++) {
        t[i] = (struct thr){loop, arg, i, n, &bar, 0, 0};
        if (pthread_create(&id[i], NULL, thr_main, &t[i]))
            die("pthread_create failed");
    }
    for (int i = 0; i < 2; i++)
        pthread_join(id[i], NULL);
    pthread_barrier_destroy(&bar);
    (void)same;
    double a = t[0].t0 < t[1].t0 ? t[0].t0 : t[1].t0;
    double b = t[0].t1 > t[1].t1 ? t[0].t1 : t[1].t1;
    return b - a;
}

/* ---- floor: the same-run hardware floor --------------------------------------------------- */

struct cell {
    intptr_t count;
    char pad[56];
} __attribute__((aligned(64)));

static struct cell fl_cell[2];
static pthread_mutex_t fl_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t fl_rwlock = PTHREAD_RWLOCK_INITIALIZER;
static unsigned char fl_spin;
static intptr_t *fl_cold;   /* WRB_COLD_N counters, 32 bytes apart (a wref object's footprint) */

static inline int try_incref(intptr_t *c)
{
    intptr_t v = __atomic_load_n(c, __ATOMIC_RELAXED);
    do {
        if (v == 0)
            return 0;
    } while (!__atomic_compare_exchange_n(c, &v, v + 1, true, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED));
    return 1;
}

static inline void decref(intptr_t *c)
{
    __atomic_fetch_sub(c, 1, __ATOMIC_ACQ_REL);
}

static double fl_cas(void *ctx, long n)
{
    (void)ctx;
    intptr_t *c = &fl_cell[0].count;
    *c = 1;
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        if (try_incref(c))
            decref(c);
    }
    return wrb_t_stop();
}

static double fl_load(void *ctx, long n)
{
    (void)ctx;
    intptr_t *c = &fl_cell[0].count;
    *c = 0;
    long hits = 0;
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        hits += __atomic_load_n(c, __ATOMIC_ACQUIRE) != 0;
        keep(c);
    }
    double t = wrb_t_stop();
    keep(&hits);
    return t;
}

static double fl_mutex_cas(void *ctx, long n)
{
    (void)ctx;
    intptr_t *c = &fl_cell[0].count;
    *c = 1;
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&fl_mutex);
        int ok = try_incref(c);
        pthread_mutex_unlock(&fl_mutex);
        if (ok)
            decref(c);
    }
    return wrb_t_stop();
}

static double fl_rwlock_cas(void *ctx, long n)
{
    (void)ctx;
    intptr_t *c = &fl_cell[0].count;
    *c = 1;
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        pthread_rwlock_rdlock(&fl_rwlock);
        int ok = try_incref(c);
        pthread_rwlock_unlock(&fl_rwlock);
        if (ok)
            decref(c);
    }
    return wrb_t_stop();
}

static double fl_spin_cas(void *ctx, long n)
{
    (void)ctx;
    intptr_t *c = &fl_cell[0].count;
    *c = 1;
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        while (__atomic_exchange_n(&fl_spin, 1, __ATOMIC_ACQUIRE))
            ;
        int ok = try_incref(c);
        __atomic_store_n(&fl_spin, 0, __ATOMIC_RELEASE);
        if (ok)
            decref(c);
    }
    return wrb_t_stop();
}

static double fl_malloc(void *ctx, long n)
{
    (void)ctx;
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        void *p = malloc(24);
        keep(p);
        free(p);
    }
    return wrb_t_stop();
}

static double fl_cas_cold(void *ctx, long n)
{
    (void)ctx;
    static long pos;
    if (!fl_cold) {
        fl_cold = xmalloc(WRB_COLD_N * 32);
        for (long i = 0; i < WRB_COLD_N; i++)
            fl_cold[i * 4] = 1;
    }
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        intptr_t *c = &fl_cold[wrb_perm[pos] * 4];
        if (try_incref(c))
            decref(c);
        if (++pos == WRB_COLD_N)
            pos = 0;
    }
    return wrb_t_stop();
}

static void fl_loop(void *arg, int slot, long n)
{
    intptr_t *c = &fl_cell[*(int *)arg ? 0 : slot].count;
    for (long i = 0; i < n; i++) {
        if (try_incref(c))
            decref(c);
    }
}

static double fl_2t(void *ctx, long n)
{
    fl_cell[0].count = fl_cell[1].count = 1;
    return run2(fl_loop, ctx, *(int *)ctx, n);
}

/* ---- wref and wref-check: one table of entry points per dlopen'ed library -------------------- */

typedef struct wapi {
    const char *name;
    void *h;
    wref_object *(*new_)(const wref_type *);
    void (*decref)(wref_object *);
    wref_object *(*ref_new)(wref_object *, wref_object *);
    wref_object *(*proxy_new)(wref_object *, wref_object *);
    int (*get_ref)(wref_object *, wref_object **);
    wref_object *(*get_object)(wref_object *);
    wref_object *(*callback_new)(wref_callback_fn, void *, void (*)(void *));
    void (*clear_no_cb)(wref_object *);
    size_t (*check_leaks)(void);
    int (*set_allocator)(const wref_allocator *);
    /* state kept across batches */
    wref_object *cb, *hot, *hot_ref, *dead_ref, *thr_ob[2], *thr_ref[2];
    wref_object **cold_ob, **cold_ref;
} wapi;

static wapi w_rel = {.name = "wref"}, w_chk = {.name = "wref-check"};

static const wref_type obj_type = {"bench_obj", sizeof(wref_object), WREF_TYPE_WEAKREFABLE,
                                   NULL, NULL, NULL, NULL};

/* A container owning n children: the census's leaked graph (1 direct leak, n indirect). */
struct bag {
    wref_object base;
    wapi *api;
    wref_object **kids;
    size_t n;
};

static int bag_traverse(wref_object *self, wref_visit_fn visit, void *arg)
{
    struct bag *b = (struct bag *)self;
    for (size_t i = 0; i < b->n; i++) {
        int r = visit(b->kids[i], arg);
        if (r)
            return r;
    }
    return 0;
}

static void bag_destroy(wref_object *self)
{
    struct bag *b = (struct bag *)self;
    for (size_t i = 0; i < b->n; i++)
        b->api->decref(b->kids[i]);
    free(b->kids);
}

static const wref_type bag_type = {"bench_bag", sizeof(struct bag), 0, NULL, bag_destroy,
                                   bag_traverse, NULL};

static int noop_cb(wref_object *ref, void *data)
{
    (void)ref;
    (void)data;
    return 0;
}

#define LOAD(api, field, sym)                                                   \
    do {                                                                        \
        *(void **)&(api)->field = dlsym((api)->h, sym);                         \
        if (!(api)->field) {                                                    \
            fprintf(stderr, "wrbench: %s: no symbol %s\n", (api)->name, sym);  \
            exit(2);                                                            \
        }                                                                       \
    } while (0)

static void wapi_open(wapi *a, const char *path)
{
    a->h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!a->h) {
        fprintf(stderr, "wrbench: dlopen %s: %s\n", path, dlerror());
        exit(2);
    }
    LOAD(a, new_, "wref_new");
    LOAD(a, decref, "wref_decref");
    LOAD(a, ref_new, "wref_ref_new");
    LOAD(a, proxy_new, "wref_proxy_new");
    LOAD(a, get_ref, "wref_get_ref");
    LOAD(a, get_object, "wref_get_object");
    LOAD(a, callback_new, "wref_callback_new");
    LOAD(a, clear_no_cb, "wref_clear_weakrefs_no_callbacks");
    LOAD(a, check_leaks, "wref_check_leaks");
    LOAD(a, set_allocator, "wref_set_allocator");
}

static wref_object *w_new_checked(wapi *a, const wref_type *t)
{
    wref_object *o = a->new_(t);
    if (!o)
        die("wref_new failed");
    return o;
}

static uint32_t stripe_of(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p >> 4;
    return (uint32_t)((x * 0x9E3779B97F4A7C15ull) >> 57);
}

static void wapi_init(wapi *a)
{
    a->cb = a->callback_new(noop_cb, NULL, NULL);
    a->hot = w_new_checked(a, &obj_type);
    a->hot_ref = a->ref_new(a->hot, NULL);
    wref_object *d = w_new_checked(a, &obj_type);
    a->dead_ref = a->ref_new(d, NULL);
    a->decref(d);
    /* The distinct objects of the 2-thread cases: never on one cache line (a spacer between
     * them; adjacent allocations would share lines) nor on one stripe lock (a 1-in-128 chance
     * for two random objects; the hash is wref__stripe_of, src/runtime/internal.h). */
    for (int i = 0; i < 2; i++) {
        for (;;) {
            a->thr_ob[i] = w_new_checked(a, &obj_type);
            keep(xmalloc(256));   /* spacer, never freed */
            if (i == 0 || stripe_of(a->thr_ob[1]) != stripe_of(a->thr_ob[0]))
                break;
        }
        a->thr_ref[i] = a->ref_new(a->thr_ob[i], NULL);
        keep(xmalloc(256));
    }
    if (!a->cb || !a->hot_ref || !a->dead_ref || !a->thr_ref[0] || !a->thr_ref[1])
        die("wref set-up failed");
}

static wref_object **w_objects(wapi *a, long n)
{
    wref_object **v = xmalloc(sizeof *v * (size_t)n);
    for (long i = 0; i < n; i++)
        v[i] = w_new_checked(a, &obj_type);
    return v;
}

static void w_release_all(wapi *a, wref_object **v, long n)
{
    for (long i = 0; i < n; i++)
        a->decref(v[i]);
    free(v);
}

static double w_create(void *ctx, long n)
{
    wapi *a = ctx;
    wref_object **v = xmalloc(sizeof *v * (size_t)n);
    wrb_t_start();
    for (long i = 0; i < n; i++)
        v[i] = a->new_(&obj_type);
    double t = wrb_t_stop();
    w_release_all(a, v, n);
    return t;
}

static double w_create_destroy(void *ctx, long n)
{
    wapi *a = ctx;
    wrb_t_start();
    for (long i = 0; i < n; i++)
        a->decref(a->new_(&obj_type));
    return wrb_t_stop();
}

/* kind: 0 first ref, 1 ref with callback, 2 first proxy */
static double w_ref_make(wapi *a, long n, int kind)
{
    wref_object **v = w_objects(a, n);
    wref_object **r = xmalloc(sizeof *r * (size_t)n);
    wrb_t_start();
    if (kind == 0)
        for (long i = 0; i < n; i++)
            r[i] = a->ref_new(v[i], NULL);
    else if (kind == 1)
        for (long i = 0; i < n; i++)
            r[i] = a->ref_new(v[i], a->cb);
    else
        for (long i = 0; i < n; i++)
            r[i] = a->proxy_new(v[i], NULL);
    double t = wrb_t_stop();
    w_release_all(a, r, n);
    w_release_all(a, v, n);
    return t;
}

static double w_ref_first(void *ctx, long n) { return w_ref_make(ctx, n, 0); }
static double w_ref_cb(void *ctx, long n) { return w_ref_make(ctx, n, 1); }
static double w_proxy(void *ctx, long n) { return w_ref_make(ctx, n, 2); }

static double w_ref_reuse(void *ctx, long n)
{
    wapi *a = ctx;
    wrb_t_start();
    for (long i = 0; i < n; i++)
        a->decref(a->ref_new(a->hot, NULL));
    return wrb_t_stop();
}

static double w_get_hot(void *ctx, long n)
{
    wapi *a = ctx;
    wref_object *o;
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        if (a->get_ref(a->hot_ref, &o) == 1)
            a->decref(o);
    }
    return wrb_t_stop();
}

static double w_get_miss(void *ctx, long n)
{
    wapi *a = ctx;
    wref_object *o;
    long hits = 0;
    wrb_t_start();
    for (long i = 0; i < n; i++)
        hits += a->get_ref(a->dead_ref, &o);
    double t = wrb_t_stop();
    if (hits)
        die("wref: a dead weakref returned an object");
    return t;
}

static double w_borrow(void *ctx, long n)
{
    wapi *a = ctx;
    wrb_t_start();
    for (long i = 0; i < n; i++)
        keep(a->get_object(a->hot_ref));
    return wrb_t_stop();
}

static double w_get_cold(void *ctx, long n)
{
    wapi *a = ctx;
    static long pos[2];
    long *p = &pos[a == &w_chk];
    if (!a->cold_ob) {
        a->cold_ob = w_objects(a, WRB_COLD_N);
        a->cold_ref = xmalloc(sizeof *a->cold_ref * WRB_COLD_N);
        for (long i = 0; i < WRB_COLD_N; i++)
            a->cold_ref[i] = a->ref_new(a->cold_ob[i], NULL);
    }
    wref_object *o;
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        if (a->get_ref(a->cold_ref[wrb_perm[*p]], &o) == 1)
            a->decref(o);
        if (++*p == WRB_COLD_N)
            *p = 0;
    }
    return wrb_t_stop();
}

/* Drop n weakrefs (16 per object, with callbacks so that they are distinct) while their
 * objects live, in creation order. */
static double w_drop(void *ctx, long n)
{
    wapi *a = ctx;
    long objs = (n + 15) / 16;
    wref_object **v = w_objects(a, objs);
    wref_object **r = xmalloc(sizeof *r * (size_t)objs * 16);
    for (long i = 0; i < objs * 16; i++)
        r[i] = a->ref_new(v[i / 16], a->cb);
    wrb_t_start();
    for (long i = 0; i < objs * 16; i++)
        a->decref(r[i]);
    double t = wrb_t_stop();
    free(r);
    w_release_all(a, v, objs);
    return t * (double)n / (double)(objs * 16);
}

/* Destroy n objects that each have k weakrefs. With callbacks: k refs with a no-op callback,
 * all run by the destruction. Without: k = 1 is the canonical ref; k > 1 distinct refs need a
 * callback in wref (no-callback refs are shared), so they are cleared with
 * wref_clear_weakrefs_no_callbacks (callbacks never run) as part of the timed destruction. */
static double w_destroy(wapi *a, long n, int k, int with_cb)
{
    wref_object **v = w_objects(a, n);
    wref_object **r = xmalloc(sizeof *r * ((size_t)n * (size_t)k + 1));
    for (long i = 0; i < n; i++)
        for (int j = 0; j < k; j++)
            r[i * k + j] = a->ref_new(v[i], (with_cb || k > 1) ? a->cb : NULL);
    int clear_first = !with_cb && k > 1;
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        if (clear_first)
            a->clear_no_cb(v[i]);
        a->decref(v[i]);
    }
    double t = wrb_t_stop();
    free(v);
    w_release_all(a, r, n * k);
    return t;
}

#define W_DESTROY(k, cb)                                                              \
    static double w_destroy_##k##_##cb(void *ctx, long n) { return w_destroy(ctx, n, k, cb); }
W_DESTROY(0, 0)
W_DESTROY(1, 0)
W_DESTROY(16, 0)
W_DESTROY(1024, 0)
W_DESTROY(1, 1)
W_DESTROY(16, 1)
W_DESTROY(1024, 1)

struct w2 {
    wapi *a;
    int same;
    int miss;
};

static void w_loop(void *arg, int slot, long n)
{
    struct w2 *c = arg;
    wapi *a = c->a;
    wref_object *ref = c->miss ? a->dead_ref : a->thr_ref[c->same ? 0 : slot];
    wref_object *o;
    for (long i = 0; i < n; i++) {
        if (a->get_ref(ref, &o) == 1)
            a->decref(o);
    }
}

static double w_2t(void *ctx, long n)
{
    struct w2 *c = ctx;
    return run2(w_loop, c, c->same, n);
}

/* ---- cpython: Debian's libpython3.11, embedded ---------------------------------------- */

static struct {
    PyObject *O, *R, *cb, *hot, *hot_ref, *dead_ref;
    PyObject **cold_ob, **cold_ref;
} py;

static PyObject *py_cb_fn(PyObject *self, PyObject *arg)
{
    (void)self;
    (void)arg;
    Py_RETURN_NONE;
}

static PyMethodDef py_cb_def = {"noop", py_cb_fn, METH_O, NULL};

static void py_init(void)
{
    Py_InitializeEx(0);
    if (PyRun_SimpleString("import weakref, gc\n"
                           "class O:\n    __slots__ = ('__weakref__',)\n"
                           "class R(weakref.ref):\n    __slots__ = ()\n"))
        die("python set-up failed");
    PyObject *main = PyImport_AddModule("__main__");
    py.O = PyObject_GetAttrString(main, "O");
    py.R = PyObject_GetAttrString(main, "R");
    py.cb = PyCFunction_New(&py_cb_def, NULL);
    py.hot = PyObject_CallNoArgs(py.O);
    py.hot_ref = PyWeakref_NewRef(py.hot, NULL);
    PyObject *d = PyObject_CallNoArgs(py.O);
    py.dead_ref = PyWeakref_NewRef(d, NULL);
    Py_DECREF(d);
    if (!py.O || !py.R || !py.cb || !py.hot_ref || !py.dead_ref)
        die("python set-up failed");
}

static PyObject **py_objects(long n)
{
    PyObject **v = xmalloc(sizeof *v * (size_t)n);
    for (long i = 0; i < n; i++)
        v[i] = PyObject_CallNoArgs(py.O);
    return v;
}

static void py_release_all(PyObject **v, long n)
{
    for (long i = 0; i < n; i++)
        Py_XDECREF(v[i]);
    free(v);
}

static double py_create(void *ctx, long n)
{
    (void)ctx;
    PyObject **v = xmalloc(sizeof *v * (size_t)n);
    wrb_t_start();
    for (long i = 0; i < n; i++)
        v[i] = PyObject_CallNoArgs(py.O);
    double t = wrb_t_stop();
    py_release_all(v, n);
    return t;
}

static double py_create_destroy(void *ctx, long n)
{
    (void)ctx;
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        PyObject *o = PyObject_CallNoArgs(py.O);
        Py_DECREF(o);
    }
    return wrb_t_stop();
}

static double py_ref_make(long n, int kind)
{
    PyObject **v = py_objects(n);
    PyObject **r = xmalloc(sizeof *r * (size_t)n);
    wrb_t_start();
    if (kind == 0)
        for (long i = 0; i < n; i++)
            r[i] = PyWeakref_NewRef(v[i], NULL);
    else if (kind == 1)
        for (long i = 0; i < n; i++)
            r[i] = PyWeakref_NewRef(v[i], py.cb);
    else
        for (long i = 0; i < n; i++)
            r[i] = PyWeakref_NewProxy(v[i], NULL);
    double t = wrb_t_stop();
    py_release_all(r, n);
    py_release_all(v, n);
    return t;
}

static double py_ref_first(void *ctx, long n) { (void)ctx; return py_ref_make(n, 0); }
static double py_ref_cb(void *ctx, long n) { (void)ctx; return py_ref_make(n, 1); }
static double py_proxy(void *ctx, long n) { (void)ctx; return py_ref_make(n, 2); }

static double py_ref_reuse(void *ctx, long n)
{
    (void)ctx;
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        PyObject *r = PyWeakref_NewRef(py.hot, NULL);
        Py_DECREF(r);
    }
    return wrb_t_stop();
}

/* PyWeakref_GetObject (borrowed) + Py_INCREF/Py_DECREF: 3.11's strong get (no GetRef yet). */
static inline void py_get_release(PyObject *ref)
{
    PyObject *o = PyWeakref_GetObject(ref);
    if (o != Py_None) {
        Py_INCREF(o);
        keep(o);
        Py_DECREF(o);
    }
}

static double py_get_hot(void *ctx, long n)
{
    (void)ctx;
    wrb_t_start();
    for (long i = 0; i < n; i++)
        py_get_release(py.hot_ref);
    return wrb_t_stop();
}

static double py_get_miss(void *ctx, long n)
{
    (void)ctx;
    long hits = 0;
    wrb_t_start();
    for (long i = 0; i < n; i++)
        hits += PyWeakref_GetObject(py.dead_ref) != Py_None;
    double t = wrb_t_stop();
    if (hits)
        die("cpython: a dead weakref returned an object");
    return t;
}

static double py_get_cold(void *ctx, long n)
{
    (void)ctx;
    static long pos;
    if (!py.cold_ob) {
        py.cold_ob = py_objects(WRB_COLD_N);
        py.cold_ref = xmalloc(sizeof *py.cold_ref * WRB_COLD_N);
        for (long i = 0; i < WRB_COLD_N; i++)
            py.cold_ref[i] = PyWeakref_NewRef(py.cold_ob[i], NULL);
        /* keep the cyclic GC from rescanning 2M long-lived objects during other cases */
        if (PyRun_SimpleString("gc.freeze()"))
            die("gc.freeze failed");
    }
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        py_get_release(py.cold_ref[wrb_perm[pos]]);
        if (++pos == WRB_COLD_N)
            pos = 0;
    }
    return wrb_t_stop();
}

static double py_drop(void *ctx, long n)
{
    (void)ctx;
    long objs = (n + 15) / 16;
    PyObject **v = py_objects(objs);
    PyObject **r = xmalloc(sizeof *r * (size_t)objs * 16);
    for (long i = 0; i < objs * 16; i++)
        r[i] = PyWeakref_NewRef(v[i / 16], py.cb);
    wrb_t_start();
    for (long i = 0; i < objs * 16; i++)
        Py_DECREF(r[i]);
    double t = wrb_t_stop();
    free(r);
    py_release_all(v, objs);
    return t * (double)n / (double)(objs * 16);
}

/* Without callbacks, k > 1 distinct refs are instances of a weakref.ref subclass (the
 * canonical basic ref is shared); k = 1 is the basic ref. */
static double py_destroy(long n, int k, int with_cb)
{
    PyObject **v = py_objects(n);
    PyObject **r = xmalloc(sizeof *r * ((size_t)n * (size_t)k + 1));
    for (long i = 0; i < n; i++)
        for (int j = 0; j < k; j++)
            r[i * k + j] = with_cb ? PyWeakref_NewRef(v[i], py.cb)
                           : k > 1 ? PyObject_CallOneArg(py.R, v[i])
                                   : PyWeakref_NewRef(v[i], NULL);
    wrb_t_start();
    for (long i = 0; i < n; i++)
        Py_DECREF(v[i]);
    double t = wrb_t_stop();
    free(v);
    py_release_all(r, n * k);
    return t;
}

#define PY_DESTROY(k, cb)                                                              \
    static double py_destroy_##k##_##cb(void *ctx, long n) { (void)ctx; return py_destroy(n, k, cb); }
PY_DESTROY(0, 0)
PY_DESTROY(1, 0)
PY_DESTROY(16, 0)
PY_DESTROY(1024, 0)
PY_DESTROY(1, 1)
PY_DESTROY(16, 1)
PY_DESTROY(1024, 1)

/* ---- glib: GLib 2.74 GWeakRef and g_object_weak_ref --------------------------------------- */

static struct {
    GObject *hot, *thr[2];
    GWeakRef hot_wr, dead_wr, thr_wr[2];
    GObject **cold_ob;
    GWeakRef *cold_wr;
} gl;

static void gl_notify(gpointer data, GObject *where)
{
    (void)data;
    keep(where);
}

static void gl_init(void)
{
    gl.hot = g_object_new(G_TYPE_OBJECT, NULL);
    g_weak_ref_init(&gl.hot_wr, gl.hot);
    GObject *d = g_object_new(G_TYPE_OBJECT, NULL);
    g_weak_ref_init(&gl.dead_wr, d);
    g_object_unref(d);
    for (int i = 0; i < 2; i++) {
        gl.thr[i] = g_object_new(G_TYPE_OBJECT, NULL);
        g_weak_ref_init(&gl.thr_wr[i], gl.thr[i]);
        keep(xmalloc(256));   /* spacer: the two objects never share a cache line */
    }
}

static GObject **gl_objects(long n)
{
    GObject **v = xmalloc(sizeof *v * (size_t)n);
    for (long i = 0; i < n; i++)
        v[i] = g_object_new(G_TYPE_OBJECT, NULL);
    return v;
}

static void gl_release_all(GObject **v, long n)
{
    for (long i = 0; i < n; i++)
        if (v[i])
            g_object_unref(v[i]);
    free(v);
}

static double gl_create(void *ctx, long n)
{
    (void)ctx;
    GObject **v = xmalloc(sizeof *v * (size_t)n);
    wrb_t_start();
    for (long i = 0; i < n; i++)
        v[i] = g_object_new(G_TYPE_OBJECT, NULL);
    double t = wrb_t_stop();
    gl_release_all(v, n);
    return t;
}

static double gl_create_destroy(void *ctx, long n)
{
    (void)ctx;
    wrb_t_start();
    for (long i = 0; i < n; i++)
        g_object_unref(g_object_new(G_TYPE_OBJECT, NULL));
    return wrb_t_stop();
}

static double gl_ref_first(void *ctx, long n)
{
    (void)ctx;
    GObject **v = gl_objects(n);
    GWeakRef *w = xmalloc(sizeof *w * (size_t)n);
    wrb_t_start();
    for (long i = 0; i < n; i++)
        g_weak_ref_init(&w[i], v[i]);
    double t = wrb_t_stop();
    for (long i = 0; i < n; i++)
        g_weak_ref_clear(&w[i]);
    free(w);
    gl_release_all(v, n);
    return t;
}

static double gl_ref_cb(void *ctx, long n)
{
    (void)ctx;
    GObject **v = gl_objects(n);
    wrb_t_start();
    for (long i = 0; i < n; i++)
        g_object_weak_ref(v[i], gl_notify, NULL);
    double t = wrb_t_stop();
    gl_release_all(v, n);
    return t;
}

/* GWeakRef has no canonical ref: the analog is one more GWeakRef made and cleared. */
static double gl_ref_reuse(void *ctx, long n)
{
    (void)ctx;
    GWeakRef w;
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        g_weak_ref_init(&w, gl.hot);
        g_weak_ref_clear(&w);
    }
    return wrb_t_stop();
}

static double gl_get_hot(void *ctx, long n)
{
    (void)ctx;
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        GObject *o = g_weak_ref_get(&gl.hot_wr);
        if (o)
            g_object_unref(o);
    }
    return wrb_t_stop();
}

static double gl_get_miss(void *ctx, long n)
{
    (void)ctx;
    long hits = 0;
    wrb_t_start();
    for (long i = 0; i < n; i++)
        hits += g_weak_ref_get(&gl.dead_wr) != NULL;
    double t = wrb_t_stop();
    if (hits)
        die("glib: a dead GWeakRef returned an object");
    return t;
}

static double gl_get_cold(void *ctx, long n)
{
    (void)ctx;
    static long pos;
    if (!gl.cold_ob) {
        gl.cold_ob = gl_objects(WRB_COLD_N);
        gl.cold_wr = xmalloc(sizeof *gl.cold_wr * WRB_COLD_N);
        for (long i = 0; i < WRB_COLD_N; i++)
            g_weak_ref_init(&gl.cold_wr[i], gl.cold_ob[i]);
    }
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        GObject *o = g_weak_ref_get(&gl.cold_wr[wrb_perm[pos]]);
        if (o)
            g_object_unref(o);
        if (++pos == WRB_COLD_N)
            pos = 0;
    }
    return wrb_t_stop();
}

static double gl_drop(void *ctx, long n)
{
    (void)ctx;
    long objs = (n + 15) / 16;
    GObject **v = gl_objects(objs);
    GWeakRef *w = xmalloc(sizeof *w * (size_t)objs * 16);
    for (long i = 0; i < objs * 16; i++)
        g_weak_ref_init(&w[i], v[i / 16]);
    wrb_t_start();
    for (long i = 0; i < objs * 16; i++)
        g_weak_ref_clear(&w[i]);
    double t = wrb_t_stop();
    free(w);
    gl_release_all(v, objs);
    return t * (double)n / (double)(objs * 16);
}

/* Without callbacks: k GWeakRefs; with: k g_object_weak_ref notifies. */
static double gl_destroy(long n, int k, int with_cb)
{
    GObject **v = gl_objects(n);
    GWeakRef *w = with_cb ? NULL : xmalloc(sizeof *w * ((size_t)n * (size_t)k + 1));
    for (long i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            if (with_cb)
                g_object_weak_ref(v[i], gl_notify, NULL);
            else
                g_weak_ref_init(&w[i * k + j], v[i]);
        }
    wrb_t_start();
    for (long i = 0; i < n; i++)
        g_object_unref(v[i]);
    double t = wrb_t_stop();
    if (w) {
        for (long i = 0; i < n * k; i++)
            g_weak_ref_clear(&w[i]);
        free(w);
    }
    free(v);
    return t;
}

#define GL_DESTROY(k, cb)                                                              \
    static double gl_destroy_##k##_##cb(void *ctx, long n) { (void)ctx; return gl_destroy(n, k, cb); }
GL_DESTROY(0, 0)
GL_DESTROY(1, 0)
GL_DESTROY(16, 0)
GL_DESTROY(1024, 0)
GL_DESTROY(1, 1)
GL_DESTROY(16, 1)
GL_DESTROY(1024, 1)

static void gl_loop(void *arg, int slot, long n)
{
    int same = *(int *)arg;
    GWeakRef *wr = &gl.thr_wr[same ? 0 : slot];
    for (long i = 0; i < n; i++) {
        GObject *o = g_weak_ref_get(wr);
        if (o)
            g_object_unref(o);
    }
}

static double gl_2t(void *ctx, long n)
{
    return run2(gl_loop, ctx, *(int *)ctx, n);
}

/* ---- std: peer_std.cpp ---------------------------------------------------------------- */

static double sd_create(void *ctx, long n) { (void)ctx; return std_create(n); }
static double sd_create_destroy(void *ctx, long n) { (void)ctx; return std_create_destroy(n); }
static double sd_ref_first(void *ctx, long n) { (void)ctx; return std_ref_first(n); }
static double sd_ref_reuse(void *ctx, long n) { (void)ctx; return std_ref_reuse(n); }
static double sd_get_hot(void *ctx, long n) { (void)ctx; return std_get_hot(n); }
static double sd_get_miss(void *ctx, long n) { (void)ctx; return std_get_miss(n); }
static double sd_get_cold(void *ctx, long n) { (void)ctx; return std_get_cold(n); }
static double sd_drop(void *ctx, long n) { (void)ctx; return std_drop(n); }
#define SD_DESTROY(k)                                                              \
    static double sd_destroy_##k(void *ctx, long n) { (void)ctx; return std_destroy(n, k); }
SD_DESTROY(0)
SD_DESTROY(1)
SD_DESTROY(16)
SD_DESTROY(1024)

static void sd_loop(void *arg, int slot, long n)
{
    std_get_loop(*(int *)arg ? 0 : slot, n);
}

static double sd_2t(void *ctx, long n)
{
    return run2(sd_loop, ctx, *(int *)ctx, n);
}

/* ---- backtrace capture at depth 16 -------------------------------------------------------- */

#define BT_DEPTH 16

static int (*glibc_backtrace)(void **, int);
static uintptr_t stack_lo, stack_hi;   /* the main thread's stack, for the FP walk's bounds */
static int bt_got[3];                  /* frames the last capture returned, per method */

/* Frame-pointer walk: each frame is {saved rbp, return address}; stop outside the stack or
 * when the chain does not grow toward the stack's base. */
static __attribute__((noinline)) int fp_walk(void **buf, int max)
{
    uintptr_t *fp = __builtin_frame_address(0);
    int n = 0;
    while (n < max && (uintptr_t)fp >= stack_lo && (uintptr_t)fp + 16 <= stack_hi &&
           !((uintptr_t)fp & 7)) {
        buf[n++] = (void *)fp[1];
        uintptr_t *next = (uintptr_t *)fp[0];
        if (next <= fp)
            break;
        fp = next;
    }
    return n;
}

static __attribute__((noinline)) int bt_capture(int method, void **buf)
{
    switch (method) {
    case 0: return fp_walk(buf, BT_DEPTH);
    case 1: return unw_backtrace(buf, BT_DEPTH);
    default: return glibc_backtrace(buf, BT_DEPTH);
    }
}

/* Recurses d frames deep, then captures: the capture always has >= BT_DEPTH frames to walk. */
static __attribute__((noinline)) int bt_rec(int d, int method, void **buf)
{
    if (d == 0)
        return bt_capture(method, buf);
    int r = bt_rec(d - 1, method, buf);
    __asm__ volatile("" : "+r"(r)::"memory");   /* not a tail call: keep this frame */
    return r;
}

static double bt_run(void *ctx, long n)
{
    int method = *(int *)ctx;
    void *buf[BT_DEPTH];
    int got = 0;
    wrb_t_start();
    for (long i = 0; i < n; i++)
        got = bt_rec(BT_DEPTH, method, buf);
    double t = wrb_t_stop();
    bt_got[method] = got;
    return t;
}

static void bt_init(void)
{
    pthread_attr_t at;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &at) == 0) {
        pthread_attr_getstack(&at, &addr, &size);
        stack_lo = (uintptr_t)addr;
        stack_hi = stack_lo + size;
        pthread_attr_destroy(&at);
    }
    /* glibc's own backtrace(): libunwind.so.8 exports a weak `backtrace` that could win */
    void *libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
    *(void **)&glibc_backtrace = libc ? dlsym(libc, "backtrace") : NULL;
    if (!glibc_backtrace)
        die("cannot find glibc's backtrace");
}

/* ---- the case table ------------------------------------------------------------------- */

typedef struct bcase {
    const char *op, *impl;
    int threads;
    double (*fn)(void *ctx, long n);
    void *ctx;
    int key;   /* in the --callgrind set */
    long n;
    double s[ROUNDS_MAX];
    double med, cv;
} bcase;

static bcase cases[256];
static int n_cases;

static const char *only;   /* --only: comma-separated impls to keep */

static void add(const char *op, const char *impl, int threads, double (*fn)(void *, long),
                void *ctx, int key)
{
    if (only) {
        size_t len = strlen(impl);
        const char *p = only;
        while ((p = strstr(p, impl)) && !((p == only || p[-1] == ',') && (p[len] == ',' || !p[len])))
            p++;
        if (!p)
            return;
    }
    if (n_cases == (int)(sizeof cases / sizeof cases[0]))
        die("too many cases");
    cases[n_cases++] = (bcase){.op = op, .impl = impl, .threads = threads, .fn = fn, .ctx = ctx,
                               .key = key};
}

static int one = 1, zero = 0, bt_fp = 0, bt_unw = 1, bt_glibc = 2;
static struct w2 w2_same_rel = {&w_rel, 1, 0}, w2_dist_rel = {&w_rel, 0, 0},
                 w2_miss_rel = {&w_rel, 1, 1}, w2_same_chk = {&w_chk, 1, 0},
                 w2_dist_chk = {&w_chk, 0, 0};

static void add_wref(wapi *a, struct w2 *same, struct w2 *dist)
{
    add("create_object", a->name, 1, w_create, a, 0);
    add("create_destroy", a->name, 1, w_create_destroy, a, 1);
    add("weakref_first", a->name, 1, w_ref_first, a, 0);
    add("weakref_reuse", a->name, 1, w_ref_reuse, a, 1);
    add("weakref_callback", a->name, 1, w_ref_cb, a, 0);
    add("proxy_first", a->name, 1, w_proxy, a, 0);
    add("get_hit_hot", a->name, 1, w_get_hot, a, 1);
    add("get_hit_cold", a->name, 1, w_get_cold, a, 0);
    add("get_miss", a->name, 1, w_get_miss, a, 1);
    add("borrow", a->name, 1, w_borrow, a, 1);
    add("drop_weakref", a->name, 1, w_drop, a, 0);
    add("destroy_0", a->name, 1, w_destroy_0_0, a, 0);
    add("destroy_1", a->name, 1, w_destroy_1_0, a, 0);
    if (a == &w_rel) {   /* in wref-check, suppressing callbacks is a finding (report cost) */
        add("destroy_16", a->name, 1, w_destroy_16_0, a, 1);
        add("destroy_1024", a->name, 1, w_destroy_1024_0, a, 0);
    }
    add("destroy_1_cb", a->name, 1, w_destroy_1_1, a, 0);
    add("destroy_16_cb", a->name, 1, w_destroy_16_1, a, 1);
    add("destroy_1024_cb", a->name, 1, w_destroy_1024_1, a, 0);
    add("get_hit_same_2t", a->name, 2, w_2t, same, 0);
    add("get_hit_distinct_2t", a->name, 2, w_2t, dist, 0);
}

static void build_cases(void)
{
    /* floor */
    add("load", "floor", 1, fl_load, NULL, 1);
    add("cas_decref", "floor", 1, fl_cas, NULL, 1);
    add("spin_cas_decref", "floor", 1, fl_spin_cas, NULL, 1);
    add("mutex_cas_decref", "floor", 1, fl_mutex_cas, NULL, 1);
    add("rwlock_cas_decref", "floor", 1, fl_rwlock_cas, NULL, 0);
    add("malloc_free", "floor", 1, fl_malloc, NULL, 1);
    add("cas_decref_cold", "floor", 1, fl_cas_cold, NULL, 0);
    add("cas_decref_same_2t", "floor", 2, fl_2t, &one, 0);
    add("cas_decref_distinct_2t", "floor", 2, fl_2t, &zero, 0);
    /* wref, wref-check */
    add_wref(&w_rel, &w2_same_rel, &w2_dist_rel);
    add("get_miss_same_2t", "wref", 2, w_2t, &w2_miss_rel, 0);
    add_wref(&w_chk, &w2_same_chk, &w2_dist_chk);
    /* cpython (GIL-serialized: no 2-thread cases) */
    add("create_object", "cpython", 1, py_create, NULL, 0);
    add("create_destroy", "cpython", 1, py_create_destroy, NULL, 1);
    add("weakref_first", "cpython", 1, py_ref_first, NULL, 0);
    add("weakref_reuse", "cpython", 1, py_ref_reuse, NULL, 1);
    add("weakref_callback", "cpython", 1, py_ref_cb, NULL, 0);
    add("proxy_first", "cpython", 1, py_proxy, NULL, 0);
    add("get_hit_hot", "cpython", 1, py_get_hot, NULL, 1);
    add("get_hit_cold", "cpython", 1, py_get_cold, NULL, 0);
    add("get_miss", "cpython", 1, py_get_miss, NULL, 1);
    add("drop_weakref", "cpython", 1, py_drop, NULL, 0);
    add("destroy_0", "cpython", 1, py_destroy_0_0, NULL, 0);
    add("destroy_1", "cpython", 1, py_destroy_1_0, NULL, 0);
    add("destroy_16", "cpython", 1, py_destroy_16_0, NULL, 1);
    add("destroy_1024", "cpython", 1, py_destroy_1024_0, NULL, 0);
    add("destroy_1_cb", "cpython", 1, py_destroy_1_1, NULL, 0);
    add("destroy_16_cb", "cpython", 1, py_destroy_16_1, NULL, 1);
    add("destroy_1024_cb", "cpython", 1, py_destroy_1024_1, NULL, 0);
    /* glib */
    add("create_object", "glib", 1, gl_create, NULL, 0);
    add("create_destroy", "glib", 1, gl_create_destroy, NULL, 1);
    add("weakref_first", "glib", 1, gl_ref_first, NULL, 0);
    add("weakref_reuse", "glib", 1, gl_ref_reuse, NULL, 1);
    add("weakref_callback", "glib", 1, gl_ref_cb, NULL, 0);
    add("get_hit_hot", "glib", 1, gl_get_hot, NULL, 1);
    add("get_hit_cold", "glib", 1, gl_get_cold, NULL, 0);
    add("get_miss", "glib", 1, gl_get_miss, NULL, 1);
    add("drop_weakref", "glib", 1, gl_drop, NULL, 0);
    add("destroy_0", "glib", 1, gl_destroy_0_0, NULL, 0);
    add("destroy_1", "glib", 1, gl_destroy_1_0, NULL, 0);
    add("destroy_16", "glib", 1, gl_destroy_16_0, NULL, 1);
    add("destroy_1024", "glib", 1, gl_destroy_1024_0, NULL, 0);
    add("destroy_1_cb", "glib", 1, gl_destroy_1_1, NULL, 0);
    add("destroy_16_cb", "glib", 1, gl_destroy_16_1, NULL, 1);
    add("destroy_1024_cb", "glib", 1, gl_destroy_1024_1, NULL, 0);
    add("get_hit_same_2t", "glib", 2, gl_2t, &one, 0);
    add("get_hit_distinct_2t", "glib", 2, gl_2t, &zero, 0);
    /* std */
    add("create_object", "std", 1, sd_create, NULL, 0);
    add("create_destroy", "std", 1, sd_create_destroy, NULL, 1);
    add("weakref_first", "std", 1, sd_ref_first, NULL, 0);
    add("weakref_reuse", "std", 1, sd_ref_reuse, NULL, 1);
    add("get_hit_hot", "std", 1, sd_get_hot, NULL, 1);
    add("get_hit_cold", "std", 1, sd_get_cold, NULL, 0);
    add("get_miss", "std", 1, sd_get_miss, NULL, 1);
    add("drop_weakref", "std", 1, sd_drop, NULL, 0);
    add("destroy_0", "std", 1, sd_destroy_0, NULL, 0);
    add("destroy_1", "std", 1, sd_destroy_1, NULL, 0);
    add("destroy_16", "std", 1, sd_destroy_16, NULL, 1);
    add("destroy_1024", "std", 1, sd_destroy_1024, NULL, 0);
    add("get_hit_same_2t", "std", 2, sd_2t, &one, 0);
    add("get_hit_distinct_2t", "std", 2, sd_2t, &zero, 0);
    /* backtrace capture */
    add("backtrace_16", "fp", 1, bt_run, &bt_fp, 0);
    add("backtrace_16", "libunwind", 1, bt_run, &bt_unw, 0);
    add("backtrace_16", "glibc", 1, bt_run, &bt_glibc, 0);
}

/* ---- memory and the checker's census --------------------------------------------------- */

static struct {
    long allocs, bytes, live_bytes;
} cnt;

static void *cnt_alloc(void *ctx, size_t size)
{
    (void)ctx;
    cnt.allocs++;
    cnt.bytes += (long)size;
    cnt.live_bytes += (long)size;
    return malloc(size);
}

static void cnt_free(void *ctx, void *p, size_t size)
{
    (void)ctx;
    cnt.live_bytes -= (long)size;
    free(p);
}

static struct {
    long object_bytes, weakref_bytes, weakref_cb_bytes, reuse_allocs, reuse_ops;
    double rel_rss_per_object, chk_rss_per_object;
    double census_ns[3];
    int census_runs;
    size_t census_findings;
    double py_weakref_bytes, py_object_bytes;
} mem;

/* 1M objects owned by one bag; returns the bag. RSS growth per object in *per_obj. */
static wref_object *make_bag(wapi *a, long n, double *per_obj)
{
    long before = rss_bytes();
    struct bag *b = (struct bag *)w_new_checked(a, &bag_type);
    b->api = a;
    b->kids = xmalloc(sizeof *b->kids * (size_t)n);
    for (long i = 0; i < n; i++)
        b->kids[i] = w_new_checked(a, &obj_type);
    b->n = (size_t)n;
    long after = rss_bytes();
    /* the kids array (8 bytes per object) is the harness's, not the library's */
    *per_obj = (double)(after - before) / (double)n - (double)sizeof(wref_object *);
    return &b->base;
}

/* make_bag's RSS growth per object, measured in a child process. */
static double rss_in_child(wapi *a)
{
    int fd[2];
    double per = 0;
    if (pipe(fd) != 0)
        die("pipe failed");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork failed");
    if (pid == 0) {
        close(fd[0]);
        make_bag(a, WRB_COLD_N, &per);
        (void)!write(fd[1], &per, sizeof per);
        _exit(0);
    }
    close(fd[1]);
    if (read(fd[0], &per, sizeof per) != (ssize_t)sizeof per)
        die("memory child failed");
    close(fd[0]);
    waitpid(pid, NULL, 0);
    return per;
}

static void measure_memory(void)
{
    /* release library: sizes through a counting allocator (set while nothing is allocated) */
    wref_allocator ca = {NULL, cnt_alloc, cnt_free};
    if (w_rel.set_allocator(&ca) != 0)
        die("wref_set_allocator failed");
    wref_object *o = w_new_checked(&w_rel, &obj_type);
    mem.object_bytes = cnt.bytes;
    long b0 = cnt.bytes;
    wref_object *r = w_rel.ref_new(o, NULL);
    mem.weakref_bytes = cnt.bytes - b0;
    wref_object *cb = w_rel.callback_new(noop_cb, NULL, NULL);
    b0 = cnt.bytes;
    wref_object *rc = w_rel.ref_new(o, cb);
    mem.weakref_cb_bytes = cnt.bytes - b0;
    long a0 = cnt.allocs;
    mem.reuse_ops = 100000;
    for (long i = 0; i < mem.reuse_ops; i++)
        w_rel.decref(w_rel.ref_new(o, NULL));
    mem.reuse_allocs = cnt.allocs - a0;
    w_rel.decref(rc);
    w_rel.decref(r);
    w_rel.decref(cb);
    w_rel.decref(o);
    if (w_rel.set_allocator(NULL) != 0)
        die("wref_set_allocator(NULL) failed");

    /* RSS per live object, each library in a forked child (a fresh heap: memory freed by an
     * earlier phase would hide growth), then the census of 1M live objects, 3 times */
    mem.chk_rss_per_object = rss_in_child(&w_chk);
    mem.rel_rss_per_object = rss_in_child(&w_rel);
    double per;
    for (int i = 0; i < 3; i++) {
        wref_object *bag = make_bag(&w_chk, WRB_COLD_N, &per);
        double t0 = now_ns();
        size_t f = w_chk.check_leaks();
        mem.census_ns[i] = now_ns() - t0;
        mem.census_findings = f;
        w_chk.decref(bag);
        mem.census_runs++;
    }

    /* CPython's own accounting (sys.getsizeof includes the GC header) */
    PyObject *main = PyImport_AddModule("__main__");
    if (PyRun_SimpleString("import sys\n_o = O()\n_wb = sys.getsizeof(weakref.ref(_o, lambda r: None))\n"
                           "_ob = sys.getsizeof(_o)\n"))
        die("python sizeof failed");
    PyObject *v = PyObject_GetAttrString(main, "_wb");
    mem.py_weakref_bytes = v ? PyLong_AsDouble(v) : 0;
    Py_XDECREF(v);
    v = PyObject_GetAttrString(main, "_ob");
    mem.py_object_bytes = v ? PyLong_AsDouble(v) : 0;
    Py_XDECREF(v);
}

/* ---- running, statistics, output ------------------------------------------------------- */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void stats(bcase *c, int rounds)
{
    double v[ROUNDS_MAX], sum = 0, sq = 0;
    memcpy(v, c->s, sizeof(double) * (size_t)rounds);
    qsort(v, (size_t)rounds, sizeof v[0], cmp_d);
    c->med = rounds % 2 ? v[rounds / 2] : (v[rounds / 2 - 1] + v[rounds / 2]) / 2;
    for (int i = 0; i < rounds; i++)
        sum += v[i];
    double mean = sum / rounds;
    for (int i = 0; i < rounds; i++)
        sq += (v[i] - mean) * (v[i] - mean);
    c->cv = rounds > 1 && mean > 0 ? sqrt(sq / (rounds - 1)) / mean : 0;
}

static long batch_cap(const bcase *c);

static void calibrate(bcase *c, double batch_ns)
{
    long n = 64, cap = batch_cap(c);
    for (;;) {
        double t = c->fn(c->ctx, n);
        if (t >= batch_ns || n >= cap)
            break;
        double f = t > 0 ? batch_ns * 1.05 / t : 16;
        if (f > 16)
            f = 16;
        if (f < 1.5)
            f = 1.5;
        n = (long)((double)n * f);
        if (n > cap)
            n = cap;
    }
    c->n = n;
}

/* Memory budget of the "destroy with k weakrefs" cases: at most 2M weakrefs alive in a batch
 * (std's destroy is O(1), so a 10 ms batch would otherwise hold ~1M objects x 1024 weak_ptrs). */
static long batch_cap(const bcase *c)
{
    if (!strncmp(c->op, "destroy_1024", 12))
        return 2048;
    if (!strncmp(c->op, "destroy_16", 10))
        return 131072;
    return 1L << 26;
}

static bcase *find(const char *op, const char *impl)
{
    for (int i = 0; i < n_cases; i++)
        if (!strcmp(cases[i].op, op) && !strcmp(cases[i].impl, impl))
            return &cases[i];
    return NULL;
}

static void json_machine(FILE *f)
{
    struct utsname u;
    uname(&u);
    char model[256] = "unknown";
    FILE *ci = fopen("/proc/cpuinfo", "r");
    if (ci) {
        char line[512];
        while (fgets(line, sizeof line, ci)) {
            if (!strncmp(line, "model name", 10)) {
                char *p = strchr(line, ':');
                if (p) {
                    snprintf(model, sizeof model, "%s", p + 2);
                    model[strcspn(model, "\n")] = 0;
                }
                break;
            }
        }
        fclose(ci);
    }
    fprintf(f, "  \"machine\": {\"cpu\": \"%s\", \"cpus\": %ld, \"kernel\": \"%s %s\", "
               "\"glibc\": \"%s\", \"python\": \"%s\", \"glib\": \"%u.%u.%u\", \"compiler\": \"gcc %s\"},\n",
            model, sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release, gnu_get_libc_version(),
            Py_GetVersion(), glib_major_version, glib_minor_version, glib_micro_version,
            __VERSION__);
}

static void write_json(const char *path, int rounds, uint64_t seed, double wall_s)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(2);
    }
    fprintf(f, "{\n");
    json_machine(f);
    fprintf(f, "  \"rounds\": %d, \"seed\": %llu, \"batch_ms\": %.0f, \"wall_s\": %.1f,\n", rounds,
            (unsigned long long)seed, BATCH_NS / 1e6, wall_s);
    fprintf(f, "  \"records\": [\n");
    for (int i = 0; i < n_cases; i++) {
        bcase *c = &cases[i];
        fprintf(f, "    {\"op\": \"%s\", \"impl\": \"%s\", \"ns\": %.3f, \"threads\": %d, "
                   "\"cv\": %.4f, \"batch\": %ld}%s\n",
                c->op, c->impl, c->med, c->threads, c->cv, c->n, i + 1 < n_cases ? "," : "");
    }
    fprintf(f, "  ],\n");
    fprintf(f, "  \"memory\": {\"wref_object_bytes\": %ld, \"wref_weakref_bytes\": %ld, "
               "\"wref_weakref_callback_bytes\": %ld, \"wref_reuse_allocations\": %ld, "
               "\"wref_reuse_ops\": %ld, \"wref_rss_per_object\": %.1f, "
               "\"wref_check_rss_per_object\": %.1f, \"cpython_weakref_bytes\": %.0f, "
               "\"cpython_object_bytes\": %.0f},\n",
            mem.object_bytes, mem.weakref_bytes, mem.weakref_cb_bytes, mem.reuse_allocs,
            mem.reuse_ops, mem.rel_rss_per_object, mem.chk_rss_per_object, mem.py_weakref_bytes,
            mem.py_object_bytes);
    fprintf(f, "  \"census\": {\"objects\": %ld, \"findings\": %zu, \"ns\": [", WRB_COLD_N + 1,
            mem.census_findings);
    for (int i = 0; i < mem.census_runs; i++)
        fprintf(f, "%s%.0f", i ? ", " : "", mem.census_ns[i]);
    fprintf(f, "]},\n");
    fprintf(f, "  \"backtrace_frames\": {\"fp\": %d, \"libunwind\": %d, \"glibc\": %d}\n", bt_got[0],
            bt_got[1], bt_got[2]);
    fprintf(f, "}\n");
    fclose(f);
}

static const char *impls[] = {"floor", "wref", "wref-check", "cpython", "glib", "std",
                              "fp", "libunwind", "glibc"};

static void print_table(void)
{
    printf("\n%-24s %3s", "op", "thr");
    for (size_t j = 0; j < sizeof impls / sizeof impls[0]; j++)
        printf(" %12s", impls[j]);
    printf("   (median ns/op; cv%% > 5 marked *)\n");
    for (int i = 0; i < n_cases; i++) {
        bcase *c = &cases[i];
        int first = 1;
        for (int k = 0; k < i; k++)
            if (!strcmp(cases[k].op, c->op))
                first = 0;
        if (!first)
            continue;
        printf("%-24s %3d", c->op, c->threads);
        for (size_t j = 0; j < sizeof impls / sizeof impls[0]; j++) {
            bcase *x = find(c->op, impls[j]);
            if (x)
                printf(" %11.2f%s", x->med, x->cv > 0.05 ? "*" : " ");
            else
                printf(" %12s", "-");
        }
        printf("\n");
    }
}

static void run_callgrind(void)
{
    /* the subtraction baseline: an empty timed region */
    tm.callgrind = 1;
    for (int i = 0; i < n_cases; i++) {
        bcase *c = &cases[i];
        if (!c->key || c->threads != 1)
            continue;
        tm.armed = 0;
        c->fn(c->ctx, CG_N);   /* warm-up */
    }
    CALLGRIND_START_INSTRUMENTATION;
    char name[128];
    tm.name = "empty";
    tm.armed = 1;
    wrb_t_start();
    wrb_t_stop();
    for (int i = 0; i < n_cases; i++) {
        bcase *c = &cases[i];
        if (!c->key || c->threads != 1)
            continue;
        snprintf(name, sizeof name, "%s/%s/%d", c->impl, c->op, CG_N);
        tm.name = name;
        tm.armed = 1;
        c->fn(c->ctx, CG_N);
    }
    CALLGRIND_STOP_INSTRUMENTATION;
}

static void usage(void)
{
    fprintf(stderr, "usage: wrbench [--rounds R] [--json PATH] [--quick] [--only IMPL,...] [--no-memory] [--memory-only] | --callgrind\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int rounds = 15, cg = 0, no_memory = 0, memory_only = 0;
    double batch_ns = BATCH_NS;
    const char *json = "results.json";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json = argv[++i];
        else if (!strcmp(argv[i], "--quick"))
            batch_ns = 1e6;
        else if (!strcmp(argv[i], "--callgrind"))
            cg = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--no-memory"))
            no_memory = 1;
        else if (!strcmp(argv[i], "--memory-only"))
            memory_only = 1;
        else
            usage();
    }
    if (rounds < 1 || rounds > ROUNDS_MAX)
        usage();
    /* libwref-check has initial-exec TLS (src/check/engine/stack.c), which dlopen can only place in
     * glibc's surplus static TLS (512 bytes by default): ask for more, re-executing once. */
    const char *tun = getenv("GLIBC_TUNABLES");
    if (!tun || !strstr(tun, "glibc.rtld.optional_static_tls")) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s%sglibc.rtld.optional_static_tls=65536", tun ? tun : "",
                 tun && *tun ? ":" : "");
        setenv("GLIBC_TUNABLES", buf, 1);
        execv("/proc/self/exe", argv);
        die("cannot re-execute with GLIBC_TUNABLES set");
    }
    const char *lib = getenv("WRBENCH_LIBWREF"), *chk = getenv("WRBENCH_LIBWREF_CHECK");
    wapi_open(&w_rel, lib && *lib ? lib : WRBENCH_LIBWREF);
    wapi_open(&w_chk, chk && *chk ? chk : WRBENCH_LIBWREF_CHECK);

    pin_to(0);
    wrb_perm = xmalloc(sizeof *wrb_perm * WRB_COLD_N);
    for (long i = 0; i < WRB_COLD_N; i++)
        wrb_perm[i] = i;
    for (long i = WRB_COLD_N - 1; i > 0; i--) {
        long j = (long)(rng() % (uint64_t)(i + 1));
        long t = wrb_perm[i];
        wrb_perm[i] = wrb_perm[j];
        wrb_perm[j] = t;
    }
    py_init();
    if (!cg && !no_memory)
        measure_memory();   /* first: the counting allocator needs an idle release library */
    if (memory_only) {   /* the RSS per live object and the census only (bench/notes.md) */
        printf("RSS per live object: wref %.1f B, wref-check %.1f B (checker metadata %.1f B); "
               "census of %ld live objects: %.3f / %.3f / %.3f s\n",
               mem.rel_rss_per_object, mem.chk_rss_per_object,
               mem.chk_rss_per_object - mem.rel_rss_per_object, WRB_COLD_N + 1, mem.census_ns[0] / 1e9,
               mem.census_ns[1] / 1e9, mem.census_ns[2] / 1e9);
        fflush(NULL);
        _exit(0);
    }
    wapi_init(&w_rel);
    wapi_init(&w_chk);
    gl_init();
    std_init();
    bt_init();
    build_cases();

    if (cg) {
        run_callgrind();
        fflush(NULL);
        _exit(0);
    }

    uint64_t seed = (uint64_t)now_ns();
    rng_state = seed | 1;
    double start = now_ns();
    fprintf(stderr, "wrbench: %d cases, calibrating to %.0f ms batches\n", n_cases, batch_ns / 1e6);
    for (int i = 0; i < n_cases; i++)
        calibrate(&cases[i], batch_ns);   /* also the discarded warm-up */
    int order[256];
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < n_cases; i++)
            order[i] = i;
        for (int i = n_cases - 1; i > 0; i--) {
            int j = (int)(rng() % (uint64_t)(i + 1));
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int i = 0; i < n_cases; i++) {
            bcase *c = &cases[order[i]];
            c->s[r] = c->fn(c->ctx, c->n) / (double)c->n;
        }
        fprintf(stderr, "wrbench: round %d/%d done (%.0f s)\n", r + 1, rounds, (now_ns() - start) / 1e9);
    }
    for (int i = 0; i < n_cases; i++)
        stats(&cases[i], rounds);
    double wall = (now_ns() - start) / 1e9;
    print_table();
    printf("\nmemory: wref object %ld B, weakref %ld B (with callback %ld B), %ld allocations in %ld "
           "canonical reuses; RSS per live object: wref %.1f B, wref-check %.1f B; CPython weakref %.0f B\n",
           mem.object_bytes, mem.weakref_bytes, mem.weakref_cb_bytes, mem.reuse_allocs, mem.reuse_ops,
           mem.rel_rss_per_object, mem.chk_rss_per_object, mem.py_weakref_bytes);
    printf("census of %ld live objects: %.3f / %.3f / %.3f s (%zu findings)\n", WRB_COLD_N + 1,
           mem.census_ns[0] / 1e9, mem.census_ns[1] / 1e9, mem.census_ns[2] / 1e9, mem.census_findings);
    printf("backtrace frames captured at depth %d: fp %d, libunwind %d, glibc %d\n", BT_DEPTH,
           bt_got[0], bt_got[1], bt_got[2]);
    write_json(json, rounds, seed, wall);
    printf("wrote %s (%.0f s)\n", json, wall);
    fflush(NULL);
    _exit(0);   /* skip the checker's exit census: the bench leaves its set-up objects alive */
}
