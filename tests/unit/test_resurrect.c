/* test_resurrect.c: what the checker's record keeps when finalize resurrects an object (issue
 * 10: "resurrected no longer overwrites the destroyed fields").
 *
 * A checked program built as test_heap is (checker_modules.cmake): the runtime and every
 * checker source linked in, the public API running the real hooks, the record read through
 * the registry (registry.h). */
#include "check/engine/checker.h"
#include "check/engine/registry.h"
#include "check/wref/hooks.h"

#include <wref.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

static wref_object *g_saved;   /* where finalize puts its resurrected object */

static void resurrect_finalize(wref_object *self)
{
    wref_incref(self);   /* a new reference: alive again */
    g_saved = self;
}

static const wref_type phoenix_type = {.name = "Phoenix", .size = 48, .flags = WREF_TYPE_WEAKREFABLE,
                                       .finalize = resurrect_finalize};

static int setup(void **state)
{
    (void)state;
    wref__checker_init();
    return 0;
}

/* The drop to 0 that finalize undid stays the record's "destroyed" history (its stack and
 * thread); only the state goes back to alive. The object then lives on as any other. */
static void resurrection_keeps_the_destroyed_history(void **state)
{
    (void)state;
    wref_object *ob = wref_new(&phoenix_type);
    assert_non_null(ob);
    wref__rec *r = wref__registry_peek(ob);
    assert_non_null(r);
    assert_int_equal(r->st_destroyed, 0);
    g_saved = NULL;
    wref_decref(ob);   /* finalize resurrects it */
    assert_ptr_equal(g_saved, ob);
    assert_ptr_equal(wref__registry_peek(ob), r);
    assert_int_equal(__atomic_load_n(&r->state, __ATOMIC_ACQUIRE), WREF__ALIVE);
    assert_int_not_equal(r->st_destroyed, 0);   /* the stack of the drop that finalize undid */
    assert_int_equal(r->tno_destroyed, wref__thread_no());
    wref_decref(ob);   /* finalize ran once: it dies now, into the quarantine */
    assert_ptr_equal(wref__registry_peek(ob), r);
    assert_int_equal(__atomic_load_n(&r->state, __ATOMIC_ACQUIRE), WREF__FREED);
}

/* A late resurrected hook (the runtime calls it after its count decrement) on a record that
 * another thread has meanwhile taken on to destruction leaves it there: only a FINALIZING
 * record goes back to ALIVE. */
static void resurrected_only_while_finalizing(void **state)
{
    (void)state;
    wref_object *ob = wref_new(&phoenix_type);
    assert_non_null(ob);
    wref__rec *r = wref__registry_peek(ob);
    assert_non_null(r);
    static const uint8_t later[] = {WREF__CLEARING, WREF__DESTROYING, WREF__FREED};
    for (size_t i = 0; i < sizeof later; i++) {
        __atomic_store_n(&r->state, later[i], __ATOMIC_RELEASE);
        wref__hook_resurrected(ob);
        assert_int_equal(__atomic_load_n(&r->state, __ATOMIC_ACQUIRE), later[i]);
    }
    __atomic_store_n(&r->state, (uint8_t)WREF__FINALIZING, __ATOMIC_RELEASE);
    wref__hook_resurrected(ob);
    assert_int_equal(__atomic_load_n(&r->state, __ATOMIC_ACQUIRE), WREF__ALIVE);
    /* leave it as it was, and let it die through finalize's resurrection and a second drop */
    g_saved = NULL;
    wref_decref(ob);
    assert_ptr_equal(g_saved, ob);
    wref_decref(ob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(resurrection_keeps_the_destroyed_history, setup),
        cmocka_unit_test_setup(resurrected_only_while_finalizing, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
