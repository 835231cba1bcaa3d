/* test_addrmap.c: unit tests of the engine's radix map (src/check/engine/addrmap.h) through
 * its contract: a value set for an address is what get and take return, take empties the
 * entry, neighbouring granules and addresses in other leaves and directory ranges are
 * independent, addresses the map does not cover are refused (nothing stored), count counts
 * what is set, and threads setting and taking distinct addresses at once (the first sets of a
 * range racing to create its levels) lose nothing. The module is compiled in directly. */
#include "check/engine/addrmap.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void empty_map_has_nothing(void **state)
{
    (void)state;
    wref__addrmap m = {0};
    assert_int_equal(wref__addrmap_get(&m, 0x10000), 0);
    assert_int_equal(wref__addrmap_take(&m, 0x10000), 0);
    assert_int_equal(wref__addrmap_count(&m), 0);
}

static void set_get_take(void **state)
{
    (void)state;
    wref__addrmap m = {0};
    uintptr_t a = 0x7f1234567890;
    assert_true(wref__addrmap_set(&m, a, 7));
    assert_int_equal(wref__addrmap_get(&m, a), 7);
    assert_int_equal(wref__addrmap_get(&m, a + 16), 0);   /* the next granule is its own */
    assert_int_equal(wref__addrmap_get(&m, a - 16), 0);
    assert_true(wref__addrmap_set(&m, a, 0xffffffffu));   /* a set replaces */
    assert_int_equal(wref__addrmap_get(&m, a), 0xffffffffu);
    assert_int_equal(wref__addrmap_count(&m), 1);
    assert_int_equal(wref__addrmap_take(&m, a), 0xffffffffu);
    assert_int_equal(wref__addrmap_get(&m, a), 0);
    assert_int_equal(wref__addrmap_take(&m, a), 0);
    assert_int_equal(wref__addrmap_count(&m), 0);
}

static void ranges_are_independent(void **state)
{
    (void)state;
    wref__addrmap m = {0};
    /* the edges of a leaf (64 KiB), of a middle level (4 GiB) and of the covered space */
    const uintptr_t a[] = {0x10, 0xfff0, 0x10000, 0xfffffff0, 0x100000000, 0x7ffffffffff0, 0xfffffffffff0,
                           0x123400000000, 0x123500000000};
    const size_t n = sizeof a / sizeof a[0];
    for (size_t i = 0; i < n; i++)
        assert_true(wref__addrmap_set(&m, a[i], (uint32_t)i + 1));
    assert_int_equal(wref__addrmap_count(&m), n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(wref__addrmap_get(&m, a[i]), i + 1);
    for (size_t i = 0; i < n; i += 2)
        assert_int_equal(wref__addrmap_take(&m, a[i]), i + 1);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(wref__addrmap_get(&m, a[i]), i % 2 ? i + 1 : 0);
    assert_int_equal(wref__addrmap_count(&m), n / 2);
}

static void uncovered_addresses_are_refused(void **state)
{
    (void)state;
    wref__addrmap m = {0};
    const uintptr_t bad[] = {0, 0x10008, 0x10001, (uintptr_t)1 << 48, UINTPTR_MAX & ~(uintptr_t)15};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(wref__addrmap_covers(bad[i]));
        assert_false(wref__addrmap_set(&m, bad[i], 5));
        assert_int_equal(wref__addrmap_get(&m, bad[i]), 0);
        assert_int_equal(wref__addrmap_take(&m, bad[i]), 0);
    }
    assert_int_equal(wref__addrmap_count(&m), 0);
    /* an uncovered address does not alias a covered one (the bits above 47 are not dropped) */
    assert_true(wref__addrmap_set(&m, 0x10000, 9));
    assert_int_equal(wref__addrmap_get(&m, ((uintptr_t)1 << 48) | 0x10000), 0);
}

#define THREADS 4
#define PER_THREAD 20000

static wref__addrmap shared;

/* Thread t owns the granules i * THREADS + t: its neighbours are other threads' (the same
 * leaves, the same cache lines), and the ranges are new to every thread at once. */
static uintptr_t shared_addr(size_t t, size_t i)
{
    return (uintptr_t)0x5a0000000000 + ((i * THREADS + t) << 4) * 7;   /* spans many leaves */
}

static void *churn(void *arg)
{
    size_t t = (size_t)arg;
    for (size_t i = 0; i < PER_THREAD; i++)
        if (!wref__addrmap_set(&shared, shared_addr(t, i), (uint32_t)(t << 24 | i) + 1))
            return (void *)1;
    for (size_t i = 0; i < PER_THREAD; i += 2)   /* take every other one back */
        if (wref__addrmap_take(&shared, shared_addr(t, i)) != (uint32_t)(t << 24 | i) + 1)
            return (void *)2;
    return NULL;
}

static void threads_lose_nothing(void **state)
{
    (void)state;
    pthread_t th[THREADS];
    for (size_t t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, churn, (void *)t), 0);
    for (size_t t = 0; t < THREADS; t++) {
        void *rc;
        assert_int_equal(pthread_join(th[t], &rc), 0);
        assert_null(rc);
    }
    for (size_t t = 0; t < THREADS; t++)
        for (size_t i = 0; i < PER_THREAD; i++)
            assert_int_equal(wref__addrmap_get(&shared, shared_addr(t, i)), i % 2 ? (uint32_t)(t << 24 | i) + 1 : 0);
    assert_int_equal(wref__addrmap_count(&shared), THREADS * PER_THREAD / 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_map_has_nothing),
        cmocka_unit_test(set_get_take),
        cmocka_unit_test(ranges_are_independent),
        cmocka_unit_test(uncovered_addresses_are_refused),
        cmocka_unit_test(threads_lose_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
