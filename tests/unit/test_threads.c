/* test_threads.c: thread safety (api.md "Threads").
 *
 * 1. wref_get_ref racing with the last wref_decref on another thread never hands out an object
 *    whose count reached 0: every object it returns has count >= 1 and has not been destroyed
 *    while we hold it.
 * 2. A mixed stress test on several threads: refs and proxies with and without callbacks,
 *    get_ref, decref of shared objects, death (clearing and callbacks) racing with readers.
 *
 * 3. Deferred frees are bounded: while other threads read a weakref lock-free, a thread that
 *    kills weakly referenced objects holds back at most 64 of them (the documented per-thread
 *    bound of the release library's delayed frees), at least one (the deferral is real), and
 *    none once it has exited.
 * 4. Canonical reuse (wref_ref_new without callback), lock-free in the release library, racing
 *    with the canonical ref's own death (its count reaching 0 on another thread, its memory
 *    freed after a grace period) and with the object's weakrefs being cleared: it returns the
 *    canonical ref of the object, alive, or a new one; never a dying or freed weakref (ASan and
 *    TSan run this too).
 * 5. wref_set_allocator counts the allocations of every thread (per-thread counters in the
 *    release library): one allocated on a thread that has exited, or allocated on one thread
 *    and freed on another, counts right, and an object alive all along is seen while another
 *    thread allocates and frees as fast as it can.
 *
 * WREF_STRESS_OPS scales the total number of operations (default 1,000,000; keep it so under
 * ThreadSanitizer on two cores the whole program finishes well within 60 s). WREF_STRESS_THREADS
 * sets the thread count (default 4, at least 2). */
#include "support.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"   /* wref_get_object: the borrowed read is tested too */

#include <pthread.h>
#include <sched.h>

static struct counting_alloc g_alloc = {.fail_at = -1};

static long env_long(const char *name, long dflt, long min)
{
    const char *s = getenv(name);
    long v = s ? strtol(s, NULL, 10) : dflt;
    return v < min ? min : v;
}

static long stress_ops(void) { return env_long("WREF_STRESS_OPS", 1000000, 1000); }

/* ---- 1. get_ref vs last decref ------------------------------------------------------------ */

struct race {
    long n;
    wref_object **objs;    /* strong refs, dropped by the killer thread */
    wref_object **refs;    /* weakrefs, held by main */
    int go;                /* atomic start flag */
    long handed_out;       /* atomic: get_ref successes */
    long bad_count;        /* atomic: returned with count < 2 (ours + someone's) */
    long bad_destroyed;    /* atomic: returned after destroy() ran */
    long bad_rc;           /* atomic: get_ref returned -1 or pobj inconsistent */
    int destroyed;         /* atomic via widget_destroy */
};

static void *killer(void *arg)
{
    struct race *r = arg;
    while (!__atomic_load_n(&r->go, __ATOMIC_ACQUIRE))
        sched_yield();
    for (long i = 0; i < r->n; i++)
        wref_decref(r->objs[i]);
    return NULL;
}

static void *reader(void *arg)
{
    struct race *r = arg;
    while (!__atomic_load_n(&r->go, __ATOMIC_ACQUIRE))
        sched_yield();
    for (long i = 0; i < r->n; i++) {
        for (;;) {
            wref_object *o = (wref_object *)(uintptr_t)1;
            int rc = wref_get_ref(r->refs[i], &o);
            if (rc == 0) {
                if (o != NULL)
                    __atomic_fetch_add(&r->bad_rc, 1, __ATOMIC_RELAXED);
                break;
            }
            if (rc != 1 || o == NULL) {
                __atomic_fetch_add(&r->bad_rc, 1, __ATOMIC_RELAXED);
                break;
            }
            __atomic_fetch_add(&r->handed_out, 1, __ATOMIC_RELAXED);
            if (wref_refcount(o) < 1)
                __atomic_fetch_add(&r->bad_count, 1, __ATOMIC_RELAXED);
            if (__atomic_load_n(&W(o)->dead_flag, __ATOMIC_ACQUIRE))
                __atomic_fetch_add(&r->bad_destroyed, 1, __ATOMIC_RELAXED);
            /* hold it a moment, then check again: still not destroyed */
            for (volatile int k = 0; k < 8; k++)
                ;
            if (__atomic_load_n(&W(o)->dead_flag, __ATOMIC_ACQUIRE))
                __atomic_fetch_add(&r->bad_destroyed, 1, __ATOMIC_RELAXED);
            wref_decref(o);   /* may be the last reference: destruction on this thread */
        }
    }
    return NULL;
}

