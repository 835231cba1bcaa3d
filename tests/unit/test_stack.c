/* Unit tests for src/check/engine/stack.c: capture (frame pointers and libunwind) and the depot.
 * Compiled against the module sources (their symbols are hidden in libwref-check). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check/engine/stack.h"
#include "check/engine/stats.h"
#include "check/engine/symbolize.h"

/* noclone: gcc would otherwise name a specialized copy "recurse.constprop.0". */
#ifdef __clang__
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE __attribute__((noinline, noclone))
#endif
/* An empty asm after a call keeps the call from becoming a tail call (which would drop the
 * caller's frame). */
#define KEEP(x) __asm__ volatile("" : "+r"(x))
/* Distinct stores keep identical-code folding (gcc -fipa-icf) from merging look-alike
 * functions into one. */
static int sink;
#define MARK(v) __atomic_store_n(&sink, (v), __ATOMIC_RELAXED)

static NOINLINE wref__stack_id capture_in_leaf(unsigned skip)
{
    wref__stack_id id = wref__stack_capture(skip);
    KEEP(id);
    return id;
}

/* A call site of its own: a function `name` (params) that captures through `call`, so that
 * its return address makes a stack of its own; `mark` keeps it from being folded with the
 * others, `attrs` may build it without frame pointers. */
#define SITE(attrs, name, mark, params, call) \
    static NOINLINE attrs wref__stack_id name params \
    { \
        MARK(mark); \
        wref__stack_id id = call; \
        KEEP(id); \
        return id; \
    }
/* Built without frame pointers (as CMake's RelWithDebInfo builds by default): such a function
 * does not touch the frame-pointer register, so a plain frame-pointer walk from below it would
 * follow its caller's record and drop that caller from the stack without a trace. */
#define NO_FP __attribute__((optimize("omit-frame-pointer")))

SITE(, call_site_a, 1, (void), capture_in_leaf(0))
SITE(, call_site_b, 2, (void), capture_in_leaf(0))

static NOINLINE wref__stack_id recurse(int levels)
{
    wref__stack_id id = levels == 0 ? capture_in_leaf(0) : recurse(levels - 1);
    KEEP(id);
    return id;
}

static const char *function_at(uintptr_t pc)
{
    struct wref__frame_info fi;
    wref__symbolize(pc, &fi);
    return fi.function != NULL ? fi.function : "(unknown)";
}

static void test_id_zero_and_unknown(void **state)
{
    (void)state;
    const uintptr_t *pcs = (const uintptr_t *)1;
    assert_int_equal(wref__stack_get(0, &pcs), 0);
    assert_null(pcs);
    pcs = (const uintptr_t *)1;
    assert_int_equal(wref__stack_get(0x7fffffff, &pcs), 0);
    assert_null(pcs);
    assert_int_equal(wref__stack_get(0xffffffffu, &pcs), 0);
}

static void same_site_same_id(int fast)
{
    wref__stack_init(16, fast);
    wref__stack_id ids[3];
    for (volatile int i = 0; i < 3; i++) /* volatile: one call site, not unrolled */
        ids[i] = call_site_a();
    assert_int_not_equal(ids[0], 0);
    assert_int_equal(ids[0], ids[1]);
    assert_int_equal(ids[0], ids[2]);
}

static void test_same_stack_same_id_fp(void **state) { (void)state; same_site_same_id(1); }
static void test_same_stack_same_id_unwind(void **state) { (void)state; same_site_same_id(0); }

static void different_sites_different_ids(int fast)
{
    wref__stack_init(16, fast);
    wref__stack_id a = call_site_a(), b = call_site_b();
    assert_int_not_equal(a, 0);
    assert_int_not_equal(b, 0);
    assert_int_not_equal(a, b);
    const uintptr_t *pa, *pb;
    size_t na = wref__stack_get(a, &pa), nb = wref__stack_get(b, &pb);
    assert_true(na >= 2 && nb >= 2);
    assert_int_equal(pa[0], pb[0]);        /* same return address into capture_in_leaf */
    assert_int_not_equal(pa[1], pb[1]);    /* called from a, from b */
}

