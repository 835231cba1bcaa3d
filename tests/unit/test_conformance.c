/* test_conformance.c: the conformance cases of docs/semantics.md section 8 ("the spec";
 * the API is docs/api.md), plus the destruction protocol and bad-argument tests.
 *
 * Each caseNN_* test is spec case NN. Cases 10, 38, 41 and 48-57 are not applicable (see
 * tests/README.md). Adapted cases (12, 13, 27, 28, 39, 45) say how at the test.
 *
 * The whole program runs on a counting allocator installed before the first object; every
 * test's teardown checks that the test freed everything it allocated. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include "support.h"

static struct counting_alloc g_alloc = {.fail_at = -1};
static size_t g_baseline;
static struct unraisable_log g_unr;

static int group_setup(void **state)
{
    (void)state;
    wref_allocator a = counting_allocator(&g_alloc);
    return wref_set_allocator(&a) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    wref_err_clear();
    memset(&g_unr, 0, sizeof g_unr);
    wref_set_unraisable_hook(unraisable_recorder, &g_unr);
    g_baseline = live_count(&g_alloc);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    wref_set_unraisable_hook(NULL, NULL);
    wref_err_clear();
    __atomic_store_n(&g_alloc.fail_all, 0, __ATOMIC_RELAXED);
    if (live_count(&g_alloc) != g_baseline) {
        print_error("leak: %zu blocks live after the test, %zu before\n", live_count(&g_alloc),
                    g_baseline);
        return -1;
    }
    if (g_alloc.bad_free) {
        print_error("the runtime freed a block with a size different from its allocation\n");
        return -1;
    }
    return 0;
}

/* ---- type checks ------------------------------------------------------------------------- */

/* 1. Check macros on ref, proxy, None (the ref-subclass column does not apply). */
static void case01_type_checks(void **state)
{
    (void)state;
    wref_object *obj = new_obj(&widget_type);
    wref_object *r = wref_ref_new(obj, NULL);
    wref_object *p = wref_proxy_new(obj, NULL);
    assert_non_null(r);
    assert_non_null(p);
    assert_true(wref_is_weakref(r));
    assert_true(wref_is_ref(r));
    assert_false(wref_is_proxy(r));
    assert_true(wref_is_weakref(p));
    assert_false(wref_is_ref(p));
    assert_true(wref_is_proxy(p));
    assert_false(wref_is_weakref(wref_none()));
    assert_false(wref_is_ref(wref_none()));
    assert_false(wref_is_proxy(wref_none()));
    assert_false(wref_is_weakref(obj));
    assert_false(wref_is_ref(obj));
    assert_false(wref_is_proxy(obj));
    assert_no_error();
    wref_decref(r);
    wref_decref(p);
    wref_decref(obj);
}

/* 2. A proxy to a callable referent is a callable proxy: CheckProxy, not CheckRef. */
static void case02_callable_proxy_type(void **state)
{
    (void)state;
    wref_object *f = new_obj(&func_type);
    wref_object *obj = new_obj(&widget_type);
    wref_object *cp = wref_proxy_new(f, NULL);
    wref_object *pp = wref_proxy_new(obj, NULL);
    assert_non_null(cp);
    assert_non_null(pp);
    assert_true(wref_is_proxy(cp));
    assert_false(wref_is_ref(cp));
    assert_true(wref_is_weakref(cp));
    assert_true(wref_is_callable(cp));
    assert_false(wref_is_callable(pp));
    assert_ptr_not_equal(wref_type_of(cp), wref_type_of(pp));   /* CallableProxyType vs ProxyType */
    wref_decref(cp);
    wref_decref(pp);
    wref_decref(obj);
    wref_decref(f);
}

/* ---- creation, reuse and ownership --------------------------------------------------------- */

/* 3. NewRef leaves the referent's count unchanged; the ref has count 1. */
static void case03_newref_keeps_refcount(void **state)
{
    (void)state;
    wref_object *obj = new_obj(&widget_type);
    intptr_t rc0 = wref_refcount(obj);
    wref_object *r = wref_ref_new(obj, NULL);
    assert_non_null(r);
    assert_true(wref_is_ref(r));
    assert_int_equal(wref_refcount(obj), rc0);
    assert_int_equal(wref_refcount(r), 1);
    wref_decref(r);
    wref_decref(obj);
}

/* 4. The canonical ref is reused: same pointer, count 2. */
static void case04_ref_reuse_same_pointer(void **state)
{
    (void)state;
    wref_object *obj = new_obj(&widget_type);
    wref_object *r1 = wref_ref_new(obj, NULL);
    wref_object *r2 = wref_ref_new(obj, NULL);
    assert_non_null(r1);
    assert_ptr_equal(r1, r2);
    assert_int_equal(wref_refcount(r1), 2);
    assert_int_equal(wref_weakref_count(obj), 1);
    wref_decref(r2);
    wref_decref(r1);
    wref_decref(obj);
}

/* 5. NULL and None callbacks are the same thing, for refs and for proxies. */
static void case05_null_and_none_callback_shared(void **state)
{
    (void)state;
    wref_object *obj = new_obj(&widget_type);
    wref_object *cbs[2] = {NULL, wref_none()};
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++) {
            wref_object *a = wref_ref_new(obj, cbs[i]);
            wref_object *b = wref_ref_new(obj, cbs[j]);
            assert_non_null(a);
            assert_ptr_equal(a, b);
            assert_null(wref_ref_callback(a));
            wref_object *pa = wref_proxy_new(obj, cbs[i]);
            wref_object *pb = wref_proxy_new(obj, cbs[j]);
            assert_non_null(pa);
            assert_ptr_equal(pa, pb);
            assert_ptr_not_equal(pa, a);
            assert_int_equal(wref_weakref_count(obj), 2);
            wref_decref(a);
            wref_decref(b);
            wref_decref(pa);
            wref_decref(pb);
            assert_int_equal(wref_weakref_count(obj), 0);
        }
    }
    wref_decref(obj);
}

/* 6. An intervening proxy does not break ref reuse; proxy first then two refs: count 2, then 1. */
static void case06_proxy_does_not_break_ref_reuse(void **state)
{
    (void)state;
    wref_object *obj = new_obj(&widget_type);
    wref_object *r1 = wref_ref_new(obj, NULL);
    wref_object *p = wref_proxy_new(obj, NULL);
    wref_object *r2 = wref_ref_new(obj, NULL);
    assert_ptr_equal(r1, r2);
    wref_decref(r1);
    wref_decref(r2);
    wref_decref(p);
    assert_int_equal(wref_weakref_count(obj), 0);

    p = wref_proxy_new(obj, NULL);
    r1 = wref_ref_new(obj, NULL);
    r2 = wref_ref_new(obj, NULL);
    assert_ptr_equal(r1, r2);
    assert_int_equal(wref_weakref_count(obj), 2);
    wref_decref(p);
    assert_int_equal(wref_weakref_count(obj), 1);
    wref_decref(r1);
    wref_decref(r2);
    assert_int_equal(wref_weakref_count(obj), 0);
    wref_decref(obj);
}

/* 7. An intervening ref does not break proxy reuse. */
static void case07_proxy_reuse(void **state)
{
    (void)state;
    wref_object *obj = new_obj(&widget_type);
    wref_object *p1 = wref_proxy_new(obj, NULL);
    wref_object *r = wref_ref_new(obj, NULL);
    wref_object *p2 = wref_proxy_new(obj, NULL);
    assert_non_null(p1);
    assert_ptr_equal(p1, p2);
    assert_int_equal(wref_refcount(p1), 2);
    wref_decref(p1);
    wref_decref(p2);
    wref_decref(r);
    wref_decref(obj);
}

/* 8. A ref with a callback holds a strong reference to it, released when the ref dies. */
static void case08_callback_refcount(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct cb_rec rec = {.log = &log, .id = 1};
    wref_object *cb = make_cb(&rec);
    wref_object *obj = new_obj(&widget_type);
    wref_object *basic = wref_ref_new(obj, NULL);
    intptr_t c0 = wref_refcount(cb), o0 = wref_refcount(obj);
    wref_object *r = wref_ref_new(obj, cb);
    assert_non_null(r);
    assert_int_equal(wref_refcount(cb), c0 + 1);
    assert_int_equal(wref_refcount(obj), o0);
    assert_ptr_not_equal(r, basic);
    assert_ptr_equal(wref_ref_callback(r), cb);
    wref_decref(r);
    assert_int_equal(wref_refcount(cb), c0);
    assert_int_equal(log.n, 0);
    wref_decref(basic);
    wref_decref(obj);
    assert_int_equal(log.n, 0);
    assert_int_equal(rec.released, 0);
    wref_decref(cb);
    assert_int_equal(rec.released, 1);
}

