/* stats.h: the checker's counters about itself, printed at exit with verbosity >= 1.
 *
 * A counter is a name in the list below; any module bumps it with wref__stat_add (or raises a
 * peak with wref__stat_max). To add one: a line in WREF__STATS (its identifier and the text
 * printed before its value), then call wref__stat_add where the event happens. A counter is
 * either added to or raised (wref__stat_max, QUARANTINE_PEAK), never both.
 *
 * Added counters are per thread: each thread adds into its own block (a pointer in
 * initial-exec TLS, the block in a fixed pool), so a hot path writes no shared cache line.
 * A block outlives its thread: at thread exit it goes back to the pool with its counts, and the
 * next thread that takes it adds on top; a value is the sum over every block (plus the shared
 * fallback, used when the pool is exhausted), exact once the threads that bump it are done (at
 * exit). Raised counters are process-wide relaxed atomics. All functions are
 * async-signal-safe: an add is one instruction to memory on x86-64 (a handler interrupting
 * its own thread's add cannot lose either), an atomic add elsewhere and under TSan; taking a
 * block is lock-free; the printer uses write(2) only.
 */
#ifndef WREF_CHECK_STATS_H
#define WREF_CHECK_STATS_H

#include <stddef.h>
#include <stdint.h>

#define WREF__STATS(X)                                                                       \
    X(OBJECTS, "objects created")                                                            \
    X(BORROWS, "borrows recorded (wref_get_object)")                                          \
    X(STACKS, "distinct stacks in the depot")                                                \
    X(DEPOT_BYTES, "stack depot bytes mapped")                                               \
    X(QUARANTINE_PEAK, "peak quarantine bytes")                                              \
    X(CAPTURES, "stack captures")                                                            \
    X(CAPTURES_SLOW, "captures that needed the slow unwinder (libunwind)")                   \
    X(POISON_EVICTED, "quarantined objects let go early to free a poison slot")              \
    X(POISON_PLAIN, "destroyed objects poisoned without a slot (0xDD only)")

enum wref__stat {
#define WREF__STAT_ENUM(id, text) WREF__STAT_##id,
    WREF__STATS(WREF__STAT_ENUM)
#undef WREF__STAT_ENUM
    WREF__STAT_COUNT
};

#if defined(__SANITIZE_THREAD__)
#define WREF__STATS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WREF__STATS_TSAN 1
#endif
#endif

/* A thread's counters: owned by one live thread at a time (stats.c). */
struct wref__stat_block {
    uint64_t c[WREF__STAT_COUNT];        /* written by the owner only, read by wref__stat_get */
    int in_use;                          /* atomic: claimed by a live thread */
} __attribute__((aligned(128)));         /* no false sharing, not even by line pairs */

/* This thread's block; NULL until its first add (and when the pool is exhausted). */
extern __thread struct wref__stat_block *wref__stat_mine
    __attribute__((tls_model("initial-exec"), visibility("hidden")));
void wref__stat_add_slow(enum wref__stat s, uint64_t n);   /* takes a block, or the shared fallback */

/* Adds n to counter `s`. */
static inline void wref__stat_add(enum wref__stat s, uint64_t n)
{
    struct wref__stat_block *b = wref__stat_mine;
    if (__builtin_expect(b == NULL, 0)) {
        wref__stat_add_slow(s, n);
        return;
    }
#if defined(__x86_64__) && !defined(WREF__STATS_TSAN)
    /* one instruction: atomic against a signal handler on this thread; readers load it */
    __asm__ __volatile__("addq %1, %0" : "+m"(b->c[s]) : "er"(n));
#else
    __atomic_fetch_add(&b->c[s], n, __ATOMIC_RELAXED);
#endif
}

/* Raises counter `s` to v if it is below (a peak). */
void wref__stat_max(enum wref__stat s, uint64_t v);

/* The current value of counter `s`. */
uint64_t wref__stat_get(enum wref__stat s);

/* Writes "==PID==WARNING: wref-check: statistics:" (the prefix of every checker message) and one line per counter to fd. */
void wref__stats_print(int fd);

#endif /* WREF_CHECK_STATS_H */