static void test_different_sites_fp(void **state) { (void)state; different_sites_different_ids(1); }
static void test_different_sites_unwind(void **state) { (void)state; different_sites_different_ids(0); }

static void depth_limit(int fast)
{
    const uintptr_t *pcs;
    wref__stack_init(3, fast);
    assert_int_equal(wref__stack_get(recurse(10), &pcs), 3);
    wref__stack_init(0, fast); /* clamps to 1 */
    assert_int_equal(wref__stack_get(recurse(10), &pcs), 1);
    wref__stack_init(1000, fast); /* clamps to 64 */
    assert_int_equal(wref__stack_get(recurse(100), &pcs), WREF__STACK_MAX_DEPTH);
    /* Below the limit, every frame is kept. */
    wref__stack_init(16, fast);
    size_t n = wref__stack_get(recurse(5), &pcs);
    assert_true(n >= 8); /* capture_in_leaf, 6 x recurse, test function */
    assert_string_equal(function_at(pcs[0]), "capture_in_leaf");
    for (size_t i = 1; i < 7; i++)
        assert_string_equal(function_at(pcs[i]), "recurse");
    assert_string_not_equal(function_at(pcs[7]), "recurse");
}

static void test_depth_limit_fp(void **state) { (void)state; depth_limit(1); }
static void test_depth_limit_unwind(void **state) { (void)state; depth_limit(0); }

/* Frame 0 is in the function that called wref__stack_capture, frame 1 in its caller. */
static void frames_name_callers(int fast)
{
    wref__stack_init(16, fast);
    const uintptr_t *pcs;
    size_t n = wref__stack_get(call_site_b(), &pcs);
    assert_true(n >= 3);
    assert_string_equal(function_at(pcs[0]), "capture_in_leaf");
    assert_string_equal(function_at(pcs[1]), "call_site_b");
    assert_string_equal(function_at(pcs[2]), "frames_name_callers");
}

static void test_frames_fp(void **state) { (void)state; frames_name_callers(1); }
static void test_frames_unwind(void **state) { (void)state; frames_name_callers(0); }

static void test_skip(void **state)
{
    (void)state;
    for (int fast = 0; fast < 2; fast++) {
        wref__stack_init(16, fast);
        const uintptr_t *pcs;
        wref__stack_id id = capture_in_leaf(1);
        KEEP(id);
        assert_true(wref__stack_get(id, &pcs) >= 1);
        assert_string_equal(function_at(pcs[0]), "test_skip");
    }
}

/* Both unwinders see the same frames inside this program. */
static void test_fp_and_unwind_agree(void **state)
{
    (void)state;
    const uintptr_t *fp, *uw;
    wref__stack_init(4, 1);
    wref__stack_id a = recurse(3);
    KEEP(a);
    wref__stack_init(4, 0);
    wref__stack_id b = recurse(3);
    KEEP(b);
    assert_int_equal(wref__stack_get(a, &fp), 4);
    assert_int_equal(wref__stack_get(b, &uw), 4);
    assert_memory_equal(fp, uw, 4 * sizeof(uintptr_t));
    assert_int_equal(a, b);
}

static NOINLINE size_t unwind_in_leaf(uintptr_t *pcs, size_t max, unsigned skip)
{
    size_t n = wref__stack_unwind(pcs, max, skip);
    KEEP(n);
    return n;
}

static NOINLINE size_t unwind_deep(int levels, uintptr_t *pcs, size_t max)
{
    size_t n = levels == 0 ? unwind_in_leaf(pcs, max, 0) : unwind_deep(levels - 1, pcs, max);
    KEEP(n);
    return n;
}

/* wref__stack_unwind + wref__stack_store: the two halves of capture, for callers that trim
 * frames themselves. */