/* 9. Two refs with the same callback are distinct and both live. */
static void case09_callback_refs_distinct(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct cb_rec rec = {.log = &log, .id = 1};
    wref_object *cb = make_cb(&rec);
    wref_object *obj = new_obj(&widget_type);
    wref_object *a = wref_ref_new(obj, cb);
    wref_object *b = wref_ref_new(obj, cb);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_ref_live(a, obj);
    assert_ref_live(b, obj);
    assert_int_equal(wref_weakref_count(obj), 2);
    wref_decref(a);
    wref_decref(b);
    wref_decref(obj);
    wref_decref(cb);
    assert_int_equal(log.n, 0);
}

/* 11. A non-weakrefable object: TypeError naming its type, for refs and proxies. */
static void case11_not_weakrefable(void **state)
{
    (void)state;
    wref_object *nw = new_obj(&plain_type);
    assert_null(wref_ref_new(nw, NULL));
    assert_error_msg(WREF_ERR_TYPE, "cannot create weak reference to 'Plain' object");
    wref_err_clear();
    assert_null(wref_proxy_new(nw, NULL));
    assert_error_msg(WREF_ERR_TYPE, "cannot create weak reference to 'Plain' object");
    wref_err_clear();
    assert_int_equal(wref_refcount(nw), 1);

    /* None is not weakrefable either (header: wref_none) */
    char want[200];
    snprintf(want, sizeof want, "cannot create weak reference to '%s' object",
             wref_type_of(wref_none())->name);
    assert_null(wref_ref_new(wref_none(), NULL));
    assert_error_msg(WREF_ERR_TYPE, want);
    wref_err_clear();
    wref_decref(nw);
}

/* 12. A weakref is not weakrefable. Adaptation: CPython names 'weakref.ReferenceType'; wref
 * names the weakref's own type (wref_type_of(r)->name). */
static void case12_weakref_not_weakrefable(void **state)
{
    (void)state;
    wref_object *obj = new_obj(&widget_type);
    wref_object *r = wref_ref_new(obj, NULL);
    wref_object *p = wref_proxy_new(obj, NULL);
    wref_object *targets[2] = {r, p};
    for (int i = 0; i < 2; i++) {
        char want[200];
        assert_non_null(wref_type_of(targets[i]));
        assert_non_null(wref_type_of(targets[i])->name);
        snprintf(want, sizeof want, "cannot create weak reference to '%s' object",
                 wref_type_of(targets[i])->name);
        assert_null(wref_ref_new(targets[i], NULL));
        assert_error_contains(WREF_ERR_TYPE, "cannot create weak reference to '");
        assert_string_equal(wref_err_message(), want);
        wref_err_clear();
        assert_null(wref_proxy_new(targets[i], NULL));
        assert_error_msg(WREF_ERR_TYPE, want);
        wref_err_clear();
    }
    assert_int_equal(wref_refcount(r), 1);
    wref_decref(r);
    wref_decref(p);
    wref_decref(obj);
}

/* 13. Adaptation (docs/semantics.md section 7): a non-callable callback is rejected at creation
 * with WREF_ERR_TYPE, as CPython's documentation and 3.15 do; nothing is linked, nothing
 * changes. */
static void case13_noncallable_callback_rejected(void **state)
{
    (void)state;
    wref_object *obj = new_obj(&widget_type);
    wref_object *notcallable = new_obj(&widget_type);
    assert_false(wref_is_callable(notcallable));
    assert_null(wref_ref_new(obj, notcallable));
    assert_error(WREF_ERR_TYPE);
    wref_err_clear();
    assert_null(wref_proxy_new(obj, notcallable));
    assert_error(WREF_ERR_TYPE);
    wref_err_clear();
    assert_int_equal(wref_refcount(notcallable), 1);
    assert_int_equal(wref_refcount(obj), 1);
    assert_int_equal(wref_weakref_count(obj), 0);
    wref_decref(obj);
    assert_int_equal(g_unr.n, 0);
    wref_decref(notcallable);
}

/* 14. Proxy kind follows the referent's callability; a proxy with callback is not the basic one. */
static void case14_proxy_kinds(void **state)
{
    (void)state;
    struct cb_rec rec = {0};
    wref_object *cb = make_cb(&rec);
    wref_object *obj = new_obj(&widget_type);
    wref_object *f = new_obj(&func_type);
    wref_object *p = wref_proxy_new(obj, NULL);
    wref_object *fp = wref_proxy_new(f, NULL);
    assert_true(wref_is_proxy(p));
    assert_true(wref_is_proxy(fp));
    assert_false(wref_is_callable(p));
    assert_true(wref_is_callable(fp));
    wref_object *pc = wref_proxy_new(obj, cb);
    assert_non_null(pc);
    assert_ptr_not_equal(pc, p);
    assert_true(wref_is_proxy(pc));
    assert_ptr_equal(wref_type_of(pc), wref_type_of(p));
    wref_decref(pc);
    wref_decref(p);
    wref_decref(fp);
    wref_decref(f);
    wref_decref(obj);
    wref_decref(cb);
}

/* ---- list order ---------------------------------------------------------------------------- */

/* 15. Proxy then ref: the list is [r, p]. */
static void case15_list_order_ref_before_proxy(void **state)
{
    (void)state;
    wref_object *obj = new_obj(&widget_type);
    wref_object *p = wref_proxy_new(obj, NULL);
    wref_object *r = wref_ref_new(obj, NULL);
    wref_object *want[] = {r, p};
    assert_weakref_list(obj, want, 2);
    wref_decref(p);
    wref_decref(r);
    wref_decref(obj);
}

/* 16. r, p, a(cb), b(cb): the list is [r, p, b, a] (subclass refs not applicable). */
static void case16_list_order_callbacks_newest_first(void **state)
{
    (void)state;
    struct cb_rec rec = {0};
    wref_object *cb = make_cb(&rec);
    wref_object *obj = new_obj(&widget_type);
    wref_object *r = wref_ref_new(obj, NULL);
    wref_object *p = wref_proxy_new(obj, NULL);
    wref_object *a = wref_ref_new(obj, cb);
    wref_object *b = wref_ref_new(obj, cb);
    wref_object *want[] = {r, p, b, a};
    assert_weakref_list(obj, want, 4);
    wref_decref(a);
    wref_decref(b);
    wref_decref(p);
    wref_decref(r);
    wref_decref(obj);
    wref_decref(cb);
}

/* 17. c(cb) then p: [p, c]. p, c(cb), q(proxy cb): [p, q, c]. */
static void case17_list_order_proxy_head(void **state)
{
    (void)state;
    struct cb_rec rec = {0};
    wref_object *cb = make_cb(&rec);
    wref_object *obj = new_obj(&widget_type);
    wref_object *c = wref_ref_new(obj, cb);
    wref_object *p = wref_proxy_new(obj, NULL);
    wref_object *want1[] = {p, c};
    assert_weakref_list(obj, want1, 2);
    wref_decref(c);
    wref_decref(p);

    wref_object *obj2 = new_obj(&widget_type);
    p = wref_proxy_new(obj2, NULL);
    c = wref_ref_new(obj2, cb);
    wref_object *q = wref_proxy_new(obj2, cb);
    wref_object *want2[] = {p, q, c};
    assert_weakref_list(obj2, want2, 3);
    wref_decref(c);
    wref_decref(p);
    wref_decref(q);
    wref_decref(obj2);
    wref_decref(obj);
    wref_decref(cb);
}

/* 18. Destroying weakrefs removes them from the list and the count. */
static void case18_getweakrefs_after_destroy(void **state)
{
    (void)state;
    struct cb_rec rec = {0};
    wref_object *cb = make_cb(&rec);
    wref_object *o = new_obj(&widget_type);
    wref_object *r1 = wref_ref_new(o, cb);
    wref_object *r2 = wref_ref_new(o, cb);
    wref_decref(r1);
    wref_object *want[] = {r2};
    assert_weakref_list(o, want, 1);
    wref_decref(r2);
    assert_weakref_list(o, NULL, 0);

    wref_object *a = wref_ref_new(o, NULL);
    wref_object *b = wref_ref_new(o, cb);
    wref_object *c = wref_proxy_new(o, NULL);
    wref_object *d = wref_proxy_new(o, cb);
    assert_int_equal(wref_weakref_count(o), 4);
    wref_decref(a);
    wref_decref(b);
    wref_decref(c);
    wref_decref(d);
    assert_int_equal(wref_weakref_count(o), 0);
    wref_decref(o);
    wref_decref(cb);
}