static void threads_getref_races_last_decref(void **state)
{
    (void)state;
    struct race r = {.n = stress_ops() / 10};
    r.objs = calloc((size_t)r.n, sizeof *r.objs);
    r.refs = calloc((size_t)r.n, sizeof *r.refs);
    assert_non_null(r.objs);
    assert_non_null(r.refs);
    for (long i = 0; i < r.n; i++) {
        r.objs[i] = new_obj(&widget_type);
        W(r.objs[i])->destroyed = &r.destroyed;
        r.refs[i] = (i % 3 == 2) ? wref_proxy_new(r.objs[i], NULL) : wref_ref_new(r.objs[i], NULL);
        assert_non_null(r.refs[i]);
    }
    pthread_t a, b;
    assert_int_equal(pthread_create(&a, NULL, killer, &r), 0);
    assert_int_equal(pthread_create(&b, NULL, reader, &r), 0);
    __atomic_store_n(&r.go, 1, __ATOMIC_RELEASE);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    assert_int_equal(r.bad_rc, 0);
    assert_int_equal(r.bad_count, 0);
    assert_int_equal(r.bad_destroyed, 0);
    assert_int_equal(__atomic_load_n(&r.destroyed, __ATOMIC_ACQUIRE), r.n);
    for (long i = 0; i < r.n; i++) {
        wref_object *o = (wref_object *)(uintptr_t)1;
        assert_int_equal(wref_get_ref(r.refs[i], &o), 0);
        assert_null(o);
        wref_decref(r.refs[i]);
    }
    free(r.objs);
    free(r.refs);
    print_message("get_ref handed out %ld live objects during the race\n", r.handed_out);
}

/* Same race with callbacks: the killer's last decref runs callbacks while the reader calls
 * get_ref on the callback refs and on the canonical ref. Each callback must see its weakref
 * dead and must run exactly once. */
struct race_cb {
    struct race base;
    wref_object **cbrefs;
    long calls;            /* atomic */
    long cb_saw_live;      /* atomic */
};

static int race_cb_fn(wref_object *weakref, void *data)
{
    struct race_cb *r = data;
    wref_object *o = NULL;
    if (wref_get_ref(weakref, &o) != 0 || o)
        __atomic_fetch_add(&r->cb_saw_live, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&r->calls, 1, __ATOMIC_RELAXED);
    return 0;
}

static void threads_getref_races_death_with_callbacks(void **state)
{
    (void)state;
    struct race_cb r = {.base.n = stress_ops() / 20};
    long n = r.base.n;
    r.base.objs = calloc((size_t)n, sizeof(wref_object *));
    r.base.refs = calloc((size_t)n, sizeof(wref_object *));
    r.cbrefs = calloc((size_t)n, sizeof(wref_object *));
    wref_object *cb = wref_callback_new(race_cb_fn, &r, NULL);
    assert_non_null(cb);
    for (long i = 0; i < n; i++) {
        r.base.objs[i] = new_obj(&widget_type);
        W(r.base.objs[i])->destroyed = &r.base.destroyed;
        r.base.refs[i] = wref_ref_new(r.base.objs[i], cb);
        r.cbrefs[i] = wref_ref_new(r.base.objs[i], NULL);
        assert_non_null(r.base.refs[i]);
        assert_non_null(r.cbrefs[i]);
    }
    pthread_t a, b;
    assert_int_equal(pthread_create(&a, NULL, killer, &r.base), 0);
    assert_int_equal(pthread_create(&b, NULL, reader, &r.base), 0);
    __atomic_store_n(&r.base.go, 1, __ATOMIC_RELEASE);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    assert_int_equal(r.base.bad_rc, 0);
    assert_int_equal(r.base.bad_count, 0);
    assert_int_equal(r.base.bad_destroyed, 0);
    assert_int_equal(r.calls, n);
    assert_int_equal(r.cb_saw_live, 0);
    for (long i = 0; i < n; i++) {
        wref_decref(r.base.refs[i]);
        wref_decref(r.cbrefs[i]);
    }
    wref_decref(cb);
    free(r.base.objs);
    free(r.base.refs);
    free(r.cbrefs);
}

