/* test_deep_chain.c: deep ownership chains are destroyed iteratively (wref.h: "Deep ownership
 * chains are destroyed iteratively, never by unbounded recursion").
 *
 * A chain of 1,000,000 objects where each one's destroy() drops the next: dropping the head
 * must destroy every object exactly once without overflowing the (default 8 MiB) stack.
 * WREF_CHAIN_LENGTH overrides the length. */
#include "support.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static struct counting_alloc g_alloc = {.fail_at = -1};

static long chain_length(void)
{
    const char *s = getenv("WREF_CHAIN_LENGTH");
    long n = s ? strtol(s, NULL, 10) : 0;
    return n > 0 ? n : 1000000;
}

static struct unraisable_log g_unr;

static int setup(void **state)
{
    (void)state;
    memset(&g_unr, 0, sizeof g_unr);
    wref_set_unraisable_hook(unraisable_recorder, &g_unr);
    wref_err_clear();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    wref_set_unraisable_hook(NULL, NULL);
    return 0;
}

/* Builds node[n-1] .. node[0], each owning the next; returns the head (the only reference). */
static wref_object *build_chain(long n, const wref_type *type, int *destroyed)
{
    wref_object *next = NULL;
    for (long i = n - 1; i >= 0; i--) {
        wref_object *o = wref_new(type);
        assert_non_null(o);
        W(o)->id = (int)i;
        W(o)->destroyed = destroyed;
        W(o)->owned = next;
        next = o;
    }
    return next;
}

static void deep_chain_1m_destroyed_without_recursion(void **state)
{
    (void)state;
    long n = chain_length();
    int destroyed = 0;
    wref_object *head = build_chain(n, &widget_type, &destroyed);
    wref_decref(head);
    assert_int_equal(destroyed, n);
    assert_no_error();
}

/* Same with a finalizer on every node (finalize runs once per node, in the deferred path too). */
static void deep_chain_1m_with_finalizers(void **state)
{
    (void)state;
    long n = chain_length();
    int destroyed = 0, finalized = 0;
    wref_object *next = NULL;
    for (long i = n - 1; i >= 0; i--) {
        wref_object *o = wref_new(&finwidget_type);
        assert_non_null(o);
        W(o)->destroyed = &destroyed;
        W(o)->finalized = &finalized;
        W(o)->owned = next;
        next = o;
    }
    wref_decref(next);
    assert_int_equal(finalized, n);
    assert_int_equal(destroyed, n);
    assert_no_error();
}

/* Every node has a canonical weakref held by the test: all end up dead. */
static void deep_chain_with_weakrefs_all_dead(void **state)
{
    (void)state;
    long n = chain_length() / 4;
    int destroyed = 0;
    wref_object **refs = calloc((size_t)n, sizeof *refs);
    assert_non_null(refs);
    wref_object *next = NULL;
    for (long i = n - 1; i >= 0; i--) {
        wref_object *o = wref_new(&widget_type);
        assert_non_null(o);
        W(o)->destroyed = &destroyed;
        W(o)->owned = next;
        refs[i] = wref_ref_new(o, NULL);
        assert_non_null(refs[i]);
        next = o;
    }
    wref_decref(next);
    assert_int_equal(destroyed, n);
    for (long i = 0; i < n; i++) {
        wref_object *o = (wref_object *)(uintptr_t)1;
        assert_int_equal(wref_get_ref(refs[i], &o), 0);
        assert_null(o);
        wref_decref(refs[i]);
    }
    free(refs);
}

/* Every node has a weakref with a callback that allocates a new object and drops it; the
 * weakrefs are held by the test so every callback runs exactly once. */
struct alloc_cb_state {
    int calls;
    int temp_destroyed;
    int failures;
};

static int alloc_and_drop_cb(wref_object *weakref, void *data)
{
    struct alloc_cb_state *s = data;
    s->calls++;
    wref_object *o = NULL;
    if (wref_get_ref(weakref, &o) != 0 || o != NULL)
        s->failures++;
    wref_object *t = wref_new(&widget_type);
    if (!t)
        return -1;
    W(t)->destroyed = &s->temp_destroyed;
    /* a weakref to the temporary too, so its clearing runs nested in a callback */
    wref_object *tr = wref_ref_new(t, NULL);
    wref_decref(t);
    if (!tr || wref_get_ref(tr, &o) != 0)
        s->failures++;
    wref_xdecref(tr);
    return 0;
}

static void deep_chain_callbacks_allocate_and_drop(void **state)
{
    (void)state;
    long n = chain_length() / 4;
    int destroyed = 0;
    struct alloc_cb_state s = {0};
    wref_object *cb = wref_callback_new(alloc_and_drop_cb, &s, NULL);
    assert_non_null(cb);
    wref_object **refs = calloc((size_t)n, sizeof *refs);
    assert_non_null(refs);
    wref_object *next = NULL;
    for (long i = n - 1; i >= 0; i--) {
        wref_object *o = wref_new(&widget_type);
        assert_non_null(o);
        W(o)->destroyed = &destroyed;
        W(o)->owned = next;
        refs[i] = wref_ref_new(o, cb);
        assert_non_null(refs[i]);
        next = o;
    }
    wref_decref(next);
    assert_int_equal(destroyed, n);
    assert_int_equal(s.calls, n);
    assert_int_equal(s.temp_destroyed, n);
    assert_int_equal(s.failures, 0);
    assert_int_equal(g_unr.n, 0);
    assert_no_error();
    for (long i = 0; i < n; i++)
        wref_decref(refs[i]);
    free(refs);
    wref_decref(cb);
}