/* ---- GetRef / GetObject / GET_OBJECT --------------------------------------------------------- */

/* 19. GetRef on a live ref: 1, the referent, count + 1. */
static void case19_getref_live(void **state)
{
    (void)state;
    wref_object *obj = new_obj(&widget_type);
    wref_object *r = wref_ref_new(obj, NULL);
    wref_object *o = NULL;
    assert_int_equal(wref_get_ref(r, &o), 1);
    assert_ptr_equal(o, obj);
    assert_int_equal(wref_refcount(obj), 2);
    assert_no_error();
    wref_decref(o);
    wref_decref(r);
    wref_decref(obj);
}

/* 20. GetRef on a dead ref: 0, NULL written, no error. */
static void case20_getref_dead(void **state)
{
    (void)state;
    wref_object *obj = new_obj(&widget_type);
    wref_object *r = wref_ref_new(obj, NULL);
    wref_decref(obj);
    wref_object *o = r;   /* must be overwritten with NULL */
    assert_int_equal(wref_get_ref(r, &o), 0);
    assert_null(o);
    assert_no_error();
    wref_decref(r);
}

/* 21. GetRef on a proxy: 1 and the referent; after death 0 and NULL. */
static void case21_getref_proxy(void **state)
{
    (void)state;
    wref_object *obj = new_obj(&widget_type);
    wref_object *p = wref_proxy_new(obj, NULL);
    assert_ref_live(p, obj);
    wref_decref(obj);
    assert_ref_dead(p);
    wref_decref(p);
}

/* 22. GetRef on a non-weakref: -1, NULL, TypeError "expected a weakref". wref's message also
 * names the type it got (the bad-argument rule), so CPython's text is its prefix. */
static void case22_getref_not_weakref(void **state)
{
    (void)state;
    wref_object *obj = new_obj(&widget_type);
    wref_object *nw = new_obj(&plain_type);
    wref_object *args[3] = {wref_none(), obj, nw};
    const char *msgs[3] = {"expected a weakref, not 'NoneType'", "expected a weakref, not 'Widget'",
                           "expected a weakref, not 'Plain'"};
    for (int i = 0; i < 3; i++) {
        wref_object *o = obj;
        assert_int_equal(wref_get_ref(args[i], &o), -1);
        assert_null(o);
        assert_error_msg(WREF_ERR_TYPE, msgs[i]);
        wref_err_clear();
    }
    assert_int_equal(wref_refcount(obj), 1);
    wref_decref(obj);
    wref_decref(nw);
}

/* 23. GetRef(NULL): -1, NULL, SystemError. */
static void case23_getref_null(void **state)
{
    (void)state;
    wref_object *o = wref_none();
    assert_int_equal(wref_get_ref(NULL, &o), -1);
    assert_null(o);
    assert_error(WREF_ERR_SYSTEM);
}

/* 24. GetObject: borrowed referent with the count unchanged; None when dead. */
static void case24_getobject(void **state)
{
    (void)state;
    wref_object *obj = new_obj(&widget_type);
    wref_object *r = wref_ref_new(obj, NULL);
    wref_object *p = wref_proxy_new(obj, NULL);
    assert_ptr_equal(wref_get_object(r), obj);
    assert_ptr_equal(wref_get_object(p), obj);
    assert_int_equal(wref_refcount(obj), 1);
    assert_no_error();
    wref_decref(obj);
    assert_ptr_equal(wref_get_object(r), wref_none());
    assert_ptr_equal(wref_get_object(p), wref_none());
    assert_no_error();
    wref_decref(r);
    wref_decref(p);
}

/* 25. GetObject on a non-weakref or NULL: NULL and SystemError (not TypeError). */
static void case25_getobject_bad_args(void **state)
{
    (void)state;
    wref_object *obj = new_obj(&widget_type);
    assert_null(wref_get_object(NULL));
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();
    assert_null(wref_get_object(obj));
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();
    assert_null(wref_get_object(wref_none()));
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();
    assert_int_equal(wref_refcount(obj), 1);
    wref_decref(obj);
}

/* 26. GET_OBJECT: the referent while live, None after death. */
static void case26_get_object_macro(void **state)
{
    (void)state;
    wref_object *obj = new_obj(&widget_type);
    wref_object *r = wref_ref_new(obj, NULL);
    assert_ptr_equal(WREF_GET_OBJECT(r), obj);
    assert_int_equal(wref_refcount(obj), 1);
    wref_decref(obj);
    assert_ptr_equal(WREF_GET_OBJECT(r), wref_none());
    assert_no_error();
    wref_decref(r);
}

/* 27. Dying window. Adaptation: wref's protocol is finalize -> clear weakrefs -> destroy, and
 * a user type has no dealloc of its own, so the probe runs in destroy(): the count is 0 there
 * and every accessor must report the referent dead. */
struct probe27 {
    wref_object *r, *p;
    int ran;
    intptr_t rc;
    int getref_rc, getref_null, getobj_none, getobj_p_none, macro_none, err, count;
};

static void probe27_destroy(struct widget *self)
{
    struct probe27 *pr = self->ctx;
    wref_object *o = (wref_object *)self;
    pr->ran++;
    pr->rc = wref_refcount(&self->ob);
    pr->getref_rc = wref_get_ref(pr->r, &o);
    pr->getref_null = (o == NULL);
    pr->getobj_none = wref_get_object(pr->r) == wref_none();
    pr->getobj_p_none = wref_get_object(pr->p) == wref_none();
    pr->macro_none = WREF_GET_OBJECT(pr->r) == wref_none();
    pr->err = wref_err_occurred();
    pr->count = (int)wref_weakref_count(&self->ob);
}

static void case27_dying_window_probe_in_destroy(void **state)
{
    (void)state;
    struct probe27 pr = {0};
    wref_object *obj = new_obj(&widget_type);
    W(obj)->on_destroy = probe27_destroy;
    W(obj)->ctx = &pr;
    pr.r = wref_ref_new(obj, NULL);
    pr.p = wref_proxy_new(obj, NULL);
    wref_decref(obj);
    assert_int_equal(pr.ran, 1);
    assert_int_equal(pr.rc, 0);
    assert_int_equal(pr.getref_rc, 0);
    assert_true(pr.getref_null);
    assert_true(pr.getobj_none);
    assert_true(pr.getobj_p_none);
    assert_true(pr.macro_none);
    assert_int_equal(pr.err, WREF_OK);
    assert_int_equal(pr.count, 0);
    wref_decref(pr.r);
    wref_decref(pr.p);
}

/* 28. NewRef in the dying window succeeds (no count check on the referent). Adaptation: the
 * probe is in destroy(), after step 2 cleared the old canonical ref, so NewRef(self, NULL)
 * links a NEW canonical ref (reused by a second NewRef(self, NULL)), dead for every accessor;
 * NewRef(self, cb) succeeds too, and step 4 clears both without running cb. */
struct probe28 {
    wref_object *old;
    wref_object *cb;
    wref_object *n1, *n1b, *n2;
    int n1_getref, n2_getref, count_after, err;
};

static void probe28_destroy(struct widget *self)
{
    struct probe28 *pr = self->ctx;
    wref_object *o;
    pr->n1 = wref_ref_new(&self->ob, NULL);
    pr->n1b = wref_ref_new(&self->ob, NULL);
    pr->n2 = wref_ref_new(&self->ob, pr->cb);
    pr->n1_getref = pr->n1 ? wref_get_ref(pr->n1, &o) : -2;
    pr->n2_getref = pr->n2 ? wref_get_ref(pr->n2, &o) : -2;
    pr->count_after = (int)wref_weakref_count(&self->ob);
    pr->err = wref_err_occurred();
}