/* ---- 2. mixed stress ---------------------------------------------------------------------- */

#define SLOTS 64

struct slot {
    pthread_mutex_t mu;
    wref_object *strong;   /* a shared object, or NULL */
    wref_object *weak;     /* a weakref (ref or proxy) to some object, or NULL */
};

struct stress {
    struct slot slots[SLOTS];
    long ops_per_thread;
    int go;
    wref_object *cb;           /* shared callback object */
    long created;              /* atomic */
    int destroyed;             /* atomic */
    long cb_calls;             /* atomic */
    long cb_bad;               /* atomic: callback saw its weakref live */
    long bad;                  /* atomic: get_ref handed out a dying/destroyed object */
    long getref_live;          /* atomic */
};

static int stress_cb(wref_object *weakref, void *data)
{
    struct stress *s = data;
    wref_object *o = NULL;
    if (!wref_is_weakref(weakref) || wref_get_ref(weakref, &o) != 0 || o)
        __atomic_fetch_add(&s->cb_bad, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&s->cb_calls, 1, __ATOMIC_RELAXED);
    return 0;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Swap `val` into the slot's field (steals val); drops the old value outside the lock. */
static void slot_put(struct slot *sl, int weak, wref_object *val)
{
    pthread_mutex_lock(&sl->mu);
    wref_object **f = weak ? &sl->weak : &sl->strong;
    wref_object *old = *f;
    *f = val;
    pthread_mutex_unlock(&sl->mu);
    wref_xdecref(old);
}

/* A new reference to the slot's field, or NULL. */
static wref_object *slot_get(struct slot *sl, int weak)
{
    pthread_mutex_lock(&sl->mu);
    wref_object *v = weak ? sl->weak : sl->strong;
    wref_xincref(v);
    pthread_mutex_unlock(&sl->mu);
    return v;
}

static void check_handed_out(struct stress *s, wref_object *o)
{
    if (wref_refcount(o) < 1 || __atomic_load_n(&W(o)->dead_flag, __ATOMIC_ACQUIRE))
        __atomic_fetch_add(&s->bad, 1, __ATOMIC_RELAXED);
}

static void *stress_worker(void *arg)
{
    struct stress *s = ((void **)arg)[0];
    uint64_t seed = (uint64_t)(uintptr_t)((void **)arg)[1] * 0x9E3779B97F4A7C15ull + 1;
    wref_object *mine[8] = {0};   /* thread-local strong objects */
    while (!__atomic_load_n(&s->go, __ATOMIC_ACQUIRE))
        sched_yield();
    for (long op = 0; op < s->ops_per_thread; op++) {
        uint64_t r = xorshift(&seed);
        struct slot *sl = &s->slots[(r >> 8) % SLOTS];
        unsigned kind = (unsigned)(r % 16);
        switch (kind) {
        case 0: case 1: {   /* create an object: keep it locally, publish it, or both */
            wref_object *o = wref_new(&widget_type);
            if (!o)
                break;
            __atomic_fetch_add(&s->created, 1, __ATOMIC_RELAXED);
            W(o)->destroyed = &s->destroyed;
            unsigned k = (unsigned)(r >> 20) % 8;
            if (kind == 1) {
                W(o)->id = 1;   /* shared: other threads may clear its weakrefs */
                wref_incref(o);
                slot_put(sl, 0, o);
            }
            wref_xdecref(mine[k]);   /* may be the last: clearing + callbacks here */
            mine[k] = o;
            break;
        }
        case 2: case 3: case 4: {   /* weakref to a local or shared object, publish it */
            wref_object *o = (r & 0x10000) ? slot_get(sl, 0) : NULL;
            if (!o) {
                o = mine[(r >> 20) % 8];
                wref_xincref(o);
            }
            if (!o)
                break;
            wref_object *w;
            switch ((r >> 24) % 4) {
            case 0: w = wref_ref_new(o, NULL); break;
            case 1: w = wref_ref_new(o, s->cb); break;
            case 2: w = wref_proxy_new(o, NULL); break;
            default: w = wref_proxy_new(o, s->cb); break;
            }
            wref_decref(o);
            if (w)
                slot_put(sl, 1, w);
            break;
        }
        case 5: case 6: case 7: case 8: case 9: {   /* get_ref through a shared weakref */
            wref_object *w = slot_get(sl, 1);
            if (!w)
                break;
            wref_object *o = NULL;
            int rc = wref_get_ref(w, &o);
            if (rc == 1) {
                __atomic_fetch_add(&s->getref_live, 1, __ATOMIC_RELAXED);
                check_handed_out(s, o);
                if (kind == 9) {   /* the canonical ref of a live object is reused */
                    wref_object *c1 = wref_ref_new(o, NULL), *c2 = wref_ref_new(o, NULL);
                    /* another thread may clear o's weakrefs (case 14) in between: then c1 is dead */
                    wref_object *g = NULL;
                    if (c1 != c2 && c1 && wref_get_ref(c1, &g) == 1)
                        __atomic_fetch_add(&s->bad, 1, __ATOMIC_RELAXED);
                    wref_xdecref(g);
                    wref_xdecref(c1);
                    wref_xdecref(c2);
                }
                wref_decref(o);
            } else if (rc != 0 || o) {
                __atomic_fetch_add(&s->bad, 1, __ATOMIC_RELAXED);
            }
            wref_decref(w);
            break;
        }
        case 10: case 11: {   /* drop a shared or local object (often the last reference) */
            if (kind == 10) {
                slot_put(sl, 0, NULL);
            } else {
                unsigned k = (unsigned)(r >> 20) % 8;
                wref_xdecref(mine[k]);
                mine[k] = NULL;
            }
            break;
        }
        case 12: {   /* drop a shared weakref */
            slot_put(sl, 1, NULL);
            break;
        }
        case 13: {   /* count / list weakrefs of a shared object */
            wref_object *o = slot_get(sl, 0);
            if (!o)
                break;
            wref_object *out[4];
            size_t n = wref_weakrefs(o, out, 4);
            for (size_t i = 0; i < n && i < 4; i++) {
                if (out[i] && !wref_is_weakref(out[i]))
                    __atomic_fetch_add(&s->bad, 1, __ATOMIC_RELAXED);
                wref_xdecref(out[i]);
            }
            (void)wref_weakref_count(o);
            wref_decref(o);
            break;
        }
        case 14: {   /* clear a shared object's weakrefs without callbacks (live object) */
            wref_object *o = slot_get(sl, 0);
            if (o && ((r >> 30) % 8) == 0)
                wref_clear_weakrefs_no_callbacks(o);
            wref_xdecref(o);
            break;
        }
        default: {   /* get_ref on a local object's canonical ref */
            wref_object *o = mine[(r >> 20) % 8];
            if (!o || W(o)->id == 1)
                break;
            wref_object *w = wref_ref_new(o, NULL), *got = NULL;
            if (w && (wref_get_ref(w, &got) != 1 || got != o))
                __atomic_fetch_add(&s->bad, 1, __ATOMIC_RELAXED);
            wref_xdecref(got);
            wref_xdecref(w);
            break;
        }
        }
    }
    for (int k = 0; k < 8; k++)
        wref_xdecref(mine[k]);
    if (wref_err_occurred() != WREF_OK)
        __atomic_fetch_add(&s->bad, 1, __ATOMIC_RELAXED);
    return NULL;
}

static void threads_mixed_stress(void **state)
{
    (void)state;
    long nthreads = env_long("WREF_STRESS_THREADS", 4, 2);
    long total = stress_ops();
    static struct stress s;
    memset(&s, 0, sizeof s);
    s.ops_per_thread = (total + nthreads - 1) / nthreads;
    for (int i = 0; i < SLOTS; i++)
        pthread_mutex_init(&s.slots[i].mu, NULL);
    s.cb = wref_callback_new(stress_cb, &s, NULL);
    assert_non_null(s.cb);
    pthread_t th[64];
    void *args[64][2];
    if (nthreads > 64)
        nthreads = 64;
    for (long i = 0; i < nthreads; i++) {
        args[i][0] = &s;
        args[i][1] = (void *)(uintptr_t)(i + 1);
        assert_int_equal(pthread_create(&th[i], NULL, stress_worker, args[i]), 0);
    }
    __atomic_store_n(&s.go, 1, __ATOMIC_RELEASE);
    for (long i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < SLOTS; i++) {
        slot_put(&s.slots[i], 0, NULL);
        slot_put(&s.slots[i], 1, NULL);
        pthread_mutex_destroy(&s.slots[i].mu);
    }
    assert_int_equal(s.bad, 0);
    assert_int_equal(s.cb_bad, 0);
    assert_int_equal(__atomic_load_n(&s.destroyed, __ATOMIC_ACQUIRE), s.created);
    wref_decref(s.cb);
    assert_int_equal(live_count(&g_alloc), 0);
    assert_int_equal(g_alloc.bad_free, 0);
    print_message("%ld threads x %ld ops: %ld objects, %ld live get_refs, %ld callbacks\n",
                  nthreads, s.ops_per_thread, s.created, s.getref_live, s.cb_calls);
}

/* ---- 3. deferred frees ------------------------------------------------------------------ */

#define DEFER_BOUND 64   /* wref.h "allocator": objects held back per thread by the release library */

struct churn {
    wref_object *hot_ref;   /* read by the readers all along */
    int stop;               /* atomic */
    int ready;              /* atomic: readers that made their first read */
    long iters;
    size_t baseline;        /* allocator blocks live before the churn */
    size_t peak, peak_bytes, base_bytes;
    long bad;               /* atomic */
};

static void *churn_reader(void *arg)
{
    struct churn *c = arg;
    long n = 0;
    while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
        wref_object *o = NULL;
        if (wref_get_ref(c->hot_ref, &o) != 1)
            __atomic_fetch_add(&c->bad, 1, __ATOMIC_RELAXED);
        else
            wref_decref(o);
        if (wref_get_object(c->hot_ref) == wref_none())
            __atomic_fetch_add(&c->bad, 1, __ATOMIC_RELAXED);
        if (n++ == 0)
            __atomic_fetch_add(&c->ready, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void *churner(void *arg)
{
    struct churn *c = arg;
    for (long k = 0; k < c->iters; k++) {
        wref_object *o = wref_new(&widget_type);
        wref_object *r = o ? wref_ref_new(o, NULL) : NULL;
        if (!r) {
            __atomic_fetch_add(&c->bad, 1, __ATOMIC_RELAXED);
            break;
        }
        wref_decref(o);   /* it had a weakref: its free may wait for the readers */
        wref_object *got = (wref_object *)1;
        if (wref_get_ref(r, &got) != 0 || got != NULL)
            __atomic_fetch_add(&c->bad, 1, __ATOMIC_RELAXED);
        wref_decref(r);
        size_t live = live_count(&g_alloc), bytes = __atomic_load_n(&g_alloc.live_bytes, __ATOMIC_RELAXED);
        if (live > c->baseline && live - c->baseline > c->peak)
            c->peak = live - c->baseline;
        if (bytes > c->base_bytes && bytes - c->base_bytes > c->peak_bytes)
            c->peak_bytes = bytes - c->base_bytes;
    }
    return NULL;
}

static void threads_deferred_frees_bounded(void **state)
{
    (void)state;
    struct churn c = {0};
    c.iters = stress_ops() / 10;
    wref_object *hot = new_obj(&widget_type);
    c.hot_ref = wref_ref_new(hot, NULL);
    assert_non_null(c.hot_ref);
    pthread_t rd[2], ch;
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&rd[i], NULL, churn_reader, &c), 0);
    while (__atomic_load_n(&c.ready, __ATOMIC_ACQUIRE) < 2)
        sched_yield();
    c.baseline = live_count(&g_alloc);
    c.base_bytes = __atomic_load_n(&g_alloc.live_bytes, __ATOMIC_RELAXED);
    assert_int_equal(pthread_create(&ch, NULL, churner, &c), 0);
    pthread_join(ch, NULL);
    /* the churner has exited: everything it held back is freed */
    size_t after = live_count(&g_alloc);
    __atomic_store_n(&c.stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 2; i++)
        pthread_join(rd[i], NULL);
    print_message("%ld objects killed while 2 threads read: at most %zu held back (%zu bytes)\n",
                  c.iters, c.peak, c.peak_bytes);
    assert_int_equal(c.bad, 0);
    assert_int_equal(after, c.baseline);
    assert_true(c.peak <= DEFER_BOUND);
    assert_true(c.peak >= 1);   /* the deferral is real: the readers were inside the library */
    wref_decref(hot);
    wref_decref(c.hot_ref);
    assert_int_equal(live_count(&g_alloc), 0);
}

/* ---- 4. canonical reuse vs the canonical ref's death ------------------------------------- */

struct reuse_race {
    wref_object *ob;
    long iters;
    int clearing;      /* phase 2: a third thread clears ob's weakrefs meanwhile */
    int stop;          /* atomic: the clearer stops */
    long bad;          /* atomic */
    long cleared_seen; /* atomic: refs found dead (phase 2 only) */
};

static void *reuse_worker(void *arg)
{
    struct reuse_race *c = arg;
    for (long i = 0; i < c->iters; i++) {
        wref_object *r = wref_ref_new(c->ob, NULL);
        if (!r || !wref_is_ref(r) || wref_refcount(r) < 1 || wref_ref_callback(r) != NULL) {
            __atomic_fetch_add(&c->bad, 1, __ATOMIC_RELAXED);
            wref_xdecref(r);
            continue;
        }
        wref_object *g = NULL;
        int rc = wref_get_ref(r, &g);
        if (rc == 1 && g == c->ob)
            wref_decref(g);
        else if (rc == 0 && c->clearing)
            __atomic_fetch_add(&c->cleared_seen, 1, __ATOMIC_RELAXED);
        else
            __atomic_fetch_add(&c->bad, 1, __ATOMIC_RELAXED);
        /* the same thread asking again gets the same ref while it holds one (unless cleared) */
        wref_object *again = wref_ref_new(c->ob, NULL);
        if (!again || (again != r && !c->clearing))
            __atomic_fetch_add(&c->bad, 1, __ATOMIC_RELAXED);
        wref_xdecref(again);
        wref_decref(r);   /* often the last reference: the canonical ref dies here */
    }
    return NULL;
}

static void *reuse_clearer(void *arg)
{
    struct reuse_race *c = arg;
    while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
        wref_clear_weakrefs_no_callbacks(c->ob);
        sched_yield();
    }
    return NULL;
}