static void test_unwind_and_store(void **state)
{
    (void)state;
    for (int fast = 0; fast < 2; fast++) {
        wref__stack_init(16, fast);
        uintptr_t pcs[100];
        size_t n = unwind_in_leaf(pcs, 100, 0);
        assert_true(n >= 2);
        assert_string_equal(function_at(pcs[0]), "unwind_in_leaf");
        assert_string_equal(function_at(pcs[1]), "test_unwind_and_store");
        assert_int_equal(unwind_in_leaf(pcs, 1, 0), 1);
        assert_int_equal(unwind_in_leaf(pcs, 0, 0), 0);
        n = unwind_in_leaf(pcs, 100, 1);
        assert_true(n >= 1);
        assert_string_equal(function_at(pcs[0]), "test_unwind_and_store");

        /* not limited by the depot depth: 80 frames from a 100-deep recursion */
        assert_int_equal(unwind_deep(100, pcs, 80), 80);
        assert_string_equal(function_at(pcs[0]), "unwind_in_leaf");
        assert_string_equal(function_at(pcs[79]), "unwind_deep");

        wref__stack_id a = wref__stack_store(pcs, 5), b = wref__stack_store(pcs, 5);
        assert_int_not_equal(a, 0);
        assert_int_equal(a, b);
        assert_int_not_equal(wref__stack_store(pcs, 4), a);
        const uintptr_t *got;
        assert_int_equal(wref__stack_get(a, &got), 5);
        assert_memory_equal(got, pcs, 5 * sizeof(uintptr_t));
        assert_int_equal(wref__stack_store(pcs, 0), 0);
        wref__stack_id c = wref__stack_store(pcs, 80); /* clamped */
        assert_int_equal(wref__stack_get(c, &got), WREF__STACK_MAX_DEPTH);
        assert_int_equal(wref__stack_store(pcs, WREF__STACK_MAX_DEPTH), c);
    }
}

/* ---- threads --------------------------------------------------------------------------- */

#define LEVELS 4
#define PATHS (1u << LEVELS)
#define ROUNDS 300
#define THREADS 4
#define DEPTH (2 * LEVELS + 1)

static NOINLINE wref__stack_id path(unsigned bits, int level);

static NOINLINE wref__stack_id path_0(unsigned bits, int level)
{
    MARK(0);
    wref__stack_id id = path(bits, level);
    KEEP(id);
    return id;
}

static NOINLINE wref__stack_id path_1(unsigned bits, int level)
{
    MARK(1);
    wref__stack_id id = path(bits, level);
    KEEP(id);
    return id;
}

/* The innermost DEPTH frames (path, then path_<bit> and path alternating) encode `bits`:
 * PATHS distinct stacks, all frames in this file, so every thread produces the same PATHS
 * stacks. */
static NOINLINE wref__stack_id path(unsigned bits, int level)
{
    wref__stack_id id;
    if (level == LEVELS)
        id = wref__stack_capture(0);
    else
        id = (bits >> level) & 1 ? path_1(bits, level + 1) : path_0(bits, level + 1);
    KEEP(id);
    return id;
}

struct worker {
    pthread_t thread;
    unsigned seed;
    wref__stack_id ids[PATHS];
    int inconsistent;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int r = 0; r < ROUNDS; r++) {
        for (unsigned i = 0; i < PATHS; i++) {
            unsigned bits = (i * 7 + w->seed + (unsigned)r) % PATHS;
            wref__stack_id id = path(bits, 0);
            if (w->ids[bits] == 0)
                w->ids[bits] = id;
            else if (w->ids[bits] != id)
                w->inconsistent = 1;
        }
    }
    return NULL;
}

