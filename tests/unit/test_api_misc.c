/* test_api_misc.c: the rest of the public API (wref.h): None, wref_call, callback objects,
 * the error indicator, the default unraisable hook, version, NULL handling, counts/types. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include "support.h"

#include <fcntl.h>
#include <unistd.h>

static int setup(void **state)
{
    (void)state;
    wref_err_clear();
    return 0;
}

/* ---- None ------------------------------------------------------------------------------------ */

static void none_is_immortal(void **state)
{
    (void)state;
    wref_object *n = wref_none();
    assert_non_null(n);
    assert_ptr_equal(wref_none(), n);
    intptr_t rc = wref_refcount(n);
    assert_true(rc >= 1);
    for (int i = 0; i < 1000; i++)
        wref_incref(n);
    assert_int_equal(wref_refcount(n), rc);
    for (int i = 0; i < 5000; i++)
        wref_decref(n);
    assert_int_equal(wref_refcount(n), rc);
    wref_xincref(n);
    wref_xdecref(n);
    assert_int_equal(wref_refcount(n), rc);
    assert_non_null(wref_type_of(n));
    assert_non_null(wref_type_of(n)->name);
    assert_false(wref_is_weakref(n));
    assert_false(wref_is_callable(n));
    assert_no_error();
}

static void none_not_weakrefable(void **state)
{
    (void)state;
    char want[200];
    snprintf(want, sizeof want, "cannot create weak reference to '%s' object",
             wref_type_of(wref_none())->name);
    assert_null(wref_ref_new(wref_none(), NULL));
    assert_error_msg(WREF_ERR_TYPE, want);
    wref_err_clear();
    assert_null(wref_proxy_new(wref_none(), NULL));
    assert_error_msg(WREF_ERR_TYPE, want);
    wref_err_clear();
    assert_int_equal(wref_weakref_count(wref_none()), 0);
    assert_no_error();
}

/* ---- wref_call --------------------------------------------------------------------------------- */

static void call_type_slot(void **state)
{
    (void)state;
    wref_object *f = new_obj(&func_type);
    wref_object *arg = new_obj(&widget_type);
    assert_true(wref_is_callable(f));
    wref_object *res = wref_call(f, arg);
    assert_ptr_equal(res, arg);
    assert_int_equal(wref_refcount(arg), 2);
    wref_decref(res);
    res = wref_call(f, NULL);
    assert_ptr_equal(res, wref_none());
    assert_no_error();
    wref_decref(arg);
    wref_decref(f);
}

/* A call slot that fails: NULL with its error. */
static wref_object *failing_call(wref_object *self, wref_object *arg)
{
    (void)self;
    (void)arg;
    wref_err_set(WREF_ERR_RUNTIME, "call failed %d", 3);
    return NULL;
}

static void call_slot_error_propagates(void **state)
{
    (void)state;
    static const wref_type failing = {"Failing", sizeof(struct widget), WREF_TYPE_WEAKREFABLE,
                                      NULL, NULL, NULL, failing_call};
    wref_object *f = new_obj(&failing);
    assert_null(wref_call(f, NULL));
    assert_error_msg(WREF_ERR_RUNTIME, "call failed 3");
    wref_err_clear();
    wref_object *p = wref_proxy_new(f, NULL);
    assert_null(wref_call(p, NULL));
    assert_error_msg(WREF_ERR_RUNTIME, "call failed 3");
    wref_err_clear();
    wref_decref(p);
    wref_decref(f);
}