/* A chain built through callback objects: each callback's release() drops the next object,
 * so destruction alternates between user objects and callback objects. */
static void release_next(void *data) { wref_xdecref((wref_object *)data); }
static int noop_cb(wref_object *w, void *d) { (void)w; (void)d; return 0; }

static void deep_chain_through_callback_release(void **state)
{
    (void)state;
    long n = chain_length() / 2;
    int destroyed = 0;
    wref_object *next = NULL;
    for (long i = n - 1; i >= 0; i--) {
        wref_object *c = wref_callback_new(noop_cb, next, release_next);
        assert_non_null(c);
        wref_object *o = wref_new(&widget_type);
        assert_non_null(o);
        W(o)->destroyed = &destroyed;
        W(o)->owned = c;
        next = o;
    }
    wref_decref(next);
    assert_int_equal(destroyed, n);
    assert_no_error();
}

/* Iterative destruction must not depend on being able to allocate: with every allocation
 * failing from just before the drop (api.md: any allocation may fail; wref.h: deep chains are
 * "never" destroyed by unbounded recursion), the 1,000,000-object chain is still destroyed
 * without overflowing the stack. Run in a child process so a crash is a failure, not the end
 * of the test program. */
static void deep_chain_1m_while_every_allocation_fails(void **state)
{
    (void)state;
    long n = chain_length();
    int destroyed = 0;
    wref_object *head = build_chain(n, &widget_type, &destroyed);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        __atomic_store_n(&g_alloc.fail_all, 1, __ATOMIC_RELAXED);
        wref_decref(head);
        __atomic_store_n(&g_alloc.fail_all, 0, __ATOMIC_RELAXED);
        _exit(destroyed == n && wref_err_occurred() == WREF_OK && live_count(&g_alloc) == 0 ? 0 : 3);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status))
        print_error("child died with signal %d (stack overflow: recursion when the trash stack "
                    "could not grow?)\n", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    wref_decref(head);   /* the parent's copy */
    assert_int_equal(destroyed, n);
    assert_int_equal(live_count(&g_alloc), 0);
}

/* The same where the deferred-destruction stack itself must grow: a chain of 200 "bags",
 * each owning 39 leaves and the next bag, the last bag owning the head of a 1,000,000-object
 * chain. Whatever the nesting limit and the size of a fixed deferral area, the leaves released
 * deep in the nesting fill it, so the rest can only be deferred by growing it; with every
 * allocation failing the runtime must still not recurse once per chain element. Run in a
 * child process. */
struct bag {
    wref_object ob;
    int *destroyed;
    wref_object *items[40];
};

static void bag_destroy(wref_object *self)
{
    struct bag *b = (struct bag *)self;
    (*b->destroyed)++;
    for (int i = 0; i < 40; i++) {
        wref_object *o = b->items[i];
        b->items[i] = NULL;
        wref_xdecref(o);
    }
}

static const wref_type bag_type = {"Bag", sizeof(struct bag), 0, NULL, bag_destroy, NULL, NULL};

static void deep_chain_behind_wide_node_while_every_allocation_fails(void **state)
{
    (void)state;
    long n = chain_length();
    int destroyed = 0;
    wref_object *head = build_chain(n, &widget_type, &destroyed);
    for (int level = 0; level < 200; level++) {
        wref_object *bag = wref_new(&bag_type);
        assert_non_null(bag);
        ((struct bag *)bag)->destroyed = &destroyed;
        for (int i = 0; i < 39; i++) {
            wref_object *leaf = new_obj(&widget_type);
            W(leaf)->destroyed = &destroyed;
            ((struct bag *)bag)->items[i] = leaf;
        }
        ((struct bag *)bag)->items[39] = head;
        head = bag;
    }
    long total = n + 200 * 40;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        __atomic_store_n(&g_alloc.fail_all, 1, __ATOMIC_RELAXED);
        wref_decref(head);
        __atomic_store_n(&g_alloc.fail_all, 0, __ATOMIC_RELAXED);
        _exit(destroyed == total && live_count(&g_alloc) == 0 ? 0 : 3);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status))
        print_error("child died with signal %d (stack overflow: recursion when the deferral "
                    "stack could not grow?)\n", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* without failures (the parent's copy) */
    wref_decref(head);
    assert_int_equal(destroyed, total);
    assert_int_equal(live_count(&g_alloc), 0);
}

int main(void)
{
    wref_allocator a = counting_allocator(&g_alloc);
    if (wref_set_allocator(&a) != 0) {
        fprintf(stderr, "wref_set_allocator failed before any object existed\n");
        return 1;
    }
    /* Make the test meaningful even where the default stack is unlimited. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_STACK, &rl) == 0 && (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (8u << 20))) {
        rl.rlim_cur = 8u << 20;
        setrlimit(RLIMIT_STACK, &rl);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(deep_chain_1m_destroyed_without_recursion, setup, teardown),
        cmocka_unit_test_setup_teardown(deep_chain_1m_with_finalizers, setup, teardown),
        cmocka_unit_test_setup_teardown(deep_chain_with_weakrefs_all_dead, setup, teardown),
        cmocka_unit_test_setup_teardown(deep_chain_callbacks_allocate_and_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(deep_chain_through_callback_release, setup, teardown),
        cmocka_unit_test_setup_teardown(deep_chain_1m_while_every_allocation_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(deep_chain_behind_wide_node_while_every_allocation_fails, setup, teardown),
    };
    return cmocka_run_group_tests_name("deep_chain", tests, NULL, NULL);
}