static void concurrent(int fast)
{
    struct worker w[THREADS];
    memset(w, 0, sizeof w);
    wref__stack_init(DEPTH, fast);
    for (unsigned t = 0; t < THREADS; t++) {
        w[t].seed = t * 5;
        assert_int_equal(pthread_create(&w[t].thread, NULL, work, &w[t]), 0);
    }
    for (unsigned t = 0; t < THREADS; t++)
        pthread_join(w[t].thread, NULL);
    for (unsigned t = 0; t < THREADS; t++) {
        assert_false(w[t].inconsistent);
        assert_memory_equal(w[t].ids, w[0].ids, sizeof w[0].ids);
    }
    for (unsigned i = 0; i < PATHS; i++) {
        const uintptr_t *pcs;
        assert_int_not_equal(w[0].ids[i], 0);
        assert_int_equal(wref__stack_get(w[0].ids[i], &pcs), DEPTH);
        for (unsigned j = 0; j < i; j++)
            assert_int_not_equal(w[0].ids[i], w[0].ids[j]);
        /* the stored frames spell the path: frame 2k + 1 is in path_<bit LEVELS-1-k> */
        for (int k = 0; k < LEVELS; k++) {
            unsigned bit = (i >> (LEVELS - 1 - k)) & 1;
            assert_string_equal(function_at(pcs[2 * k]), "path");
            assert_string_equal(function_at(pcs[2 * k + 1]), bit ? "path_1" : "path_0");
        }
    }
    /* The main thread gets the same ids. */
    for (unsigned i = 0; i < PATHS; i++)
        assert_int_equal(path(i, 0), w[0].ids[i]);
}

static void test_threads_fp(void **state) { (void)state; concurrent(1); }
static void test_threads_unwind(void **state) { (void)state; concurrent(0); }

static void test_depot_bytes(void **state)
{
    (void)state;
    wref__stack_init(16, 1);
    (void)call_site_a();
    size_t before = wref__stack_depot_bytes();
    assert_true(before > 0);
    for (int i = 0; i < 100; i++)
        (void)call_site_a(); /* no new stack, no new memory */
    assert_int_equal(wref__stack_depot_bytes(), before);
}


/* ---- frame-pointer-less code ------------------------------------------------------------ */

/* nofp_middle is built without frame pointers (NO_FP): a plain walk would drop nofp_caller. */
SITE(NO_FP, nofp_middle, 7, (void), capture_in_leaf(0))
SITE(, nofp_caller, 8, (void), nofp_middle())

/* In a thread of its own, so that the walk would end at a known outermost frame
 * (start_thread) with nofp_caller silently missing. */
static void *no_frame_pointer(void *arg)
{
    int *ok = arg;
    (void)call_site_a();   /* this thread's complete walks end at start_thread: learned */
    uint64_t slow = wref__stat_get(WREF__STAT_CAPTURES_SLOW);
    const uintptr_t *pcs;
    size_t n = wref__stack_get(nofp_caller(), &pcs);
    *ok = n >= 4 && strcmp(function_at(pcs[0]), "capture_in_leaf") == 0 &&
          strcmp(function_at(pcs[1]), "nofp_middle") == 0 && strcmp(function_at(pcs[2]), "nofp_caller") == 0 &&
          strcmp(function_at(pcs[3]), "no_frame_pointer") == 0;
    /* the frame-pointer walk was found broken and the capture redone, and counted */
    if (wref__stat_get(WREF__STAT_CAPTURES_SLOW) <= slow)
        *ok = 0;
    for (size_t i = 0; !*ok && i < n; i++)
        print_message("  #%zu %s\n", i, function_at(pcs[i]));
    return NULL;
}

static void test_no_frame_pointer_complete(void **state)
{
    (void)state;
    wref__stack_init(16, 1);
    int ok = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, no_frame_pointer, &ok), 0);
    pthread_join(t, NULL);
    assert_true(ok);
}

/* Code with frame pointers all the way stays on the fast path once its outermost frame is
 * known: a second capture at the same place needs no slow unwind. In a thread of its own
 * (start_thread, then this file's functions), because cmocka, which calls the tests, is built
 * without frame pointers: a capture on the main thread honestly needs libunwind each time. */
static NOINLINE void ten_captures(void)
{
    for (volatile int i = 0; i < 10; i++)
        (void)call_site_a();
}

static void *stay_fast(void *arg)
{
    uint64_t *slow_delta = arg;
    uint64_t slow = 0, all = 0;
    /* round 0 learns where this thread's complete walks end (and, learning verdicts, those of
     * the return addresses): the same call sites as round 1 */
    for (volatile int round = 0; round < 2; round++) {
        slow = wref__stat_get(WREF__STAT_CAPTURES_SLOW), all = wref__stat_get(WREF__STAT_CAPTURES);
        ten_captures();
    }
    assert_int_equal(wref__stat_get(WREF__STAT_CAPTURES), all + 10);
    *slow_delta = wref__stat_get(WREF__STAT_CAPTURES_SLOW) - slow;
    return NULL;
}