static void call_not_callable(void **state)
{
    (void)state;
    wref_object *w = new_obj(&widget_type);
    assert_false(wref_is_callable(w));
    assert_null(wref_call(w, NULL));
    assert_error_msg(WREF_ERR_TYPE, "'Widget' object is not callable");
    wref_err_clear();
    wref_object *nw = new_obj(&plain_type);
    assert_null(wref_call(nw, w));
    assert_error_msg(WREF_ERR_TYPE, "'Plain' object is not callable");
    wref_err_clear();
    assert_int_equal(wref_refcount(w), 1);
    /* a plain proxy (referent not callable) is not callable */
    wref_object *p = wref_proxy_new(w, NULL);
    assert_false(wref_is_callable(p));
    char want[200];
    snprintf(want, sizeof want, "'%s' object is not callable", wref_type_of(p)->name);
    assert_null(wref_call(p, NULL));
    assert_error_msg(WREF_ERR_TYPE, want);
    wref_err_clear();
    /* None is not callable */
    snprintf(want, sizeof want, "'%s' object is not callable", wref_type_of(wref_none())->name);
    assert_null(wref_call(wref_none(), NULL));
    assert_error_msg(WREF_ERR_TYPE, want);
    wref_err_clear();
    wref_decref(p);
    wref_decref(nw);
    wref_decref(w);
}

static void call_through_callable_proxy(void **state)
{
    (void)state;
    wref_object *f = new_obj(&func_type);
    wref_object *arg = new_obj(&widget_type);
    wref_object *p = wref_proxy_new(f, NULL);
    assert_true(wref_is_callable(p));
    wref_object *res = wref_call(p, arg);
    assert_ptr_equal(res, arg);
    assert_int_equal(wref_refcount(arg), 2);
    assert_int_equal(wref_refcount(f), 1);   /* the call's temporary reference is gone */
    wref_decref(res);
    assert_ptr_equal(wref_call(p, NULL), wref_none());
    assert_no_error();
    wref_decref(f);
    assert_null(wref_call(p, arg));
    assert_error_msg(WREF_ERR_REFERENCE, "weakly-referenced object no longer exists");
    wref_err_clear();
    assert_true(wref_is_callable(p));   /* still a callable proxy, just dead */
    assert_int_equal(wref_refcount(arg), 1);
    wref_decref(p);
    wref_decref(arg);
}

/* A callable proxy whose referent drops the last strong reference to itself during the call:
 * the proxy call must hold a strong reference for the whole call (bpo-38395). */
static wref_object *g_selfdrop_owner;
static int g_selfdrop_alive_at_end;

static wref_object *selfdrop_call(wref_object *self, wref_object *arg)
{
    (void)arg;
    wref_object *o = g_selfdrop_owner;
    g_selfdrop_owner = NULL;
    wref_xdecref(o);   /* not the last: the proxy call holds one */
    g_selfdrop_alive_at_end = wref_refcount(self) >= 1 && !W(self)->dead_flag;
    return wref_none();
}

static void call_proxy_holds_referent_during_call(void **state)
{
    (void)state;
    static const wref_type selfdrop_type = {"SelfDrop", sizeof(struct widget), WREF_TYPE_WEAKREFABLE,
                                            NULL, widget_destroy, NULL, selfdrop_call};
    int destroyed = 0;
    wref_object *f = new_obj(&selfdrop_type);
    W(f)->destroyed = &destroyed;
    wref_object *p = wref_proxy_new(f, NULL);
    g_selfdrop_owner = f;
    wref_object *res = wref_call(p, NULL);
    assert_ptr_equal(res, wref_none());
    assert_true(g_selfdrop_alive_at_end);
    assert_int_equal(destroyed, 1);   /* died when the call released it */
    wref_object *o = NULL;
    assert_int_equal(wref_get_ref(p, &o), 0);
    wref_decref(p);
}

/* Calling a weakref with no argument returns the referent (new reference) or None. */
static void call_weakref_returns_referent_or_none(void **state)
{
    (void)state;
    wref_object *obj = new_obj(&widget_type);
    wref_object *r = wref_ref_new(obj, NULL);
    assert_true(wref_is_callable(r));
    wref_object *res = wref_call(r, NULL);
    assert_ptr_equal(res, obj);
    assert_int_equal(wref_refcount(obj), 2);
    wref_decref(res);
    wref_decref(obj);
    res = wref_call(r, NULL);
    assert_ptr_equal(res, wref_none());
    assert_no_error();
    wref_decref(r);
}