static void case28_newref_in_dying_window(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct cb_rec rec = {.log = &log, .id = 28};
    struct probe28 pr = {0};
    pr.cb = make_cb(&rec);
    wref_object *obj = new_obj(&widget_type);
    W(obj)->on_destroy = probe28_destroy;
    W(obj)->ctx = &pr;
    pr.old = wref_ref_new(obj, NULL);
    wref_decref(obj);
    assert_int_equal(pr.err, WREF_OK);
    assert_non_null(pr.n1);
    assert_non_null(pr.n2);
    assert_ptr_not_equal(pr.n1, pr.old);   /* the old canonical ref was cleared in step 2 */
    assert_ptr_equal(pr.n1b, pr.n1);       /* the new canonical ref is reused */
    assert_ptr_not_equal(pr.n2, pr.n1);
    assert_int_equal(pr.n1_getref, 0);
    assert_int_equal(pr.n2_getref, 0);
    assert_int_equal(pr.count_after, 2);
    /* step 4 cleared them without callbacks */
    assert_ref_dead(pr.old);
    assert_ref_dead(pr.n1);
    assert_ref_dead(pr.n2);
    assert_int_equal(log.n, 0);
    assert_ptr_equal(wref_ref_callback(pr.n2), pr.cb);
    assert_int_equal(g_unr.n, 0);
    wref_decref(pr.old);
    wref_decref(pr.n1);
    wref_decref(pr.n1b);
    wref_decref(pr.n2);
    assert_int_equal(log.n, 0);
    wref_decref(pr.cb);
    assert_int_equal(rec.released, 1);
}

/* ---- ClearWeakRefs ---------------------------------------------------------------------------- */

/* 29. ClearWeakRefs on a live object or NULL: SystemError, the weakrefs stay live. */
static void case29_clearweakrefs_live_is_error(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct cb_rec rec = {.log = &log, .id = 1};
    wref_object *cb = make_cb(&rec);
    wref_object *obj = new_obj(&widget_type);
    wref_object *r = wref_ref_new(obj, NULL);
    wref_object *rc = wref_ref_new(obj, cb);
    wref_clear_weakrefs(obj);
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();
    assert_ref_live(r, obj);
    assert_ref_live(rc, obj);
    assert_int_equal(wref_weakref_count(obj), 2);
    assert_ptr_equal(wref_ref_callback(rc), cb);
    assert_int_equal(log.n, 0);
    wref_clear_weakrefs(NULL);
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();
    wref_object *nw = new_obj(&plain_type);
    wref_clear_weakrefs(nw);
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();
    wref_decref(nw);
    wref_decref(r);
    wref_decref(rc);
    wref_decref(obj);
    wref_decref(cb);
    assert_int_equal(log.n, 0);
}

/* 30. After death every weakref is dead, a proxy raises ReferenceError on use, and every
 * ref's callback is gone. */
static void case30_all_dead_after_death(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct cb_rec rec = {.log = &log, .id = 1};
    wref_object *cb = make_cb(&rec);
    wref_object *obj = new_obj(&func_type);   /* callable, so the proxy can be "used" */
    wref_object *r = wref_ref_new(obj, NULL);
    wref_object *p = wref_proxy_new(obj, NULL);
    wref_object *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = wref_ref_new(obj, cb);
    wref_decref(obj);
    assert_int_equal(log.n, 3);
    assert_ref_dead(r);
    assert_ref_dead(p);
    for (int i = 0; i < 3; i++) {
        assert_ref_dead(c[i]);
        assert_null(wref_ref_callback(c[i]));
    }
    assert_null(wref_ref_callback(r));
    assert_null(wref_call(p, NULL));
    assert_error_msg(WREF_ERR_REFERENCE, "weakly-referenced object no longer exists");
    wref_err_clear();
    wref_decref(r);
    wref_decref(p);
    for (int i = 0; i < 3; i++)
        wref_decref(c[i]);
    wref_decref(cb);
}

/* 31. The callback receives the weakref itself, exactly once. */
static void case31_callback_receives_weakref_once(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct cb_rec rec = {.log = &log, .id = 31};
    wref_object *cb = make_cb(&rec);
    wref_object *obj = new_obj(&widget_type);
    wref_object *r = wref_ref_new(obj, cb);
    wref_decref(obj);
    assert_int_equal(log.n, 1);
    assert_ptr_equal(log.refs[0], r);
    assert_int_equal(log.ids[0], 31);
    wref_decref(r);
    wref_decref(cb);
    assert_int_equal(log.n, 1);
}

/* 32. Callbacks run newest first: [4,3,2,1,0]. */
static void case32_callbacks_newest_first(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct cb_rec rec[5];
    wref_object *cb[5], *w[5];
    wref_object *obj = new_obj(&widget_type);
    for (int i = 0; i < 5; i++) {
        rec[i] = (struct cb_rec){.log = &log, .id = i};
        cb[i] = make_cb(&rec[i]);
        w[i] = wref_ref_new(obj, cb[i]);
        assert_non_null(w[i]);
    }
    wref_decref(obj);
    assert_int_equal(log.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(log.ids[i], 4 - i);
        assert_ptr_equal(log.refs[i], w[4 - i]);
    }
    for (int i = 0; i < 5; i++) {
        wref_decref(w[i]);
        wref_decref(cb[i]);
    }
}

/* 33. Inside each callback every weakref (the basic one too) is already dead and the ref's
 * own callback attribute is gone. */
struct check33 {
    wref_object *refs[4];
    int live_seen, callback_attr_seen, calls;
};

static void check33_extra(wref_object *weakref, struct cb_rec *rec)
{
    struct check33 *c = rec->ctx;
    c->calls++;
    for (int i = 0; i < 4; i++) {
        wref_object *o = (wref_object *)(uintptr_t)1;
        if (wref_get_ref(c->refs[i], &o) != 0 || o != NULL)
            c->live_seen++;
        if (WREF_GET_OBJECT(c->refs[i]) != wref_none())
            c->live_seen++;
    }
    if (wref_ref_callback(weakref) != NULL)
        c->callback_attr_seen++;
}

static void case33_all_dead_before_first_callback(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct check33 chk = {0};
    struct cb_rec rec = {.log = &log, .id = 1, .extra = check33_extra, .ctx = &chk};
    wref_object *cb = make_cb(&rec);
    wref_object *obj = new_obj(&widget_type);
    chk.refs[0] = wref_ref_new(obj, NULL);
    for (int i = 1; i < 4; i++)
        chk.refs[i] = wref_ref_new(obj, cb);
    wref_decref(obj);
    assert_int_equal(chk.calls, 3);
    assert_int_equal(chk.live_seen, 0);
    assert_int_equal(chk.callback_attr_seen, 0);
    for (int i = 0; i < 4; i++)
        wref_decref(chk.refs[i]);
    wref_decref(cb);
}

/* 34. A failing callback goes to the unraisable hook (kind, message, obj == the callback) and
 * the others still run: bad (newer) first, then good. */
static void case34_failing_callback_unraisable(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct cb_rec good_rec = {.log = &log, .id = 1};
    struct cb_rec bad_rec = {.log = &log, .id = 2, .fail = 1};
    wref_object *good = make_cb(&good_rec), *bad = make_cb(&bad_rec);
    wref_object *obj = new_obj(&widget_type);
    wref_object *wg = wref_ref_new(obj, good);
    wref_object *wb = wref_ref_new(obj, bad);
    wref_decref(obj);
    assert_no_error();
    assert_int_equal(log.n, 2);
    assert_int_equal(log.ids[0], 2);
    assert_int_equal(log.ids[1], 1);
    assert_int_equal(g_unr.n, 1);
    assert_int_equal(g_unr.kind[0], WREF_ERR_RUNTIME);
    assert_string_equal(g_unr.msg[0], "boom");
    assert_ptr_equal(g_unr.obj[0], bad);
    wref_decref(wg);
    wref_decref(wb);
    wref_decref(good);
    wref_decref(bad);
}

/* 35. An error pending before the last decref is restored afterwards; callbacks do not see it;
 * the callback's own error went to the unraisable hook. */
static void case35_pending_error_preserved(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct cb_rec rec = {.log = &log, .id = 1, .fail = 1};
    wref_object *cb = make_cb(&rec);
    wref_object *obj = new_obj(&widget_type);
    wref_object *w = wref_ref_new(obj, cb);
    wref_err_set(WREF_ERR_TYPE, "pending %d", 7);
    wref_decref(obj);
    assert_error_msg(WREF_ERR_TYPE, "pending 7");
    wref_err_clear();
    assert_int_equal(log.n, 1);
    assert_int_equal(log.saw_error[0], WREF_OK);
    assert_int_equal(g_unr.n, 1);
    assert_int_equal(g_unr.kind[0], WREF_ERR_RUNTIME);
    assert_string_equal(g_unr.msg[0], "boom");
    assert_ptr_equal(g_unr.obj[0], cb);
    wref_decref(w);
    wref_decref(cb);
}

