/* test_known.c: unit tests of the CPython frontend's per-thread cache of objects known
 * borrowed at the thread's last site (src/check/python/known.h), through its contract: an
 * entered object is known only at that site and for those counters; a new site, other stacks,
 * another thread number or other counters drop every entry; setting the same site again keeps
 * them; objects under keys 16 bytes apart are both known, and two of one key's set, a third
 * dropping the older; the set is the key's, not the object's; an address at or above 2^48 is never known;
 * 65535 epochs later an old entry is not known again (the wrap clears the table); a key without
 * a Python frame sets nothing; each thread has its own table, freed at its exit (LeakSanitizer
 * checks that in the ASan tree). The module is compiled in directly. */
#include "check/python/known.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static const wref__py_site_key site_a = {0x401000, 0x7f0000001000, 0x7f0000001040};
static const wref__py_site_key site_b = {0x401000, 0x7f0000001000, 0x7f0000001048};   /* another line */
static const uintptr_t obj = 0x7f1234567890;
static const uintptr_t same_set = (uintptr_t)1 << 28;   /* obj + k * same_set: obj's set */

/* This thread's cache at site_a with counters (2, 5), obj entered. */
static wref__py_last *at_a_with_obj(void)
{
    wref__py_last *l = &wref__py_last_borrow;
    assert_true(wref__py_last_set(l, site_a, 11, 3, 2, 5));
    wref__py_known_enter(l, obj, obj);
    assert_true(wref__py_last_at(l, site_a));
    assert_true(wref__py_known_has(l, obj, obj, 2, 5));
    return l;
}

static void entered_is_known_for_its_counters_only(void **state)
{
    (void)state;
    wref__py_last *l = at_a_with_obj();
    assert_false(wref__py_last_at(l, site_b));
    assert_false(wref__py_known_has(l, obj + same_set, obj + same_set, 2, 5));   /* the same set, not the object */
    assert_false(wref__py_known_has(l, obj, obj, 4, 5));   /* a record was unlinked since */
    assert_false(wref__py_known_has(l, obj, obj, 2, 6));   /* a record's borrow changed since */
    assert_false(wref__py_known_has(l, obj, obj, 3, 5));   /* a change under way */
}

static void same_site_again_keeps_entries(void **state)
{
    (void)state;
    wref__py_last *l = at_a_with_obj();
    assert_true(wref__py_last_set(l, site_a, 11, 3, 2, 5));
    assert_true(wref__py_known_has(l, obj, obj, 2, 5));
}

static void another_site_stacks_thread_or_counters_drop_entries(void **state)
{
    (void)state;
    wref__py_last *l = at_a_with_obj();
    assert_true(wref__py_last_set(l, site_b, 11, 3, 2, 5));
    assert_true(wref__py_last_at(l, site_b));
    assert_false(wref__py_known_has(l, obj, obj, 2, 5));

    l = at_a_with_obj();
    assert_true(wref__py_last_set(l, site_a, 12, 3, 2, 5));   /* other stacks */
    assert_false(wref__py_known_has(l, obj, obj, 2, 5));

    l = at_a_with_obj();
    assert_true(wref__py_last_set(l, site_a, 11, 4, 2, 5));   /* another thread number */
    assert_false(wref__py_known_has(l, obj, obj, 2, 5));

    l = at_a_with_obj();
    assert_true(wref__py_last_set(l, site_a, 11, 3, 2, 6));   /* other counters */
    assert_false(wref__py_known_has(l, obj, obj, 2, 6));

    l = at_a_with_obj();
    wref__py_known_epoch(l, 4, 5);
    assert_false(wref__py_known_has(l, obj, obj, 4, 5));
    assert_true(wref__py_last_at(l, site_a));
}

static void neighbours_are_both_known(void **state)
{
    (void)state;
    wref__py_last *l = at_a_with_obj();
    for (uintptr_t a = obj + 16; a < obj + 16 * 64; a += 16)
        wref__py_known_enter(l, a, a);
    for (uintptr_t a = obj; a < obj + 16 * 64; a += 16)
        assert_true(wref__py_known_has(l, a, a, 2, 5));
}

static void two_objects_of_one_set_are_both_known_a_third_drops_the_oldest(void **state)
{
    (void)state;
    wref__py_last *l = at_a_with_obj();
    wref__py_known_enter(l, obj + same_set, obj + same_set);
    assert_true(wref__py_known_has(l, obj, obj, 2, 5));
    assert_true(wref__py_known_has(l, obj + same_set, obj + same_set, 2, 5));
    wref__py_known_enter(l, obj, obj);   /* known already: no reordering */
    wref__py_known_enter(l, obj + 2 * same_set, obj + 2 * same_set);
    assert_false(wref__py_known_has(l, obj, obj, 2, 5));
    assert_true(wref__py_known_has(l, obj + same_set, obj + same_set, 2, 5));
    assert_true(wref__py_known_has(l, obj + 2 * same_set, obj + 2 * same_set, 2, 5));
}

