/* test_alloc_faults.c: allocation failure injection (api.md "Allocator").
 *
 * A counting allocator is installed before the first object. A scenario that exercises every
 * allocating path (objects, refs, proxies, callback objects, clearing with callbacks, a
 * finalizer, callbacks that allocate, weakrefs created during destruction) is run once to
 * count its allocations N, then N more times failing exactly the i-th allocation. Every run
 * must: see exactly one failure, surfacing as WREF_ERR_MEMORY where it happened (the failing
 * API call, or the unraisable hook for a callback), clean up, and leave the allocator with
 * zero live blocks and zero live bytes. */
#include "support.h"

static struct counting_alloc g_alloc = {.fail_at = -1};

/* ---- the scenario ---------------------------------------------------------------------------- */

struct scen {
    int mem_errors;        /* WREF_ERR_MEMORY seen at a failure point */
    int other_errors;      /* any other error at a failure point (a bug) */
    int stray_errors;      /* an error pending where none should be */
    int cb_calls;
    int released;          /* release() of the callback data */
    int finalized, destroyed;
    wref_object *cb;       /* borrowed by the hooks */
    wref_object *fin_ref;  /* created by finalize (with callback: runs at clearing) */
    wref_object *late_ref, *late_proxy;   /* created by destroy (cleared without callbacks) */
};

static struct scen g_s;

/* At a failure point: the pending error must be WREF_ERR_MEMORY. Clears it. */
static void note_failure(void)
{
    if (wref_err_occurred() == WREF_ERR_MEMORY)
        g_s.mem_errors++;
    else
        g_s.other_errors++;
    wref_err_clear();
}

static void note_success(void)
{
    if (wref_err_occurred() != WREF_OK) {
        g_s.stray_errors++;
        wref_err_clear();
    }
}

static void scen_unraisable(wref_error kind, const char *message, wref_object *obj, void *arg)
{
    (void)message;
    (void)arg;
    (void)obj;
    if (kind == WREF_ERR_MEMORY)
        g_s.mem_errors++;
    else
        g_s.other_errors++;
}

/* The callback allocates: a temporary object with a canonical ref, both dropped. */
static int scen_cb(wref_object *weakref, void *data)
{
    (void)weakref;
    (void)data;
    g_s.cb_calls++;
    wref_object *t = wref_new(&widget_type);
    if (!t)
        return -1;   /* WREF_ERR_MEMORY is set: reported through the unraisable hook */
    wref_object *tr = wref_ref_new(t, NULL);
    wref_decref(t);
    if (!tr)
        return -1;
    wref_decref(tr);
    return 0;
}

static void scen_release(void *data)
{
    (void)data;
    g_s.released++;
}

static void scen_finalize(struct widget *self)
{
    g_s.finalized++;
    g_s.fin_ref = wref_ref_new(&self->ob, g_s.cb);
    if (!g_s.fin_ref)
        note_failure();
}

static void scen_destroy(struct widget *self)
{
    g_s.destroyed++;
    g_s.late_ref = wref_ref_new(&self->ob, g_s.cb);
    if (!g_s.late_ref)
        note_failure();
    g_s.late_proxy = wref_proxy_new(&self->ob, NULL);
    if (!g_s.late_proxy)
        note_failure();
}

#define STEP(var, expr)          \
    do {                         \
        (var) = (expr);          \
        if (!(var)) {            \
            note_failure();      \
            goto out;            \
        }                        \
        note_success();          \
    } while (0)