/* 36. cb2 drops the only strong reference to w1: cb1 still runs (after cb2). */
static void drop_slot_extra(wref_object *weakref, struct cb_rec *rec)
{
    (void)weakref;
    wref_object **slot = rec->ctx;
    wref_object *w = *slot;
    *slot = NULL;
    wref_xdecref(w);
}

static void case36_callback_drops_other_weakref(void **state)
{
    (void)state;
    struct cb_log log = {0};
    wref_object *w1;
    struct cb_rec r1 = {.log = &log, .id = 1};
    struct cb_rec r2 = {.log = &log, .id = 2, .extra = drop_slot_extra, .ctx = &w1};
    wref_object *cb1 = make_cb(&r1), *cb2 = make_cb(&r2);
    wref_object *obj = new_obj(&widget_type);
    w1 = wref_ref_new(obj, cb1);
    wref_object *w2 = wref_ref_new(obj, cb2);
    wref_decref(obj);
    assert_null(w1);
    assert_int_equal(log.n, 2);
    assert_int_equal(log.ids[0], 2);
    assert_int_equal(log.ids[1], 1);
    assert_ptr_equal(log.refs[0], w2);
    wref_decref(w2);
    wref_decref(cb1);
    wref_decref(cb2);
}

/* 37. A weakref destroyed before its referent: its callback never runs. */
static void case37_dead_weakref_no_callback(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct cb_rec rec = {.log = &log, .id = 1};
    wref_object *cb = make_cb(&rec);
    wref_object *obj = new_obj(&widget_type);
    wref_object *r = wref_ref_new(obj, cb);
    intptr_t c0 = wref_refcount(cb);
    wref_decref(r);
    assert_int_equal(wref_refcount(cb), c0 - 1);
    assert_int_equal(wref_weakref_count(obj), 0);
    wref_decref(obj);
    assert_int_equal(log.n, 0);
    wref_decref(cb);
}

/* 39. Adaptation: wref_clear_weakrefs allocates nothing, so with EVERY allocation failing
 * from just before the last decref, clearing must behave normally: all 50 refs dead, the
 * callbacks DID run (newest first), no error escapes, nothing reported, nothing leaked.
 * (CPython's gh-118331 behaviour, "no callbacks run", only applies when the temporary
 * array cannot be allocated; wref has none.) */
static void case39_clearing_under_allocation_failure(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct cb_rec rec[50];
    wref_object *cb[50], *w[50];
    wref_object *obj = new_obj(&widget_type);
    int destroyed = 0;
    W(obj)->destroyed = &destroyed;
    for (int i = 0; i < 50; i++) {
        rec[i] = (struct cb_rec){.log = &log, .id = i};
        cb[i] = make_cb(&rec[i]);
        w[i] = wref_ref_new(obj, cb[i]);
        assert_non_null(w[i]);
    }
    size_t failures0 = g_alloc.failures;
    __atomic_store_n(&g_alloc.fail_all, 1, __ATOMIC_RELAXED);
    wref_decref(obj);
    __atomic_store_n(&g_alloc.fail_all, 0, __ATOMIC_RELAXED);
    assert_no_error();
    assert_int_equal(destroyed, 1);
    assert_int_equal(g_unr.n, 0);
    assert_int_equal(g_alloc.failures, failures0);   /* nothing even tried to allocate */
    assert_int_equal(log.n, 50);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(log.ids[i], 49 - i);
        assert_ref_dead(w[i]);
    }
    for (int i = 0; i < 50; i++) {
        wref_decref(w[i]);
        wref_decref(cb[i]);
    }
}

/* 40. A chain of objects, each with a weakref whose callback dereferences other weakrefs:
 * dropping the root never hands out a dying referent (the gh-60806 window). Run at the
 * spec's depth (100, every callback probes every ref) and deep enough (20000 nodes, each with
 * a side leaf) that an iterative destroyer must defer work, with each callback probing its
 * neighbourhood. */
struct chain40 {
    int n;                 /* number of refs */
    int window;            /* probe refs [i-window, i+window]; 0 = all */
    wref_object **refs;
    int bad;               /* a probe saw a dying or destroyed object, or a wrong state */
    int probes_live;       /* probes that got a strong reference */
    int probes_dead;       /* probes that found the ref dead */
    int probes_deferred;   /* ... of them, refs whose callback had not run yet */
    char *called;          /* called[i]: callback i has run (each must run exactly once) */
    int calls;
};

struct chain40_rec {
    struct cb_rec rec;
};

static struct chain40 *g_chain40;

static int chain40_cb(wref_object *weakref, void *data)
{
    (void)weakref;
    struct chain40 *c = g_chain40;
    int i = (int)(intptr_t)data;
    int lo = c->window ? i - c->window : 0, hi = c->window ? i + c->window : c->n - 1;
    if (lo < 0)
        lo = 0;
    if (hi > c->n - 1)
        hi = c->n - 1;
    if (c->called[i])
        c->bad++;          /* a second call */
    c->called[i] = 1;
    c->calls++;
    for (int j = lo; j <= hi; j++) {
        wref_object *o = NULL;
        int rc = wref_get_ref(c->refs[j], &o);
        if (rc == 1) {
            if (wref_refcount(o) < 2 || __atomic_load_n(&W(o)->dead_flag, __ATOMIC_ACQUIRE))
                c->bad++;
            /* a live referent's weakref has not been cleared, so its callback has not run */
            if (c->called[j])
                c->bad++;
            c->probes_live++;
            wref_decref(o);
        } else if (rc != 0 || o != NULL) {
            c->bad++;
        } else {
            /* dead: this callback's own ref, one whose callback already ran (clearing comes
             * before the call), or a referent whose count reached 0 but whose destruction was
             * deferred (not yet cleared: the gh-60806 window, which must read as dead) */
            if (j != i && !c->called[j])
                c->probes_deferred++;
            c->probes_dead++;
        }
        wref_object *b = WREF_GET_OBJECT(c->refs[j]);
        if (b != wref_none() && (wref_refcount(b) < 1 || W(b)->dead_flag))
            c->bad++;
    }
    return 0;
}

static void run_chain40(int nodes, int with_leaves, int window)
{
    int per = with_leaves ? 2 : 1;
    int n = nodes * per;
    int destroyed = 0;
    struct chain40 c = {.n = n, .window = window};
    c.refs = calloc((size_t)n, sizeof *c.refs);
    c.called = calloc((size_t)n, 1);
    wref_object **cbs = calloc((size_t)n, sizeof *cbs);
    assert_non_null(c.refs);
    assert_non_null(c.called);
    g_chain40 = &c;
    wref_object *next = NULL;
    for (int i = nodes - 1; i >= 0; i--) {
        wref_object *node = new_obj(&widget_type);
        W(node)->destroyed = &destroyed;
        W(node)->owned = next;   /* steals */
        int k = i * per;
        cbs[k] = wref_callback_new(chain40_cb, (void *)(intptr_t)k, NULL);
        assert_non_null(cbs[k]);
        c.refs[k] = wref_ref_new(node, cbs[k]);
        assert_non_null(c.refs[k]);
        if (with_leaves) {
            wref_object *leaf = new_obj(&widget_type);
            W(leaf)->destroyed = &destroyed;
            cbs[k + 1] = wref_callback_new(chain40_cb, (void *)(intptr_t)(k + 1), NULL);
            assert_non_null(cbs[k + 1]);
            c.refs[k + 1] = wref_ref_new(leaf, cbs[k + 1]);
            assert_non_null(c.refs[k + 1]);
            W(node)->owned2 = leaf;   /* released after `owned` */
        }
        next = node;
    }
    wref_decref(next);
    assert_no_error();
    assert_int_equal(destroyed, n);
    assert_int_equal(c.bad, 0);
    assert_int_equal(g_unr.n, 0);
    assert_int_equal(c.calls, n);   /* every callback ran, once */
    /* each callback probes 2*window+1 refs (all n with window 0), clipped at the ends */
    long probes = 0;
    for (int i = 0; i < n; i++) {
        int lo = window ? i - window : 0, hi = window ? i + window : n - 1;
        probes += (hi > n - 1 ? n - 1 : hi) - (lo < 0 ? 0 : lo) + 1;
    }
    assert_int_equal(c.probes_live + c.probes_dead, probes);
    if (!with_leaves) {
        /* a plain chain dies front to back, each node's callback before it releases the next:
         * callback k sees nodes k+1..n-1 alive and 0..k dead, none of them deferred */
        assert_int_equal(c.probes_live, (long)n * (n - 1) / 2);
        assert_int_equal(c.probes_deferred, 0);
    } else {
        /* the probes saw live neighbours, and the window this variant exists for: referents
         * whose count is 0 but whose destruction (and clearing) was deferred */
        assert_true(c.probes_live > 0);
        assert_true(c.probes_deferred > 0);
    }
    for (int i = 0; i < n; i++) {
        assert_ref_dead(c.refs[i]);
        wref_decref(c.refs[i]);
        wref_decref(cbs[i]);
    }
    free(c.refs);
    free(c.called);
    free(cbs);
    g_chain40 = NULL;
}

