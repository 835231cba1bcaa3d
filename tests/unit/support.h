/* support.h: helpers shared by the runtime unit tests (cmocka).
 *
 * Everything here uses the public API only (wref.h), exactly as a user program would.
 * Contents: user object types (Widget, FinWidget, Func, Plain), a recording callback, an
 * unraisable-hook recorder, a counting/failing allocator, and error assertions. */
#ifndef WREF_TESTS_SUPPORT_H
#define WREF_TESTS_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wref.h>

#define T_UNUSED __attribute__((unused))

/* ---- error assertions --------------------------------------------------------------------- */

#define assert_no_error()                                                                 \
    do {                                                                                  \
        if (wref_err_occurred() != WREF_OK)                                               \
            print_error("unexpected pending error %s: %s\n",                              \
                        wref_err_name(wref_err_occurred()),                               \
                        wref_err_message() ? wref_err_message() : "(null)");            \
        assert_int_equal(wref_err_occurred(), WREF_OK);                                   \
    } while (0)

/* The pending error is `kind`. */
#define assert_error(kind)                                                                \
    do {                                                                                  \
        if (wref_err_occurred() != (kind))                                                \
            print_error("expected %s, pending %s: %s\n", wref_err_name(kind),             \
                        wref_err_name(wref_err_occurred()),                               \
                        wref_err_message() ? wref_err_message() : "(null)");            \
        assert_int_equal(wref_err_occurred(), (kind));                                    \
        assert_non_null(wref_err_message());                                              \
    } while (0)

/* The pending error is `kind` with exactly the message `msg`. */
#define assert_error_msg(kind, msg)                                                       \
    do {                                                                                  \
        assert_error(kind);                                                               \
        assert_string_equal(wref_err_message(), (msg));                                   \
    } while (0)

/* The pending error is `kind` and its message contains `sub`. */
#define assert_error_contains(kind, sub)                                                  \
    do {                                                                                  \
        assert_error(kind);                                                               \
        if (!strstr(wref_err_message(), (sub)))                                           \
            print_error("message \"%s\" does not contain \"%s\"\n", wref_err_message(),  \
                        (sub));                                                           \
        assert_non_null(strstr(wref_err_message(), (sub)));                               \
    } while (0)

/* ---- user types -------------------------------------------------------------------------- */

/* A test object. Every field is optional; destroy() calls on_destroy (with everything still
 * owned), sets dead_flag, bumps *destroyed and releases `owned` and `owned2`. */
struct widget {
    wref_object ob;
    int id;
    int *destroyed;            /* incremented by destroy */
    int *finalized;            /* incremented by finalize */
    int dead_flag;             /* atomic; set by destroy */
    wref_object *owned;        /* strong, released by destroy */
    wref_object *owned2;       /* strong, released by destroy (after owned) */
    void (*on_destroy)(struct widget *self);
    void (*on_finalize)(struct widget *self);
    void *ctx;
};

static inline struct widget *W(wref_object *ob) { return (struct widget *)ob; }

static inline void widget_finalize(wref_object *self)
{
    struct widget *w = W(self);
    if (w->finalized)
        __atomic_fetch_add(w->finalized, 1, __ATOMIC_RELAXED);
    if (w->on_finalize)
        w->on_finalize(w);
}

static inline void widget_destroy(wref_object *self)
{
    struct widget *w = W(self);
    if (w->on_destroy)
        w->on_destroy(w);
    __atomic_store_n(&w->dead_flag, 1, __ATOMIC_RELEASE);
    if (w->destroyed)
        __atomic_fetch_add(w->destroyed, 1, __ATOMIC_RELAXED);
    wref_object *o = w->owned, *o2 = w->owned2;
    w->owned = NULL;
    w->owned2 = NULL;
    wref_xdecref(o);
    wref_xdecref(o2);
}