static void run_scenario(void)
{
    wref_object *cb = NULL, *obj = NULL, *f = NULL, *r = NULL, *r2 = NULL, *p = NULL;
    wref_object *rc = NULL, *pc = NULL, *fp = NULL, *res = NULL, *fr = NULL;
    memset(&g_s, 0, sizeof g_s);

    cb = wref_callback_new(scen_cb, NULL, scen_release);
    if (!cb) {
        note_failure();
        if (g_s.released)   /* header: release is not called when creation fails */
            g_s.other_errors++;
        goto out;
    }
    g_s.cb = cb;
    STEP(obj, wref_new(&finwidget_type));
    W(obj)->on_finalize = scen_finalize;
    W(obj)->on_destroy = scen_destroy;
    STEP(f, wref_new(&func_type));
    STEP(r, wref_ref_new(obj, NULL));
    STEP(r2, wref_ref_new(obj, NULL));   /* reuse: allocates nothing */
    STEP(p, wref_proxy_new(obj, NULL));
    STEP(rc, wref_ref_new(obj, cb));
    STEP(pc, wref_proxy_new(obj, cb));
    STEP(fp, wref_proxy_new(f, NULL));
    STEP(fr, wref_ref_new(f, cb));
    STEP(res, wref_call(fp, obj));       /* through a callable proxy */
    {
        wref_object *out[8] = {0};
        size_t n = wref_weakrefs(obj, out, 8);
        note_success();
        if (n != 4)   /* r (== r2), p, pc, rc */
            g_s.other_errors++;
        for (size_t i = 0; i < n && i < 8; i++)
            wref_xdecref(out[i]);
    }
    wref_decref(res);
    res = NULL;
    /* obj dies: finalize (allocates a callback ref), clearing runs 3 callbacks (each
     * allocating), destroy (allocates a ref and a proxy), step 4 clears those. */
    wref_decref(obj);
    obj = NULL;
    note_success();
    /* f dies: one callback */
    wref_decref(f);
    f = NULL;
    note_success();

out:
    /* cleanup in any state; a decref here may run the rest of the protocol */
    wref_xdecref(res);
    wref_xdecref(obj);
    wref_xdecref(f);
    wref_xdecref(r);
    wref_xdecref(r2);
    wref_xdecref(p);
    wref_xdecref(rc);
    wref_xdecref(pc);
    wref_xdecref(fp);
    wref_xdecref(fr);
    wref_xdecref(g_s.fin_ref);
    wref_xdecref(g_s.late_ref);
    wref_xdecref(g_s.late_proxy);
    g_s.fin_ref = g_s.late_ref = g_s.late_proxy = NULL;
    g_s.cb = NULL;
    wref_xdecref(cb);
    note_success();
}

static size_t count_allocations(void)
{
    g_alloc.allocs = 0;
    g_alloc.failures = 0;
    g_alloc.fail_at = -1;
    run_scenario();
    return g_alloc.allocs;
}

/* The clean run itself: everything succeeds and is released. */
static void faults_clean_run(void **state)
{
    (void)state;
    size_t n = count_allocations();
    assert_true(n >= 10);
    assert_int_equal(g_s.mem_errors, 0);
    assert_int_equal(g_s.other_errors, 0);
    assert_int_equal(g_s.stray_errors, 0);
    assert_int_equal(g_s.finalized, 1);
    assert_int_equal(g_s.destroyed, 1);
    assert_int_equal(g_s.cb_calls, 4);   /* rc, pc, fin_ref (obj) + fr (f) */
    assert_int_equal(g_s.released, 1);
    assert_int_equal(live_count(&g_alloc), 0);
    assert_int_equal(g_alloc.live_bytes, 0);
    assert_int_equal(g_alloc.bad_free, 0);
    assert_int_equal(count_allocations(), n);   /* deterministic */
    print_message("scenario: %zu allocations\n", n);
}

/* Fail each allocation in turn. */
static void faults_each_allocation_fails_once(void **state)
{
    (void)state;
    size_t n = count_allocations();
    for (size_t i = 0; i < n; i++) {
        g_alloc.allocs = 0;
        g_alloc.failures = 0;
        g_alloc.fail_at = (long)i;
        run_scenario();
        g_alloc.fail_at = -1;
        if (g_alloc.failures != 1 || g_s.mem_errors != 1 || g_s.other_errors || g_s.stray_errors ||
            live_count(&g_alloc) != 0 || g_alloc.live_bytes != 0 || g_alloc.bad_free ||
            wref_err_occurred() != WREF_OK)
            print_error("failing allocation %zu of %zu: failures=%zu mem_errors=%d other=%d "
                        "stray=%d live_count=%zu live_bytes=%zu bad_free=%d pending=%s\n",
                        i, n, g_alloc.failures, g_s.mem_errors, g_s.other_errors,
                        g_s.stray_errors, live_count(&g_alloc), g_alloc.live_bytes,
                        g_alloc.bad_free, wref_err_name(wref_err_occurred()));
        assert_int_equal(g_alloc.failures, 1);
        assert_int_equal(g_s.mem_errors, 1);
        assert_int_equal(g_s.other_errors, 0);
        assert_int_equal(g_s.stray_errors, 0);
        assert_int_equal(live_count(&g_alloc), 0);
        assert_int_equal(g_alloc.live_bytes, 0);
        assert_int_equal(g_alloc.bad_free, 0);
        assert_int_equal(wref_err_occurred(), WREF_OK);
        /* the callback object, when it was created, was released exactly once */
        assert_true(g_s.released <= 1);
    }
}