/* ---- callback objects ------------------------------------------------------------------------ */

struct cbdata {
    int calls;
    wref_object *last_arg;
    int released;
    int fail;
};

static int cbfn(wref_object *weakref, void *data)
{
    struct cbdata *d = data;
    d->calls++;
    d->last_arg = weakref;
    if (d->fail) {
        wref_err_set(WREF_ERR_RUNTIME, "cb failed");
        return -1;
    }
    return 0;
}

static void cbrelease(void *data) { ((struct cbdata *)data)->released++; }

static void callback_object_call_and_release(void **state)
{
    (void)state;
    struct cbdata d = {0};
    wref_object *cb = wref_callback_new(cbfn, &d, cbrelease);
    assert_non_null(cb);
    assert_int_equal(wref_refcount(cb), 1);
    assert_true(wref_is_callable(cb));
    assert_false(wref_is_weakref(cb));
    wref_object *arg = new_obj(&widget_type);
    wref_object *res = wref_call(cb, arg);
    assert_ptr_equal(res, wref_none());
    assert_int_equal(d.calls, 1);
    assert_ptr_equal(d.last_arg, arg);
    assert_int_equal(wref_refcount(arg), 1);
    d.fail = 1;
    assert_null(wref_call(cb, arg));
    assert_error_msg(WREF_ERR_RUNTIME, "cb failed");
    wref_err_clear();
    assert_int_equal(d.calls, 2);
    wref_incref(cb);
    wref_decref(cb);
    assert_int_equal(d.released, 0);
    wref_decref(cb);
    assert_int_equal(d.released, 1);
    wref_decref(arg);
}

static void callback_object_null_release_ok(void **state)
{
    (void)state;
    struct cbdata d = {0};
    wref_object *cb = wref_callback_new(cbfn, &d, NULL);
    assert_non_null(cb);
    wref_decref(cb);
    assert_int_equal(d.released, 0);
    assert_no_error();
}

/* A callback object held by a weakref is released when the weakref dies after running it. */
static void callback_object_released_after_weakref(void **state)
{
    (void)state;
    struct cbdata d = {0};
    wref_object *cb = wref_callback_new(cbfn, &d, cbrelease);
    wref_object *obj = new_obj(&widget_type);
    wref_object *r = wref_ref_new(obj, cb);
    wref_decref(cb);   /* r holds the only reference */
    assert_int_equal(d.released, 0);
    wref_decref(obj);
    assert_int_equal(d.calls, 1);
    assert_ptr_equal(d.last_arg, r);
    /* the callback was taken to be run: the weakref no longer holds it */
    assert_null(wref_ref_callback(r));
    assert_int_equal(d.released, 1);
    wref_decref(r);
    assert_int_equal(d.released, 1);
}

/* ---- errors ------------------------------------------------------------------------------------ */

static void errors_names(void **state)
{
    (void)state;
    assert_string_equal(wref_err_name(WREF_OK), "OK");
    assert_string_equal(wref_err_name(WREF_ERR_TYPE), "TypeError");
    assert_string_equal(wref_err_name(WREF_ERR_REFERENCE), "ReferenceError");
    assert_string_equal(wref_err_name(WREF_ERR_MEMORY), "MemoryError");
    assert_string_equal(wref_err_name(WREF_ERR_SYSTEM), "SystemError");
    assert_string_equal(wref_err_name(WREF_ERR_RUNTIME), "RuntimeError");
    assert_non_null(wref_err_name((wref_error)999));
}