static void the_set_is_the_keys(void **state)
{
    (void)state;
    wref__py_last *l = at_a_with_obj();
    uintptr_t ref = 0x7f5555550000, other = 0x7f5555550010;   /* distinct sets */
    wref__py_known_enter(l, ref, obj + 64);
    assert_true(wref__py_known_has(l, ref, obj + 64, 2, 5));
    assert_false(wref__py_known_has(l, other, obj + 64, 2, 5));
    assert_false(wref__py_known_has(l, ref, obj + 128, 2, 5));
}

static void high_addresses_are_never_known(void **state)
{
    (void)state;
    wref__py_last *l = at_a_with_obj();
    uintptr_t high = (uintptr_t)1 << WREF__PY_KNOWN_SHIFT | obj;   /* obj's set, obj's low bits */
    /* Two epochs in a row: in the odd one, obj's entry is obj | high's top bit. */
    for (int i = 0; i < 2; i++) {
        wref__py_known_epoch(l, 2, 5);
        wref__py_known_enter(l, obj, obj);
        wref__py_known_enter(l, high, high);
        assert_false(wref__py_known_has(l, high, high, 2, 5));
        assert_true(wref__py_known_has(l, obj, obj, 2, 5));   /* its set's entries are untouched */
    }
}

static void an_old_entry_is_not_known_after_the_epoch_wraps(void **state)
{
    (void)state;
    wref__py_last *l = at_a_with_obj();
    /* Every epoch once: the tag then comes back to obj's, and only the clear keeps obj out. */
    for (unsigned i = 0; i < (1u << (64 - WREF__PY_KNOWN_SHIFT)) - 1; i++)
        wref__py_known_epoch(l, 2, 5);
    assert_false(wref__py_known_has(l, obj, obj, 2, 5));
    wref__py_known_enter(l, obj, obj);
    assert_true(wref__py_known_has(l, obj, obj, 2, 5));
}

static void a_key_without_python_frame_sets_nothing(void **state)
{
    (void)state;
    wref__py_last *l = at_a_with_obj();
    wref__py_site_key c_only = {0x402000, 0, 0};
    assert_false(wref__py_last_set(l, c_only, 11, 3, 2, 5));
    assert_false(wref__py_last_at(l, c_only));
    assert_true(wref__py_known_has(l, obj, obj, 2, 5));   /* l unchanged */
}

static void *thread_main(void *arg)
{
    wref__py_last *l = &wref__py_last_borrow;
    *(int *)arg = wref__py_last_at(l, site_a) ? 1 : 0;   /* the main thread's site is not ours */
    if (!wref__py_last_set(l, site_a, 11, 3, 2, 5))   /* no cmocka assertion off the main thread */
        return *(int *)arg |= 8, NULL;
    wref__py_known_enter(l, obj + 32, obj + 32);
    *(int *)arg |= wref__py_known_has(l, obj, obj, 2, 5) ? 2 : 0;   /* nor its entries */
    *(int *)arg |= wref__py_known_has(l, obj + 32, obj + 32, 2, 5) ? 0 : 4;
    return NULL;
}

static void each_thread_has_its_own_table(void **state)
{
    (void)state;
    wref__py_last *l = at_a_with_obj();
    for (int i = 0; i < 8; i++) {
        int wrong = -1;
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, thread_main, &wrong), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(wrong, 0);
    }
    assert_true(wref__py_known_has(l, obj, obj, 2, 5));
    assert_false(wref__py_known_has(l, obj + 32, obj + 32, 2, 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(entered_is_known_for_its_counters_only),
        cmocka_unit_test(same_site_again_keeps_entries),
        cmocka_unit_test(another_site_stacks_thread_or_counters_drop_entries),
        cmocka_unit_test(neighbours_are_both_known),
        cmocka_unit_test(two_objects_of_one_set_are_both_known_a_third_drops_the_oldest),
        cmocka_unit_test(the_set_is_the_keys),
        cmocka_unit_test(high_addresses_are_never_known),
        cmocka_unit_test(an_old_entry_is_not_known_after_the_epoch_wraps),
        cmocka_unit_test(a_key_without_python_frame_sets_nothing),
        cmocka_unit_test(each_thread_has_its_own_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