static void test_frame_pointers_stay_fast(void **state)
{
    (void)state;
    wref__stack_init(WREF__STACK_MAX_DEPTH, 1);
    uint64_t slow_delta = 99;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stay_fast, &slow_delta), 0);
    pthread_join(t, NULL);
    assert_int_equal(slow_delta, 0);
}

/* ---- the per-thread memo of captures ---------------------------------------------------- */

/* What wref__capture does with the memo (core.c): a known chain's id, else a capture that is
 * kept when its walk was a complete frame-pointer walk. memo_keep frames decide the stack
 * (0: all of them); the stack stored is the first memo_keep frames. */
static size_t memo_keep;

static NOINLINE wref__stack_id memo_capture(int *hit)
{
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    uint32_t gen;
    wref__stack_id id = wref__stack_memo_get(fp, &gen);
    *hit = id != 0 && gen == wref__module_gen();
    if (*hit)
        return id;
    uintptr_t pcs[64];
    size_t n = wref__stack_unwind(pcs, 64, 0);
    size_t used = memo_keep && memo_keep < n ? memo_keep : n;
    id = wref__stack_store(pcs, used);
    wref__stack_memo_put(fp, used, id);
    KEEP(id);
    return id;
}

SITE(, memo_site_a, 11, (int *hit), memo_capture(hit))
SITE(, memo_site_b, 12, (int *hit), memo_capture(hit))
SITE(NO_FP, memo_nofp_middle, 13, (int *hit), memo_capture(hit))
SITE(, memo_nofp_caller, 14, (int *hit), memo_nofp_middle(hit))

/* With learned verdicts (WREF_STACK_LEARN_VERDICTS) a site's first capture learns them (the
 * slow path, not kept), so the memo starts one capture later. */
#ifdef WREF_STACK_LEARN_VERDICTS
#define LEARN 1
#else
#define LEARN 0
#endif

struct memo_result {
    int a_hit[3 + LEARN], b_hit[2 + LEARN], nofp_hit[2];
    wref__stack_id a[3 + LEARN], b[2 + LEARN], nofp[2];
    int nofp_named;
};

/* In a thread of its own, as stay_fast: its complete walks end at start_thread. */
static void *memo_thread(void *arg)
{
    struct memo_result *r = arg;
    (void)call_site_a();   /* learns where this thread's complete walks end */
    for (volatile int i = 0; i < 3 + LEARN; i++)   /* volatile: one call site, not unrolled */
        r->a[i] = memo_site_a(&r->a_hit[i]);
    for (volatile int i = 0; i < 2 + LEARN; i++)
        r->b[i] = memo_site_b(&r->b_hit[i]);
    for (volatile int i = 0; i < 2; i++)
        r->nofp[i] = memo_nofp_caller(&r->nofp_hit[i]);
    const uintptr_t *pcs;
    size_t n = wref__stack_get(r->nofp[1], &pcs);
    r->nofp_named = n >= 3 && strcmp(function_at(pcs[0]), "memo_capture") == 0 &&
                    strcmp(function_at(pcs[1]), "memo_nofp_middle") == 0 &&
                    strcmp(function_at(pcs[2]), "memo_nofp_caller") == 0;
    return NULL;
}

/* A repeated stack is answered by the memo with the id of its first capture; another call site
 * is another chain (a miss, then its own id); a stack whose walk passed a function without a
 * frame record is never kept (each capture is redone, complete). */