static void threads_canonical_reuse_races_ref_death(void **state)
{
    (void)state;
    for (int phase = 0; phase < 2; phase++) {
        struct reuse_race c = {0};
        c.ob = new_obj(&widget_type);
        c.iters = stress_ops() / 10;
        c.clearing = phase;
        pthread_t th[2], cl;
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&th[i], NULL, reuse_worker, &c), 0);
        if (c.clearing)
            assert_int_equal(pthread_create(&cl, NULL, reuse_clearer, &c), 0);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        __atomic_store_n(&c.stop, 1, __ATOMIC_RELAXED);
        if (c.clearing)
            pthread_join(cl, NULL);
        print_message("phase %d: 2 threads x %ld canonical reuses, %ld refs found cleared\n", phase,
                      c.iters, c.cleared_seen);
        assert_int_equal(c.bad, 0);
        assert_int_equal(wref_weakref_count(c.ob), 0);   /* every ref was dropped: unlinked */
        wref_decref(c.ob);
    }
    assert_int_equal(live_count(&g_alloc), 0);   /* the last frees were not lost */
}

/* ---- 5. the allocator's live count across threads ---------------------------------------- */

static void *make_one(void *arg)
{
    *(wref_object **)arg = wref_new(&widget_type);   /* this thread exits right after */
    return NULL;
}