static void case40_chain_callbacks_never_see_dying(void **state)
{
    (void)state;
    run_chain40(100, 0, 0);
}

static void case40_deep_chain_with_leaves_never_see_dying(void **state)
{
    (void)state;
    run_chain40(20000, 1, 8);
}

/* ---- ClearWeakRefsNoCallbacks ---------------------------------------------------------------- */

/* 42. NoCallbacks on a live object kills the ref; cb never runs, not even at death. */
static void case42_nocallbacks_live_object(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct cb_rec rec = {.log = &log, .id = 1};
    wref_object *cb = make_cb(&rec);
    wref_object *obj = new_obj(&widget_type);
    wref_object *ref = wref_ref_new(obj, cb);
    wref_clear_weakrefs_no_callbacks(obj);
    assert_no_error();
    assert_ref_dead(ref);
    assert_int_equal(wref_refcount(obj), 1);
    assert_int_equal(log.n, 0);
    wref_decref(obj);
    assert_int_equal(log.n, 0);
    wref_decref(ref);
    wref_decref(cb);
    assert_int_equal(log.n, 0);
}

/* 43. NoCallbacks kills ref, callback ref and proxy; count 0; the callback stays attached; a
 * new NewRef(obj, NULL) is a new, live ref. */
static void case43_nocallbacks_keeps_callback_attached(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct cb_rec rec = {.log = &log, .id = 1};
    wref_object *cb = make_cb(&rec);
    wref_object *obj = new_obj(&widget_type);
    wref_object *r = wref_ref_new(obj, NULL);
    wref_object *c = wref_ref_new(obj, cb);
    wref_object *p = wref_proxy_new(obj, NULL);
    intptr_t cbrc = wref_refcount(cb);
    wref_clear_weakrefs_no_callbacks(obj);
    assert_no_error();
    assert_ref_dead(r);
    assert_ref_dead(c);
    assert_ref_dead(p);
    assert_int_equal(wref_weakref_count(obj), 0);
    assert_ptr_equal(wref_ref_callback(c), cb);
    assert_int_equal(wref_refcount(cb), cbrc);
    wref_object *r2 = wref_ref_new(obj, NULL);
    assert_non_null(r2);
    assert_ptr_not_equal(r2, r);
    assert_ref_live(r2, obj);
    wref_decref(r2);
    wref_decref(obj);
    assert_int_equal(log.n, 0);
    wref_decref(r);
    wref_decref(c);
    assert_int_equal(wref_refcount(cb), cbrc - 1);
    wref_decref(p);
    wref_decref(cb);
    assert_int_equal(log.n, 0);
}

/* 44. NoCallbacks on a non-weakrefable object: nothing happens, no error. */
static void case44_nocallbacks_not_weakrefable(void **state)
{
    (void)state;
    wref_object *nw = new_obj(&plain_type);
    wref_clear_weakrefs_no_callbacks(nw);
    assert_no_error();
    assert_int_equal(wref_refcount(nw), 1);
    wref_clear_weakrefs_no_callbacks(wref_none());
    assert_no_error();
    wref_decref(nw);
}

/* 45. A late ref with a callback created in the dealloc path and cleared by NoCallbacks: dead,
 * callback still attached, never called. Adaptation: done from destroy() (after step 2),
 * calling wref_clear_weakrefs_no_callbacks(self) explicitly there. */
struct probe45 {
    wref_object *cb, *late;
    int count_before, count_after, getref, cb_attached, err;
};

static void probe45_destroy(struct widget *self)
{
    struct probe45 *pr = self->ctx;
    wref_object *o = NULL;
    pr->late = wref_ref_new(&self->ob, pr->cb);
    pr->count_before = (int)wref_weakref_count(&self->ob);
    wref_clear_weakrefs_no_callbacks(&self->ob);
    pr->count_after = (int)wref_weakref_count(&self->ob);
    pr->getref = pr->late ? wref_get_ref(pr->late, &o) : -2;
    pr->cb_attached = pr->late && wref_ref_callback(pr->late) == pr->cb;
    pr->err = wref_err_occurred();
}

static void case45_late_ref_nocallbacks_in_destroy(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct cb_rec rec = {.log = &log, .id = 45};
    struct probe45 pr = {0};
    pr.cb = make_cb(&rec);
    wref_object *obj = new_obj(&widget_type);
    W(obj)->on_destroy = probe45_destroy;
    W(obj)->ctx = &pr;
    wref_decref(obj);
    assert_non_null(pr.late);
    assert_int_equal(pr.err, WREF_OK);
    assert_int_equal(pr.count_before, 1);
    assert_int_equal(pr.count_after, 0);
    assert_int_equal(pr.getref, 0);
    assert_true(pr.cb_attached);
    assert_int_equal(log.n, 0);
    assert_ref_dead(pr.late);
    assert_ptr_equal(wref_ref_callback(pr.late), pr.cb);
    wref_decref(pr.late);
    assert_int_equal(log.n, 0);
    wref_decref(pr.cb);
}

/* ---- finalizers and resurrection ----------------------------------------------------------- */

/* 46. finalize sees R0 live (returns self; count 1 while it runs) and creates R1 = ref(self, cb1):
 * callbacks run cb1 then cb0. */
struct probe46 {
    wref_object *r0, *r1, *cb1;
    int r0_is_self, getobj_is_self;
    intptr_t rc_in_finalize;
};

static void probe46_finalize(struct widget *self)
{
    struct probe46 *pr = self->ctx;
    wref_object *o = NULL;
    pr->rc_in_finalize = wref_refcount(&self->ob);
    pr->r0_is_self = wref_get_ref(pr->r0, &o) == 1 && o == &self->ob;
    wref_xdecref(o);
    pr->getobj_is_self = wref_get_object(pr->r0) == &self->ob;
    pr->r1 = wref_ref_new(&self->ob, pr->cb1);
}

static void case46_finalize_sees_live_ref_and_late_callback_first(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct cb_rec rec0 = {.log = &log, .id = 0}, rec1 = {.log = &log, .id = 1};
    struct probe46 pr = {0};
    int fin = 0, destroyed = 0;
    wref_object *cb0 = make_cb(&rec0);
    pr.cb1 = make_cb(&rec1);
    wref_object *obj = new_obj(&finwidget_type);
    W(obj)->on_finalize = probe46_finalize;
    W(obj)->ctx = &pr;
    W(obj)->finalized = &fin;
    W(obj)->destroyed = &destroyed;
    pr.r0 = wref_ref_new(obj, cb0);
    wref_decref(obj);
    assert_int_equal(fin, 1);
    assert_int_equal(destroyed, 1);
    assert_int_equal(pr.rc_in_finalize, 1);
    assert_true(pr.r0_is_self);
    assert_true(pr.getobj_is_self);
    assert_non_null(pr.r1);
    assert_int_equal(log.n, 2);
    assert_int_equal(log.ids[0], 1);
    assert_ptr_equal(log.refs[0], pr.r1);
    assert_int_equal(log.ids[1], 0);
    assert_ptr_equal(log.refs[1], pr.r0);
    assert_ref_dead(pr.r0);
    assert_ref_dead(pr.r1);
    wref_decref(pr.r0);
    wref_decref(pr.r1);
    wref_decref(cb0);
    wref_decref(pr.cb1);
}