static void test_memo(void **state)
{
    (void)state;
    wref__stack_init(16, 1);
    struct memo_result r;
    memset(&r, 0, sizeof r);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, memo_thread, &r), 0);
    pthread_join(t, NULL);
    for (int i = 0; i <= LEARN; i++)
        assert_false(r.a_hit[i] || r.b_hit[i]);
    assert_true(r.a_hit[LEARN + 1] && r.a_hit[LEARN + 2]);
    assert_true(r.b_hit[LEARN + 1]);
    assert_int_not_equal(r.a[0], 0);
    for (int i = 1; i < 3 + LEARN; i++)
        assert_int_equal(r.a[i], r.a[0]);
    for (int i = 1; i < 2 + LEARN; i++)
        assert_int_equal(r.b[i], r.b[0]);
    assert_int_not_equal(r.b[0], r.a[0]);
    assert_false(r.nofp_hit[0]);
    assert_false(r.nofp_hit[1]);
    assert_int_equal(r.nofp[1], r.nofp[0]);
    assert_true(r.nofp_named);
}

/* Exactness: the same call site of memo_capture, at the same depth (same frames, same frame
 * addresses), reached through different callers, in turn, many times: every capture's stack
 * names its own caller, MEMO_MID + 2 frames above the capture. Two such chains share one memo
 * set (the same first record) and both stay in it; four in turn evict each other. */
#define MEMO_MID 5
static NOINLINE wref__stack_id memo_mid(int level, int *hit)
{
    MARK(20 + level);
    wref__stack_id id = level == 0 ? memo_capture(hit) : memo_mid(level - 1, hit);
    KEEP(id);
    return id;
}
SITE(, memo_outer_0, 30, (int *hit), memo_mid(MEMO_MID, hit))
SITE(, memo_outer_1, 31, (int *hit), memo_mid(MEMO_MID, hit))
SITE(, memo_outer_2, 32, (int *hit), memo_mid(MEMO_MID, hit))
SITE(, memo_outer_3, 33, (int *hit), memo_mid(MEMO_MID, hit))

static wref__stack_id (*const memo_outers[])(int *) = {memo_outer_0, memo_outer_1, memo_outer_2, memo_outer_3};
static const char *const memo_outer_names[] = {"memo_outer_0", "memo_outer_1", "memo_outer_2", "memo_outer_3"};
#define MEMO_OUTERS 4
#define MEMO_ROUNDS 6

struct memo_exact {
    int wrong_stack;          /* a capture whose stack named another caller, or changed */
    int hits[MEMO_OUTERS];    /* memo hits per caller, two callers in turn */
    int hits_cut;             /* hits with 2 frames deciding the stack, the callers differing above */
    wref__stack_id ids[MEMO_OUTERS], cut[MEMO_OUTERS];
};

static NOINLINE void memo_exact_one(struct memo_exact *x, int o, int *hit)
{
    wref__stack_id id = memo_outers[o](hit);
    const uintptr_t *pcs;
    size_t n = wref__stack_get(id, &pcs);
    /* memo_capture, memo_mid x (MEMO_MID + 1), then the caller */
    if (n < MEMO_MID + 3 || strcmp(function_at(pcs[MEMO_MID + 2]), memo_outer_names[o]) != 0 ||
        (x->ids[o] && x->ids[o] != id)) {
        if (!x->wrong_stack)
            for (size_t i = 0; i < n; i++)
                print_message("  caller %d #%zu %s\n", o, i, function_at(pcs[i]));
        x->wrong_stack = 1;
    }
    x->ids[o] = id;
}

static NOINLINE void *memo_exact_thread(void *arg)
{
    struct memo_exact *x = arg;
    int hit;
    (void)call_site_a();   /* learns where this thread's complete walks end */
    for (volatile int pair = 0; pair < 2; pair++)
        for (volatile int r = 0; r < MEMO_ROUNDS; r++)
            for (volatile int k = 0; k < 2; k++) {
                int o = 2 * pair + (k ^ (r & 1));   /* 0 1, 1 0, 0 1, ... */
                memo_exact_one(x, o, &hit);
                x->hits[o] += hit;
            }
    memset(x->ids, 0, sizeof x->ids);   /* another call site of memo_exact_one: other stacks */
    for (volatile int r = 0; r < MEMO_ROUNDS; r++)   /* all four in turn: each evicts another */
        for (volatile int o = 0; o < MEMO_OUTERS; o++)
            memo_exact_one(x, o, &hit);
    /* when only the first 2 frames decide the stack, callers that differ above them share it */
    memo_keep = 2;
    for (volatile int r = 0; r < 3; r++)
        for (volatile int o = 0; o < MEMO_OUTERS; o++) {
            x->cut[o] = memo_outers[o](&hit);
            x->hits_cut += r > 0 && hit;
        }
    memo_keep = 0;
    return NULL;
}