static void errors_set_clear_message(void **state)
{
    (void)state;
    assert_int_equal(wref_err_occurred(), WREF_OK);
    assert_null(wref_err_message());
    wref_err_set(WREF_ERR_TYPE, "x=%d %s", 5, "y");
    assert_error_msg(WREF_ERR_TYPE, "x=5 y");
    wref_err_set(WREF_ERR_MEMORY, "second");   /* replaces */
    assert_error_msg(WREF_ERR_MEMORY, "second");
    wref_err_clear();
    assert_int_equal(wref_err_occurred(), WREF_OK);
    assert_null(wref_err_message());
    wref_err_clear();   /* idempotent */
    assert_null(wref_err_message());
    /* a long message does not overflow; it is kept or truncated, never garbage */
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    wref_err_set(WREF_ERR_RUNTIME, "%s", big);
    assert_error(WREF_ERR_RUNTIME);
    assert_true(strlen(wref_err_message()) > 0);
    assert_int_equal(strspn(wref_err_message(), "a"), strlen(wref_err_message()));
    wref_err_clear();
}

/* Successful calls leave a pending error alone. */
static void errors_success_does_not_clear(void **state)
{
    (void)state;
    wref_err_set(WREF_ERR_TYPE, "keep");
    wref_object *obj = wref_new(&widget_type);
    assert_non_null(obj);
    wref_object *r = wref_ref_new(obj, NULL);
    wref_object *o = NULL;
    assert_int_equal(wref_get_ref(r, &o), 1);
    wref_decref(o);
    wref_decref(r);
    wref_decref(obj);
    assert_error_msg(WREF_ERR_TYPE, "keep");
    wref_err_clear();
}

/* ---- default unraisable hook ---------------------------------------------------------------- */

static void unraisable_default_prints_one_line(void **state)
{
    (void)state;
    struct cbdata d = {.fail = 1};
    wref_object *cb = wref_callback_new(cbfn, &d, NULL);
    wref_object *obj = new_obj(&widget_type);
    wref_object *r = wref_ref_new(obj, cb);
    wref_set_unraisable_hook(NULL, NULL);   /* the default */

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    wref_decref(obj);   /* callback fails -> default hook writes to stderr */
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char buf[4096];
    ssize_t total = 0, k;
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    while ((k = read(fds[0], buf + total, sizeof buf - 1 - (size_t)total)) > 0)
        total += k;
    close(fds[0]);
    buf[total] = 0;

    assert_int_equal(d.calls, 1);
    assert_no_error();
    print_message("default hook wrote: %s", buf);
    assert_true(total > 0);
    /* exactly one line */
    assert_int_equal(buf[total - 1], '\n');
    assert_ptr_equal(strchr(buf, '\n'), buf + total - 1);
    /* naming the callback's type and the error */
    assert_non_null(strstr(buf, wref_type_of(cb)->name));
    assert_non_null(strstr(buf, "cb failed"));
    wref_decref(r);
    wref_decref(cb);
}

static void unraisable_custom_hook_and_restore(void **state)
{
    (void)state;
    struct unraisable_log log = {0};
    struct cbdata d = {.fail = 1};
    wref_object *cb = wref_callback_new(cbfn, &d, NULL);
    wref_object *obj = new_obj(&widget_type);
    wref_object *r = wref_ref_new(obj, cb);
    wref_set_unraisable_hook(unraisable_recorder, &log);
    wref_decref(obj);
    wref_set_unraisable_hook(NULL, NULL);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.kind[0], WREF_ERR_RUNTIME);
    assert_string_equal(log.msg[0], "cb failed");
    assert_ptr_equal(log.obj[0], cb);
    assert_no_error();
    wref_decref(r);
    wref_decref(cb);
}

/* ---- version, NULL handling, counts --------------------------------------------------------- */

static void version_string_matches_macros(void **state)
{
    (void)state;
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", WREF_VERSION_MAJOR, WREF_VERSION_MINOR,
             WREF_VERSION_PATCH);
    assert_string_equal(wref_version_string(), want);
    assert_string_equal(wref_version_string(), "0.1.0");
}