/* Direct checks of each allocating API under failure: NULL + WREF_ERR_MEMORY, nothing changed. */
static void faults_direct_api_failures(void **state)
{
    (void)state;
    struct cb_rec rec = {0};
    wref_object *obj = new_obj(&widget_type);
    wref_object *cb = make_cb(&rec);
    wref_object *canon = wref_ref_new(obj, NULL);
    assert_non_null(canon);

    __atomic_store_n(&g_alloc.fail_all, 1, __ATOMIC_RELAXED);
    assert_null(wref_new(&widget_type));
    assert_error(WREF_ERR_MEMORY);
    wref_err_clear();
    assert_null(wref_ref_new(obj, cb));
    assert_error(WREF_ERR_MEMORY);
    wref_err_clear();
    assert_null(wref_proxy_new(obj, NULL));
    assert_error(WREF_ERR_MEMORY);
    wref_err_clear();
    assert_null(wref_proxy_new(obj, cb));
    assert_error(WREF_ERR_MEMORY);
    wref_err_clear();
    g_s.released = 0;
    assert_null(wref_callback_new(scen_cb, NULL, scen_release));
    assert_error(WREF_ERR_MEMORY);
    wref_err_clear();
    assert_int_equal(g_s.released, 0);   /* release is not called when creation fails */
    /* reuse of the canonical ref allocates nothing */
    wref_object *again = wref_ref_new(obj, NULL);
    assert_ptr_equal(again, canon);
    assert_no_error();
    __atomic_store_n(&g_alloc.fail_all, 0, __ATOMIC_RELAXED);

    assert_int_equal(wref_weakref_count(obj), 1);
    assert_int_equal(wref_refcount(obj), 1);
    assert_int_equal(wref_refcount(cb), 1);
    wref_decref(again);
    wref_decref(canon);
    wref_decref(obj);
    wref_decref(cb);
    assert_int_equal(live_count(&g_alloc), 0);
}

/* wref_set_allocator refuses to switch while objects are alive; bad allocators are refused. */
static int g_other_calls;
static void *other_alloc(void *ctx, size_t size) { (void)ctx; g_other_calls++; return malloc(size); }
static void other_free(void *ctx, void *p, size_t size) { (void)ctx; (void)size; g_other_calls++; free(p); }

static void faults_set_allocator_rules(void **state)
{
    (void)state;
    wref_allocator other = {NULL, other_alloc, other_free};
    wref_allocator counting = counting_allocator(&g_alloc);
    wref_object *obj = new_obj(&widget_type);
    assert_int_equal(wref_set_allocator(&other), -1);
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();
    assert_int_equal(wref_set_allocator(NULL), -1);
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();
    /* a weakref or callback object alive counts too */
    wref_object *r = wref_ref_new(obj, NULL);
    wref_decref(obj);   /* r is still alive */
    assert_int_equal(wref_set_allocator(&other), -1);
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();
    wref_decref(r);
    assert_int_equal(live_count(&g_alloc), 0);

    wref_allocator no_alloc = {NULL, NULL, other_free};
    wref_allocator no_free = {NULL, other_alloc, NULL};
    assert_int_equal(wref_set_allocator(&no_alloc), -1);
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();
    assert_int_equal(wref_set_allocator(&no_free), -1);
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();

    /* nothing alive: switching works, and the new allocator is used */
    assert_int_equal(wref_set_allocator(&other), 0);
    assert_no_error();
    g_other_calls = 0;
    obj = new_obj(&widget_type);
    assert_true(g_other_calls >= 1);
    wref_decref(obj);
    assert_true(g_other_calls >= 2);
    assert_int_equal(wref_set_allocator(NULL), 0);   /* malloc */
    obj = new_obj(&widget_type);
    wref_decref(obj);
    assert_int_equal(wref_set_allocator(&counting), 0);
    assert_int_equal(live_count(&g_alloc), 0);
}

int main(void)
{
    wref_allocator a = counting_allocator(&g_alloc);
    if (wref_set_allocator(&a) != 0) {
        fprintf(stderr, "wref_set_allocator failed before any object existed\n");
        return 1;
    }
    wref_set_unraisable_hook(scen_unraisable, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(faults_clean_run),
        cmocka_unit_test(faults_each_allocation_fails_once),
        cmocka_unit_test(faults_direct_api_failures),
        cmocka_unit_test(faults_set_allocator_rules),
    };
    return cmocka_run_group_tests_name("alloc_faults", tests, NULL, NULL);
}