static void test_memo_exact(void **state)
{
    (void)state;
    wref__stack_init(16, 1);
    struct memo_exact x;
    memset(&x, 0, sizeof x);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, memo_exact_thread, &x), 0);
    pthread_join(t, NULL);
    assert_false(x.wrong_stack);
    for (int o = 0; o < MEMO_OUTERS; o++) {
        for (int p = 0; p < o; p++)
            assert_int_not_equal(x.ids[o], x.ids[p]);
        /* with learned verdicts the first capture of a chain learns them (not kept) */
        assert_int_equal(x.hits[o], MEMO_ROUNDS - 1 - LEARN);
        assert_int_equal(x.cut[o], x.cut[0]);
    }
    assert_int_not_equal(x.cut[0], 0);
    assert_int_equal(x.hits_cut, 2 * MEMO_OUTERS);
    const uintptr_t *pcs;
    assert_int_equal(wref__stack_get(x.cut[0], &pcs), 2);
}

/* ---- fork while other threads capture ----------------------------------------------------- */

static int fork_stop;   /* atomic */

static void *hammer(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&fork_stop, __ATOMIC_ACQUIRE)) {
        (void)nofp_caller();   /* the slow path: libunwind and its locks */
        (void)call_site_b();
    }
    return NULL;
}

/* A child forked while other threads are inside the unwinder (libunwind's cache lock, the
 * depot's insert lock) must be able to capture: each child captures through the slow path and
 * exits; a child that does not finish within 10 s is a deadlock. */
static void test_fork_while_capturing(void **state)
{
    (void)state;
    wref__stack_init(16, 1);
    enum { HAMMERS = 3, FORKS = 100 };
    pthread_t t[HAMMERS];
    __atomic_store_n(&fork_stop, 0, __ATOMIC_RELEASE);
    for (int i = 0; i < HAMMERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
    int stuck = 0, failed = 0;
    for (int f = 0; f < FORKS && !stuck; f++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            const uintptr_t *pcs;
            size_t n = wref__stack_get(nofp_caller(), &pcs);
            _exit(n >= 3 ? 0 : 1);
        }
        int status = 0;
        pid_t got = 0;
        for (int ms = 0; ms < 10000 && (got = waitpid(pid, &status, WNOHANG)) == 0; ms++)
            usleep(1000);
        if (got == 0) {
            stuck = 1;
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            failed++;
        }
    }
    __atomic_store_n(&fork_stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < HAMMERS; i++)
        pthread_join(t[i], NULL);
    assert_false(stuck);
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_zero_and_unknown),
        cmocka_unit_test(test_memo),
        cmocka_unit_test(test_memo_exact),
        cmocka_unit_test(test_same_stack_same_id_fp),
        cmocka_unit_test(test_same_stack_same_id_unwind),
        cmocka_unit_test(test_different_sites_fp),
        cmocka_unit_test(test_different_sites_unwind),
        cmocka_unit_test(test_depth_limit_fp),
        cmocka_unit_test(test_depth_limit_unwind),
        cmocka_unit_test(test_frames_fp),
        cmocka_unit_test(test_frames_unwind),
        cmocka_unit_test(test_skip),
        cmocka_unit_test(test_fp_and_unwind_agree),
        cmocka_unit_test(test_unwind_and_store),
        cmocka_unit_test(test_threads_fp),
        cmocka_unit_test(test_threads_unwind),
        cmocka_unit_test(test_depot_bytes),
        cmocka_unit_test(test_no_frame_pointer_complete),
        cmocka_unit_test(test_frame_pointers_stay_fast),
        cmocka_unit_test(test_fork_while_capturing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