/* 47. finalize resurrects: the weakref returns the object, no callback; at the second death
 * finalize is not re-run and the callback runs. */
static wref_object *g_resurrected;

static void resurrect_finalize(struct widget *self)
{
    wref_incref(&self->ob);
    g_resurrected = &self->ob;
}

static void case47_resurrection(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct cb_rec rec = {.log = &log, .id = 47};
    int fin = 0, destroyed = 0;
    wref_object *cb = make_cb(&rec);
    wref_object *obj = new_obj(&finwidget_type);
    W(obj)->on_finalize = resurrect_finalize;
    W(obj)->finalized = &fin;
    W(obj)->destroyed = &destroyed;
    wref_object *wr = wref_ref_new(obj, cb);
    wref_object *basic = wref_ref_new(obj, NULL);
    g_resurrected = NULL;
    wref_decref(obj);
    assert_ptr_equal(g_resurrected, obj);
    assert_int_equal(fin, 1);
    assert_int_equal(destroyed, 0);
    assert_int_equal(log.n, 0);
    assert_int_equal(wref_refcount(obj), 1);
    assert_ref_live(wr, obj);
    assert_ref_live(basic, obj);
    assert_ptr_equal(wref_ref_callback(wr), cb);
    assert_int_equal(wref_weakref_count(obj), 2);

    W(obj)->on_finalize = NULL;   /* would resurrect again if (wrongly) re-run */
    g_resurrected = NULL;
    wref_decref(obj);
    assert_int_equal(fin, 1);
    assert_int_equal(destroyed, 1);
    assert_int_equal(log.n, 1);
    assert_ptr_equal(log.refs[0], wr);
    assert_ref_dead(wr);
    assert_ref_dead(basic);
    wref_decref(wr);
    wref_decref(basic);
    wref_decref(cb);
}

/* ---- destruction protocol (docs/semantics.md section 4) beyond the catalogue ---------------------------------------- */

/* A finalizer that resurrects must not run again even if it resurrects on the second death
 * (it is simply not called). */
static void protocol_finalize_runs_once_even_if_it_would_resurrect_again(void **state)
{
    (void)state;
    int fin = 0, destroyed = 0;
    wref_object *obj = new_obj(&finwidget_type);
    W(obj)->on_finalize = resurrect_finalize;
    W(obj)->finalized = &fin;
    W(obj)->destroyed = &destroyed;
    g_resurrected = NULL;
    wref_decref(obj);
    assert_ptr_equal(g_resurrected, obj);
    g_resurrected = NULL;
    wref_decref(obj);
    assert_null(g_resurrected);
    assert_int_equal(fin, 1);
    assert_int_equal(destroyed, 1);
}

/* The order of the protocol: finalize (object alive), then callbacks, then destroy. */
struct order_probe {
    char seq[8];
    int n;
};

static struct order_probe g_order;

static void order_finalize(struct widget *self)
{
    (void)self;
    g_order.seq[g_order.n++] = 'F';
}

static void order_destroy(struct widget *self)
{
    (void)self;
    g_order.seq[g_order.n++] = 'D';
}

static void order_cb_extra(wref_object *weakref, struct cb_rec *rec)
{
    (void)weakref;
    (void)rec;
    g_order.seq[g_order.n++] = 'C';
}

static void protocol_order_finalize_callbacks_destroy(void **state)
{
    (void)state;
    struct cb_rec rec = {.extra = order_cb_extra};
    wref_object *cb = make_cb(&rec);
    memset(&g_order, 0, sizeof g_order);
    wref_object *obj = new_obj(&finwidget_type);
    W(obj)->on_finalize = order_finalize;
    W(obj)->on_destroy = order_destroy;
    wref_object *w1 = wref_ref_new(obj, cb);
    wref_object *w2 = wref_ref_new(obj, cb);
    wref_decref(obj);
    assert_string_equal(g_order.seq, "FCCD");
    wref_decref(w1);
    wref_decref(w2);
    wref_decref(cb);
}

/* A weakref created by a callback (step 2) to the dying object is cleared by step 4 without
 * its callback running. */
struct late_in_cb {
    wref_object *target;   /* raw pointer to the dying object */
    wref_object *late_cb;
    wref_object *late;
    int created;
};

static void create_late_extra(wref_object *weakref, struct cb_rec *rec)
{
    (void)weakref;
    struct late_in_cb *l = rec->ctx;
    l->late = wref_ref_new(l->target, l->late_cb);
    l->created = l->late != NULL;
}

static void protocol_ref_created_in_callback_cleared_without_callback(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct late_in_cb l = {0};
    struct cb_rec rec = {.log = &log, .id = 1, .extra = create_late_extra, .ctx = &l};
    struct cb_rec late_rec = {.log = &log, .id = 99};
    wref_object *cb = make_cb(&rec);
    l.late_cb = make_cb(&late_rec);
    wref_object *obj = new_obj(&widget_type);
    l.target = obj;
    wref_object *w = wref_ref_new(obj, cb);
    wref_decref(obj);
    assert_no_error();
    assert_true(l.created);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.ids[0], 1);
    assert_ref_dead(l.late);
    assert_ptr_equal(wref_ref_callback(l.late), l.late_cb);
    wref_decref(l.late);
    wref_decref(w);
    assert_int_equal(log.n, 1);
    wref_decref(cb);
    wref_decref(l.late_cb);
}

/* Every failing callback is reported once, all run, and the unraisable obj is each callback. */
static void protocol_several_failing_callbacks_all_reported(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct cb_rec rec[4];
    wref_object *cb[4], *w[4];
    wref_object *obj = new_obj(&widget_type);
    for (int i = 0; i < 4; i++) {
        rec[i] = (struct cb_rec){.log = &log, .id = i, .fail = (i % 2 == 0)};
        cb[i] = make_cb(&rec[i]);
        w[i] = wref_ref_new(obj, cb[i]);
    }
    wref_decref(obj);
    assert_no_error();
    assert_int_equal(log.n, 4);
    assert_int_equal(g_unr.n, 2);
    assert_ptr_equal(g_unr.obj[0], cb[2]);
    assert_ptr_equal(g_unr.obj[1], cb[0]);
    for (int i = 0; i < 4; i++) {
        wref_decref(w[i]);
        wref_decref(cb[i]);
    }
}

/* Dying weakref (bpo-3100-like): a weakref W whose count already reached 0 must never get its
 * callback run. Construction 1: W's callback object owns (via its release function) the only
 * strong reference to W's referent B, so B dies while W itself is being destroyed. Whatever
 * the order inside W's destruction (unlink then drop callback, or the reverse), W's callback
 * must not run. */
struct own_on_release {
    wref_object *owned;
    int calls;
};

static int never_cb(wref_object *weakref, void *data)
{
    (void)weakref;
    ((struct own_on_release *)data)->calls++;
    return 0;
}

static void drop_owned_release(void *data)
{
    struct own_on_release *d = data;
    wref_object *o = d->owned;
    d->owned = NULL;
    wref_xdecref(o);
}

static void protocol_dying_weakref_callback_not_run_release_drops_referent(void **state)
{
    (void)state;
    struct own_on_release d = {0};
    int destroyed = 0;
    wref_object *b = new_obj(&widget_type);
    W(b)->destroyed = &destroyed;
    wref_object *cb = wref_callback_new(never_cb, &d, drop_owned_release);
    assert_non_null(cb);
    wref_object *w = wref_ref_new(b, cb);
    assert_non_null(w);
    d.owned = b;    /* the callback's data now holds the only reference to b */
    wref_decref(cb); /* w holds the only reference to cb */
    wref_decref(w);  /* w dies -> cb dies -> b dies while w is dying */
    assert_int_equal(destroyed, 1);
    assert_int_equal(d.calls, 0);
    assert_no_error();
    assert_int_equal(g_unr.n, 0);
}

/* Construction 2: a deep ownership chain (deep enough for an iterative destroyer to defer)
 * where node i owns W_i (a callback weakref to B_i) and B_i, and releases W_i first. When B_i
 * is cleared, W_i has count 0: either already unlinked or still dying; its callback must not
 * run in either case. */
