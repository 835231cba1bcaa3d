/* test_poison.c: unit tests of the poison pointers (src/check/engine/poison.h) through their
 * contract: a poisoned object's words name its record (by value and by fault address), its
 * slot is found again from its record whatever the program wrote over it, an object with no
 * slot is 0xDD only, a released slot is free again, and finding an object's slot costs the
 * same with 16 slots in use as with every one of them in use (no scan of the slots, issue 10:
 * "no linear scans on every create/destroy").
 *
 * Like test_heap, the executable is a checked program (checker_modules.cmake): every checker
 * source is linked in, compiled as libwref-check is, and the tests call poison.h directly on
 * memory of their own, with records made through the registry. CTest sets poison_slots (in
 * WREF_CHECK_OPTIONS) to POISON_SLOTS below. */
#include "check/engine/checker.h"
#include "check/engine/options.h"
#include "check/engine/poison.h"
#include "check/engine/registry.h"

#include <wref.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "best_cpu.h"

#define POISON_SLOTS 65536   /* the ctest environment's poison_slots */

static const wref_type unit_type = {.name = "PoisonUnit", .size = 32};

static wref__rec *freed_rec(const void *ob, uint32_t size)
{
    wref__rec *r = wref__registry_add((uintptr_t)ob, &unit_type, size);
    assert_non_null(r);
    __atomic_store_n(&r->state, WREF__FREED, __ATOMIC_RELEASE);
    return r;
}

static int setup(void **state)
{
    (void)state;
    wref__checker_init();
    assert_int_equal(wref__opt.poison_slots, POISON_SLOTS);
    return 0;
}

/* Every aligned word of a poisoned object holds the poison pointer; every other byte 0xDD. */
static void assert_poisoned_with(const unsigned char *ob, size_t size, uintptr_t v)
{
    for (size_t i = 0; i < size; i++) {
        if (i % sizeof v == 0 && i + sizeof v <= size) {
            uintptr_t w;
            memcpy(&w, ob + i, sizeof w);
            assert_int_equal(w, v);
            i += sizeof v - 1;
        } else {
            assert_int_equal(ob[i], WREF__POISON_BYTE);
        }
    }
}

/* The poison names its record and object; overwritten word by word, down to the last, the
 * object still has its slot (found from the record, not from its memory): check names the
 * first changed byte, release frees that very slot (the next fill gets it: the free list is
 * LIFO) and then nothing leads to the record any more. */
static void slot_found_whatever_the_words(void **state)
{
    (void)state;
    _Alignas(32) static unsigned char ob[64];
    wref__rec *r = freed_rec(ob, sizeof ob);
    assert_true(wref__poison_fill(ob, sizeof ob, r));
    uintptr_t v = wref__poison_value(ob, r);
    assert_int_not_equal(v, 0);
    assert_poisoned_with(ob, sizeof ob, v);
    assert_int_equal(wref__poison_check(ob, sizeof ob, r), -1);
    uintptr_t obj = 0;
    assert_ptr_equal(wref__poison_find(v, &obj), r);   /* the fault handler's lookup */
    assert_int_equal(obj, (uintptr_t)ob);
    assert_ptr_equal(wref__poison_find(v - WREF__POISON_BIAS, &obj), r);   /* a field before it */

    for (size_t w = 0; w < sizeof ob / sizeof v; w++) {
        memset(ob + w * sizeof v, 0x11, sizeof v);   /* the program writes over the words */
        assert_int_equal(wref__poison_value(ob, r), v);
        assert_int_equal(wref__poison_check(ob, sizeof ob, r), 0);
        assert_ptr_equal(wref__poison_find(v, &obj), r);
    }

    wref__poison_release(r);
    assert_null(wref__poison_find(v, &obj));
    assert_int_equal(wref__poison_value(ob, r), 0);
    wref__poison_release(r);   /* a second release frees nothing (the slot is not r's) */

    _Alignas(32) static unsigned char ob2[24];
    wref__rec *r2 = freed_rec(ob2, sizeof ob2);
    assert_true(wref__poison_fill(ob2, sizeof ob2, r2));
    assert_int_equal(wref__poison_value(ob2, r2), v);   /* the slot r left */
    assert_int_equal(wref__poison_value(ob, r), 0);    /* and r still has none */
    assert_poisoned_with(ob2, sizeof ob2, v);
    wref__poison_release(r2);
    assert_null(wref__poison_find(v, &obj));
}

/* An object with no aligned word, or with no record, gets no slot: it is 0xDD only, and a
 * changed byte is found; its release frees no slot. */
static void no_slot_is_plain(void **state)
{
    (void)state;
    _Alignas(32) static unsigned char tiny[16];
    wref__rec *r = freed_rec(tiny + 1, 6);   /* 6 bytes, no aligned word inside */
    assert_true(wref__poison_fill(tiny + 1, 6, r));
    assert_int_equal(wref__poison_value(tiny + 1, r), 0);
    for (int i = 1; i < 7; i++)
        assert_int_equal(tiny[i], WREF__POISON_BYTE);
    assert_int_equal(wref__poison_check(tiny + 1, 6, r), -1);
    tiny[5] = 0;
    assert_int_equal(wref__poison_check(tiny + 1, 6, r), 4);
    wref__poison_release(r);

    _Alignas(32) static unsigned char anon[40];
    assert_true(wref__poison_fill(anon, sizeof anon, NULL));
    for (size_t i = 0; i < sizeof anon; i++)
        assert_int_equal(anon[i], WREF__POISON_BYTE);
    assert_int_equal(wref__poison_check(anon, sizeof anon, NULL), -1);
    anon[39] = 1;
    assert_int_equal(wref__poison_check(anon, sizeof anon, NULL), 39);
}