static void null_handling(void **state)
{
    (void)state;
    assert_false(wref_is_weakref(NULL));
    assert_false(wref_is_ref(NULL));
    assert_false(wref_is_proxy(NULL));
    assert_false(wref_is_callable(NULL));
    wref_xincref(NULL);
    wref_xdecref(NULL);
    assert_int_equal(wref_refcount(NULL), 0);
    assert_null(wref_type_of(NULL));
    assert_no_error();
}

static void refcount_and_type_of(void **state)
{
    (void)state;
    int destroyed = 0;
    wref_object *o = wref_new(&widget_type);
    assert_non_null(o);
    assert_ptr_equal(wref_type_of(o), &widget_type);
    assert_int_equal(wref_refcount(o), 1);
    /* the body is zeroed */
    struct widget zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal((char *)o + sizeof(wref_object), (char *)&zero + sizeof(wref_object),
                        sizeof(struct widget) - sizeof(wref_object));
    W(o)->destroyed = &destroyed;
    wref_incref(o);
    wref_xincref(o);
    assert_int_equal(wref_refcount(o), 3);
    wref_decref(o);
    wref_xdecref(o);
    assert_int_equal(wref_refcount(o), 1);
    assert_int_equal(destroyed, 0);
    wref_decref(o);
    assert_int_equal(destroyed, 1);

    wref_object *r = NULL;
    o = new_obj(&widget_type);
    r = wref_ref_new(o, NULL);
    assert_non_null(wref_type_of(r));
    assert_non_null(wref_type_of(r)->name);
    assert_ptr_not_equal(wref_type_of(r), &widget_type);
    wref_decref(r);
    wref_decref(o);
}

/* Weakref type checks on every kind of object. */
static void is_checks_on_all_kinds(void **state)
{
    (void)state;
    struct cbdata d = {0};
    wref_object *cb = wref_callback_new(cbfn, &d, NULL);
    wref_object *obj = new_obj(&widget_type);
    wref_object *f = new_obj(&func_type);
    wref_object *r = wref_ref_new(obj, cb);
    wref_object *p = wref_proxy_new(obj, cb);
    wref_object *cp = wref_proxy_new(f, cb);
    struct { wref_object *o; int weak, ref, proxy, callable; } t[] = {
        {obj, 0, 0, 0, 0}, {f, 0, 0, 0, 1}, {cb, 0, 0, 0, 1}, {r, 1, 1, 0, 1},
        {p, 1, 0, 1, 0},   {cp, 1, 0, 1, 1},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        assert_int_equal(!!wref_is_weakref(t[i].o), t[i].weak);
        assert_int_equal(!!wref_is_ref(t[i].o), t[i].ref);
        assert_int_equal(!!wref_is_proxy(t[i].o), t[i].proxy);
        assert_int_equal(!!wref_is_callable(t[i].o), t[i].callable);
    }
    assert_ptr_equal(wref_ref_callback(r), cb);
    assert_no_error();
    wref_decref(r);
    wref_decref(p);
    wref_decref(cp);
    wref_decref(obj);
    wref_decref(f);
    wref_decref(cb);
}

#define T(f) cmocka_unit_test_setup(f, setup)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(none_is_immortal),
        T(none_not_weakrefable),
        T(call_type_slot),
        T(call_slot_error_propagates),
        T(call_not_callable),
        T(call_through_callable_proxy),
        T(call_proxy_holds_referent_during_call),
        T(call_weakref_returns_referent_or_none),
        T(callback_object_call_and_release),
        T(callback_object_null_release_ok),
        T(callback_object_released_after_weakref),
        T(errors_names),
        T(errors_set_clear_message),
        T(errors_success_does_not_clear),
        T(unraisable_default_prints_one_line),
        T(unraisable_custom_hook_and_restore),
        T(version_string_matches_macros),
        T(null_handling),
        T(refcount_and_type_of),
        T(is_checks_on_all_kinds),
    };
    return cmocka_run_group_tests_name("api_misc", tests, NULL, NULL);
}