static void protocol_dying_weakref_callback_not_run_deep_chain(void **state)
{
    (void)state;
    enum { N = 20000 };
    struct cb_log log = {0};
    struct cb_rec rec = {.log = &log, .id = 1};
    int destroyed = 0;
    wref_object *cb = make_cb(&rec);
    wref_object *next = NULL;
    for (int i = 0; i < N; i++) {
        wref_object *node = new_obj(&widget_type);
        wref_object *bi = new_obj(&widget_type);
        W(node)->destroyed = &destroyed;
        W(bi)->destroyed = &destroyed;
        wref_object *wi = wref_ref_new(bi, cb);
        assert_non_null(wi);
        /* node->owned2 = next chain node, so the chain is released after W_i and B_i */
        struct widget *holder = W(new_obj(&widget_type));
        holder->destroyed = &destroyed;
        holder->owned = wi;        /* released first */
        holder->owned2 = bi;       /* released second */
        W(node)->owned = &holder->ob;
        W(node)->owned2 = next;
        next = node;
    }
    wref_decref(next);
    assert_int_equal(destroyed, 3 * N);
    assert_int_equal(log.n, 0);
    assert_no_error();
    wref_decref(cb);
}

/* ---- bad arguments -------------------------------------------------------------------------- */

static void badarg_null_everywhere(void **state)
{
    (void)state;
    assert_null(wref_ref_new(NULL, NULL));
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();
    assert_null(wref_proxy_new(NULL, NULL));
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();
    assert_int_equal(wref_weakref_count(NULL), 0);
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();
    wref_object *out[2] = {wref_none(), wref_none()};
    assert_int_equal(wref_weakrefs(NULL, out, 2), 0);
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();
    wref_clear_weakrefs_no_callbacks(NULL);
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();
    assert_null(wref_new(NULL));
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();
    assert_null(wref_callback_new(NULL, NULL, NULL));
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();
    assert_null(wref_ref_callback(NULL));
    assert_no_error();
}

static void badarg_type_too_small(void **state)
{
    (void)state;
    static const wref_type tiny = {"Tiny", sizeof(wref_object) - 1, WREF_TYPE_WEAKREFABLE,
                                   NULL, NULL, NULL, NULL};
    assert_null(wref_new(&tiny));
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();
    static const wref_type exact = {"Exact", sizeof(wref_object), WREF_TYPE_WEAKREFABLE,
                                    NULL, NULL, NULL, NULL};
    wref_object *o = wref_new(&exact);
    assert_non_null(o);
    assert_no_error();
    wref_decref(o);
}

static void badarg_non_weakref_where_weakref_expected(void **state)
{
    (void)state;
    wref_object *obj = new_obj(&widget_type);
    wref_object *o = obj;
    assert_int_equal(wref_get_ref(obj, &o), -1);
    assert_null(o);
    assert_error_msg(WREF_ERR_TYPE, "expected a weakref, not 'Widget'");
    wref_err_clear();
    assert_null(wref_get_object(obj));
    assert_error(WREF_ERR_SYSTEM);
    wref_err_clear();
    assert_null(wref_ref_callback(obj));
    assert_no_error();
    assert_int_equal(wref_refcount(obj), 1);
    wref_decref(obj);
}

static void badarg_noncallable_callback_kinds(void **state)
{
    (void)state;
    wref_object *obj = new_obj(&widget_type);
    wref_object *nw = new_obj(&plain_type);
    wref_object *r = wref_ref_new(obj, NULL);
    wref_object *p = wref_proxy_new(obj, NULL);
    /* a plain proxy is not callable; a ref is (like CPython's ref()) */
    wref_object *bad[2] = {nw, p};
    for (int i = 0; i < 2; i++) {
        assert_null(wref_ref_new(obj, bad[i]));
        assert_error(WREF_ERR_TYPE);
        wref_err_clear();
        assert_null(wref_proxy_new(obj, bad[i]));
        assert_error(WREF_ERR_TYPE);
        wref_err_clear();
    }
    assert_int_equal(wref_weakref_count(obj), 2);
    assert_int_equal(wref_refcount(nw), 1);
    assert_int_equal(wref_refcount(p), 1);
    wref_decref(r);
    wref_decref(p);
    wref_decref(nw);
    wref_decref(obj);
}

static void badarg_weakref_count_non_weakrefable(void **state)
{
    (void)state;
    wref_object *nw = new_obj(&plain_type);
    assert_int_equal(wref_weakref_count(nw), 0);
    assert_no_error();
    wref_object *out[1] = {NULL};
    assert_int_equal(wref_weakrefs(nw, out, 1), 0);
    assert_no_error();
    wref_decref(nw);
}

/* wref_weakrefs with a small cap returns the total and fills only cap entries. */
static void weakrefs_cap_smaller_than_total(void **state)
{
    (void)state;
    struct cb_rec rec = {0};
    wref_object *cb = make_cb(&rec);
    wref_object *obj = new_obj(&widget_type);
    wref_object *r = wref_ref_new(obj, NULL);
    wref_object *a = wref_ref_new(obj, cb);
    wref_object *b = wref_ref_new(obj, cb);
    wref_object *out[3] = {NULL, NULL, wref_none()};
    assert_int_equal(wref_weakrefs(obj, out, 2), 3);
    assert_ptr_equal(out[0], r);
    assert_ptr_equal(out[1], b);
    assert_ptr_equal(out[2], wref_none());   /* untouched */
    assert_int_equal(wref_refcount(r), 2);
    assert_int_equal(wref_refcount(a), 1);
    wref_decref(out[0]);
    wref_decref(out[1]);
    assert_int_equal(wref_weakrefs(obj, NULL, 0), 3);
    wref_decref(r);
    wref_decref(a);
    wref_decref(b);
    wref_decref(obj);
    wref_decref(cb);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(case01_type_checks),
        T(case02_callable_proxy_type),
        T(case03_newref_keeps_refcount),
        T(case04_ref_reuse_same_pointer),
        T(case05_null_and_none_callback_shared),
        T(case06_proxy_does_not_break_ref_reuse),
        T(case07_proxy_reuse),
        T(case08_callback_refcount),
        T(case09_callback_refs_distinct),
        T(case11_not_weakrefable),
        T(case12_weakref_not_weakrefable),
        T(case13_noncallable_callback_rejected),
        T(case14_proxy_kinds),
        T(case15_list_order_ref_before_proxy),
        T(case16_list_order_callbacks_newest_first),
        T(case17_list_order_proxy_head),
        T(case18_getweakrefs_after_destroy),
        T(case19_getref_live),
        T(case20_getref_dead),
        T(case21_getref_proxy),
        T(case22_getref_not_weakref),
        T(case23_getref_null),
        T(case24_getobject),
        T(case25_getobject_bad_args),
        T(case26_get_object_macro),
        T(case27_dying_window_probe_in_destroy),
        T(case28_newref_in_dying_window),
        T(case29_clearweakrefs_live_is_error),
        T(case30_all_dead_after_death),
        T(case31_callback_receives_weakref_once),
        T(case32_callbacks_newest_first),
        T(case33_all_dead_before_first_callback),
        T(case34_failing_callback_unraisable),
        T(case35_pending_error_preserved),
        T(case36_callback_drops_other_weakref),
        T(case37_dead_weakref_no_callback),
        T(case39_clearing_under_allocation_failure),
        T(case40_chain_callbacks_never_see_dying),
        T(case40_deep_chain_with_leaves_never_see_dying),
        T(case42_nocallbacks_live_object),
        T(case43_nocallbacks_keeps_callback_attached),
        T(case44_nocallbacks_not_weakrefable),
        T(case45_late_ref_nocallbacks_in_destroy),
        T(case46_finalize_sees_live_ref_and_late_callback_first),
        T(case47_resurrection),
        T(protocol_finalize_runs_once_even_if_it_would_resurrect_again),
        T(protocol_order_finalize_callbacks_destroy),
        T(protocol_ref_created_in_callback_cleared_without_callback),
        T(protocol_several_failing_callbacks_all_reported),
        T(protocol_dying_weakref_callback_not_run_release_drops_referent),
        T(protocol_dying_weakref_callback_not_run_deep_chain),
        T(badarg_null_everywhere),
        T(badarg_type_too_small),
        T(badarg_non_weakref_where_weakref_expected),
        T(badarg_noncallable_callback_kinds),
        T(badarg_weakref_count_non_weakrefable),
        T(weakrefs_cap_smaller_than_total),
    };
    return cmocka_run_group_tests_name("conformance", tests, group_setup, NULL);
}