/* `reps` rounds of slot lookups (check and value) on each object of a set of probes. */
struct probe {
    unsigned char *ob;
    size_t size;
    wref__rec *rec;
    long want_check;   /* what wref__poison_check must say */
};

struct lookups {
    const struct probe *p;
    size_t n;
    int reps;
};

static void lookup_rounds(void *ctx)
{
    const struct lookups *l = ctx;
    for (int i = 0; i < l->reps; i++)
        for (size_t j = 0; j < l->n; j++) {
            const struct probe *p = &l->p[j];
            if (wref__poison_check(p->ob, p->size, p->rec) != p->want_check)
                fail_msg("probe %zu: wref__poison_check is not %ld", j, p->want_check);
            if (wref__poison_value(p->ob, p->rec) != 0 && p->want_check != 0)
                fail_msg("probe %zu: a slot for an object that has none", j);
        }
}

static double lookup_ns(const struct probe *p, size_t n, int reps)
{
    struct lookups l = {p, n, reps};
    return best_cpu_ns(lookup_rounds, &l);
}

/* Finding an object's slot is O(1) in every case: a slot-holding object with every word
 * overwritten, an object too small for one, and one that found every slot taken. The same
 * lookups, timed (thread CPU time, the best of 5) with 16 slots in use and then with all
 * POISON_SLOTS in use, cost about the same; a scan of the used slots would make the second
 * thousands of times slower. Runs first: no other test has used slots yet. */
static void slot_lookup_cost_does_not_grow(void **state)
{
    (void)state;
    enum { FEW = 16, REPS = 1000 };
    size_t sz = 32;   /* one registry granule per record */
    unsigned char *mem = aligned_alloc(32, (size_t)(POISON_SLOTS + 2) * sz);
    assert_non_null(mem);
    wref__rec **recs = calloc(POISON_SLOTS + 2, sizeof *recs);
    assert_non_null(recs);

    /* an object with a slot, every word then overwritten: check says byte 0 */
    recs[0] = freed_rec(mem, (uint32_t)sz);
    assert_true(wref__poison_fill(mem, sz, recs[0]));
    uintptr_t v0 = wref__poison_value(mem, recs[0]);
    assert_int_not_equal(v0, 0);
    memset(mem, 0x11, sz);
    /* an object with no aligned word: no slot */
    recs[1] = freed_rec(mem + sz + 1, 5);
    assert_true(wref__poison_fill(mem + sz + 1, 5, recs[1]));
    size_t used = 1;
    for (size_t k = 2; used < FEW; k++, used++) {
        recs[k] = freed_rec(mem + k * sz, (uint32_t)sz);
        assert_true(wref__poison_fill(mem + k * sz, sz, recs[k]));
    }
    /* the same work as the third probe below (32 bytes of 0xDD compared), with no record */
    _Alignas(32) static unsigned char plain[32];
    assert_true(wref__poison_fill(plain, sizeof plain, NULL));
    struct probe few[3] = {{mem, sz, recs[0], 0}, {mem + sz + 1, 5, recs[1], -1}, {plain, sizeof plain, NULL, -1}};
    double t_few = lookup_ns(few, 3, REPS);

    /* every slot in use, then one more object: it gets none */
    size_t k = FEW + 1;
    for (; used < POISON_SLOTS; k++, used++) {
        recs[k] = freed_rec(mem + k * sz, (uint32_t)sz);
        assert_true(wref__poison_fill(mem + k * sz, sz, recs[k]));
    }
    recs[k] = freed_rec(mem + k * sz, (uint32_t)sz);
    assert_false(wref__poison_fill(mem + k * sz, sz, recs[k]));   /* all taken: 0xDD only */
    assert_int_equal(wref__poison_value(mem + k * sz, recs[k]), 0);
    struct probe all[3] = {{mem, sz, recs[0], 0}, {mem + sz + 1, 5, recs[1], -1}, {mem + k * sz, sz, recs[k], -1}};
    double t_all = lookup_ns(all, 3, REPS);
    print_message("slot lookups, %d each: %.0f ns with %d slots in use, %.0f ns with %d\n", 3 * REPS, t_few, FEW,
                  t_all, POISON_SLOTS);
    /* generous: cache misses in a larger table, timer noise; a scan would be >1000x */
    assert_true(t_all <= 4 * t_few + 2e6);

    /* the overwritten object's release frees its slot: the full table has room for one */
    wref__poison_release(recs[0]);
    assert_true(wref__poison_fill(mem + k * sz, sz, recs[k]));
    assert_int_equal(wref__poison_value(mem + k * sz, recs[k]), v0);
    for (size_t i = 0; i <= k; i++)
        wref__poison_release(recs[i]);
    uintptr_t obj;
    assert_null(wref__poison_find(v0, &obj));
    free(recs);
    free(mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(slot_lookup_cost_does_not_grow, setup),
        cmocka_unit_test_setup(slot_found_whatever_the_words, setup),
        cmocka_unit_test_setup(no_slot_is_plain, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