static inline int widget_traverse(wref_object *self, wref_visit_fn visit, void *arg)
{
    struct widget *w = W(self);
    int r;
    if (w->owned && (r = visit(w->owned, arg)) != 0)
        return r;
    if (w->owned2 && (r = visit(w->owned2, arg)) != 0)
        return r;
    return 0;
}

/* Func's call slot: returns a new reference to arg, or None for no argument. */
static inline wref_object *func_call(wref_object *self, wref_object *arg)
{
    (void)self;
    if (!arg)
        return wref_none();
    wref_incref(arg);
    return arg;
}

static const wref_type widget_type T_UNUSED = {
    "Widget", sizeof(struct widget), WREF_TYPE_WEAKREFABLE,
    NULL, widget_destroy, widget_traverse, NULL};
static const wref_type finwidget_type T_UNUSED = {
    "FinWidget", sizeof(struct widget), WREF_TYPE_WEAKREFABLE,
    widget_finalize, widget_destroy, widget_traverse, NULL};
static const wref_type func_type T_UNUSED = {
    "Func", sizeof(struct widget), WREF_TYPE_WEAKREFABLE,
    NULL, widget_destroy, widget_traverse, func_call};
static const wref_type plain_type T_UNUSED = {
    "Plain", sizeof(struct widget), 0,
    NULL, widget_destroy, widget_traverse, NULL};

static inline wref_object *new_obj(const wref_type *t)
{
    wref_object *o = wref_new(t);
    assert_non_null(o);
    assert_int_equal(wref_refcount(o), 1);
    return o;
}

/* ---- recording callbacks ------------------------------------------------------------------ */

#define CB_LOG_MAX 256

struct cb_log {
    int n;
    int ids[CB_LOG_MAX];
    wref_object *refs[CB_LOG_MAX];   /* the weakref each call received */
    int saw_error[CB_LOG_MAX];       /* wref_err_occurred() at entry */
};

struct cb_rec;
typedef void (*cb_extra_fn)(wref_object *weakref, struct cb_rec *rec);

struct cb_rec {
    struct cb_log *log;
    int id;
    int fail;              /* set "boom" (WREF_ERR_RUNTIME) and return -1 */
    cb_extra_fn extra;     /* runs after recording */
    void *ctx;
    int released;          /* set by cb_rec_release */
};

static inline int record_cb(wref_object *weakref, void *data)
{
    struct cb_rec *rec = data;
    struct cb_log *log = rec->log;
    if (log && log->n < CB_LOG_MAX) {
        log->ids[log->n] = rec->id;
        log->refs[log->n] = weakref;
        log->saw_error[log->n] = (int)wref_err_occurred();
        log->n++;
    }
    if (rec->extra)
        rec->extra(weakref, rec);
    if (rec->fail) {
        wref_err_set(WREF_ERR_RUNTIME, "boom");
        return -1;
    }
    return 0;
}

static inline void cb_rec_release(void *data) { ((struct cb_rec *)data)->released++; }

/* A callback object recording into rec->log; the caller owns the returned reference. */
static inline wref_object *make_cb(struct cb_rec *rec)
{
    wref_object *cb = wref_callback_new(record_cb, rec, cb_rec_release);
    assert_non_null(cb);
    return cb;
}

/* ---- unraisable hook recorder --------------------------------------------------------------- */

#define UNRAISABLE_MAX 64

struct unraisable_log {
    int n;
    wref_error kind[UNRAISABLE_MAX];
    char msg[UNRAISABLE_MAX][160];
    wref_object *obj[UNRAISABLE_MAX];
};

static inline void unraisable_recorder(wref_error kind, const char *message, wref_object *obj, void *arg)
{
    struct unraisable_log *l = arg;
    if (l->n < UNRAISABLE_MAX) {
        l->kind[l->n] = kind;
        snprintf(l->msg[l->n], sizeof l->msg[l->n], "%s", message ? message : "(null)");
        l->obj[l->n] = obj;
    }
    l->n++;
}

/* ---- counting / failing allocator ----------------------------------------------------------- */

