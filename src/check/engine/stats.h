/* stats.h: the checker's counters about itself, printed at exit with verbosity >= 1.
 *
 * A counter is a name in the list below; any module bumps it with wref__stat_add (or raises a
 * peak with wref__stat_max). To add one: a line in WREF__STATS (its identifier and the text
 * printed before its value), then call wref__stat_add where the event happens. Counters are
 * process-wide relaxed atomics: cheap on hot paths, exact once the threads that bump them are
 * done (at exit). All functions are async-signal-safe (the printer uses write(2) only).
 */
#ifndef WREF_CHECK_STATS_H
#define WREF_CHECK_STATS_H

#include <stddef.h>
#include <stdint.h>

#define WREF__STATS(X)                                                                       \
    X(OBJECTS, "objects created")                                                            \
    X(BORROWS, "borrows opened (wref_get_ref)")                                              \
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

/* Adds n to counter `s`. */
void wref__stat_add(enum wref__stat s, uint64_t n);

/* Raises counter `s` to v if it is below (a peak). */
void wref__stat_max(enum wref__stat s, uint64_t v);

/* The current value of counter `s`. */
uint64_t wref__stat_get(enum wref__stat s);

/* Writes "==PID==WARNING: wref-check: statistics:" (the prefix of every checker message) and one line per counter to fd. */
void wref__stats_print(int fd);

#endif /* WREF_CHECK_STATS_H */