static void *drop_one(void *arg)
{
    wref_decref(*(wref_object **)arg);
    return NULL;
}

struct alloc_churn {
    int stop;    /* atomic */
    long made;   /* atomic */
};

static void *alloc_churner(void *arg)
{
    struct alloc_churn *c = arg;
    while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
        wref_object *o = wref_new(&widget_type);
        wref_object *r = o ? wref_ref_new(o, NULL) : NULL;
        wref_xdecref(o);
        wref_xdecref(r);
        __atomic_fetch_add(&c->made, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void threads_set_allocator_counts_every_thread(void **state)
{
    (void)state;
    wref_allocator same = counting_allocator(&g_alloc);
    wref_object *o = NULL;
    pthread_t t;
    /* allocated on a thread that has exited: alive, then freed here */
    assert_int_equal(pthread_create(&t, NULL, make_one, &o), 0);
    pthread_join(t, NULL);
    assert_non_null(o);
    assert_int_equal(wref_set_allocator(&same), -1);
    assert_error_msg(WREF_ERR_SYSTEM, "wref_set_allocator: 1 allocation(s) of the current allocator are alive");
    wref_err_clear();
    wref_decref(o);
    assert_int_equal(wref_set_allocator(&same), 0);
    /* allocated here, freed on another thread */
    o = new_obj(&widget_type);
    assert_int_equal(pthread_create(&t, NULL, drop_one, &o), 0);
    pthread_join(t, NULL);
    assert_int_equal(wref_set_allocator(&same), 0);
    /* an object alive all along is seen while another thread allocates and frees */
    wref_object *keep = new_obj(&widget_type);
    struct alloc_churn c = {0};
    assert_int_equal(pthread_create(&t, NULL, alloc_churner, &c), 0);
    while (__atomic_load_n(&c.made, __ATOMIC_RELAXED) < 100)
        sched_yield();
    int refused = 0;
    for (int i = 0; i < 2000; i++) {
        if (wref_set_allocator(&same) == -1)
            refused++;
        wref_err_clear();
    }
    __atomic_store_n(&c.stop, 1, __ATOMIC_RELAXED);
    pthread_join(t, NULL);
    print_message("%ld objects made and freed meanwhile; 2000 of 2000 switches expected refused: %d\n",
                  c.made, refused);
    assert_int_equal(refused, 2000);
    wref_decref(keep);
    assert_int_equal(wref_set_allocator(&same), 0);
    assert_int_equal(live_count(&g_alloc), 0);
}

/* The error indicator is thread-local. */
static void *set_error_thread(void *arg)
{
    int *res = arg;
    res[0] = wref_err_occurred();
    wref_err_set(WREF_ERR_MEMORY, "thread");
    res[1] = wref_err_occurred();
    return NULL;
}

static void threads_error_indicator_is_thread_local(void **state)
{
    (void)state;
    wref_err_set(WREF_ERR_TYPE, "main");
    int res[2] = {-1, -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, set_error_thread, res), 0);
    pthread_join(t, NULL);
    assert_int_equal(res[0], WREF_OK);
    assert_int_equal(res[1], WREF_ERR_MEMORY);
    assert_error_msg(WREF_ERR_TYPE, "main");
    wref_err_clear();
}

int main(void)
{
    wref_allocator a = counting_allocator(&g_alloc);
    if (wref_set_allocator(&a) != 0) {
        fprintf(stderr, "wref_set_allocator failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(threads_getref_races_last_decref),
        cmocka_unit_test(threads_getref_races_death_with_callbacks),
        cmocka_unit_test(threads_mixed_stress),
        cmocka_unit_test(threads_deferred_frees_bounded),
        cmocka_unit_test(threads_canonical_reuse_races_ref_death),
        cmocka_unit_test(threads_set_allocator_counts_every_thread),
        cmocka_unit_test(threads_error_indicator_is_thread_local),
    };
    return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