struct counting_alloc {
    size_t live_bytes;     /* atomic */
    size_t live_count;     /* atomic */
    size_t allocs;         /* atomic: successful + failed alloc calls */
    size_t frees;          /* atomic */
    long fail_at;          /* fail the alloc call with this 0-based index; -1 = never */
    int fail_all;          /* atomic: fail every alloc call */
    size_t failures;       /* atomic: alloc calls that were made to fail */
    int bad_free;          /* a free whose size differs from the allocated size */
};

/* Each block is preceded by a 16-byte header holding its size, so a free with a wrong size is
 * detected (bad_free) and the real size is freed. */
static inline void *counting_alloc_fn(void *ctx, size_t size)
{
    struct counting_alloc *c = ctx;
    size_t idx = __atomic_fetch_add(&c->allocs, 1, __ATOMIC_RELAXED);
    if (__atomic_load_n(&c->fail_all, __ATOMIC_RELAXED) ||
        (c->fail_at >= 0 && (size_t)c->fail_at == idx)) {
        __atomic_fetch_add(&c->failures, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    unsigned char *p = malloc(size + 16);
    if (!p)
        return NULL;
    memcpy(p, &size, sizeof size);
    __atomic_fetch_add(&c->live_bytes, size, __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->live_count, 1, __ATOMIC_RELAXED);
    return p + 16;
}

static inline void counting_free_fn(void *ctx, void *ptr, size_t size)
{
    struct counting_alloc *c = ctx;
    if (!ptr)
        return;
    unsigned char *p = (unsigned char *)ptr - 16;
    size_t real;
    memcpy(&real, p, sizeof real);
    if (real != size)
        __atomic_store_n(&c->bad_free, 1, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&c->live_bytes, real, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&c->live_count, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->frees, 1, __ATOMIC_RELAXED);
    free(p);
}

static inline wref_allocator counting_allocator(struct counting_alloc *c)
{
    wref_allocator a = {c, counting_alloc_fn, counting_free_fn};
    return a;
}

static inline size_t live_count(struct counting_alloc *c)
{
    return __atomic_load_n(&c->live_count, __ATOMIC_RELAXED);
}

/* ---- weakref list helpers ------------------------------------------------------------------ */

/* Asserts that wref_weakrefs(ob) is exactly expected[0..n) (pointer identity, list order) and
 * that wref_weakref_count(ob) == n; releases the new references wref_weakrefs returned. */
static inline void assert_weakref_list(wref_object *ob, wref_object *const *expected, size_t n)
{
    wref_object *out[32] = {0};
    assert_true(n <= 32);
    size_t total = wref_weakrefs(ob, out, 32);
    assert_no_error();
    assert_int_equal(total, n);
    assert_int_equal(wref_weakref_count(ob), n);
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(out[i], expected[i]);
    for (size_t i = 0; i < n && i < 32; i++)
        wref_xdecref(out[i]);
}

/* get_ref on a weakref that must be dead: 0, NULL written, no error. */
static inline void assert_ref_dead(wref_object *ref)
{
    wref_object *o = (wref_object *)(uintptr_t)0x1;   /* must be overwritten */
    assert_int_equal(wref_get_ref(ref, &o), 0);
    assert_null(o);
    assert_no_error();
    assert_ptr_equal(wref_get_object_unchecked(ref), wref_none());
}

/* get_ref on a weakref that must be live and point to expect: 1, new reference. */
static inline void assert_ref_live(wref_object *ref, wref_object *expect)
{
    wref_object *o = NULL;
    intptr_t rc = wref_refcount(expect);
    assert_int_equal(wref_get_ref(ref, &o), 1);
    assert_ptr_equal(o, expect);
    assert_int_equal(wref_refcount(expect), rc + 1);
    wref_decref(o);
    assert_int_equal(wref_refcount(expect), rc);
    assert_no_error();
}

#endif /* WREF_TESTS_SUPPORT_H */
