/* borrow.h: borrowed pointers (borrow.c): an object handed out without a reference, whose
 * borrower is remembered in the object's record until the borrow ends. */
#ifndef WREF_CHECK_ENGINE_BORROW_H
#define WREF_CHECK_ENGINE_BORROW_H

#include "registry.h"
#include "stack.h"
#include <stdbool.h>
#include <stddef.h>

/* A borrow is remembered in the borrowed object's own record (rec->tno_borrow/st_borrow), for
 * its last WREF__BORROWERS borrowing threads, so no per-thread table can forget one and a
 * pointer handed to another thread still names its borrower. It stays open until the
 * borrowing thread calls wref_check_borrow_end, or the misuse is reported, or the object's
 * memory is finally returned (heap.c: kept up to borrow_pin_mb beyond the quarantine while a
 * borrow is open). The functions taking a record run under its bucket lock. */
void wref__borrow_add(wref__rec *r, unsigned tno, wref__stack_id st);
void wref__borrow_end_rec(wref__rec *r, unsigned tno);   /* tno's borrow of r is over */
void wref__borrow_end(uintptr_t addr);   /* wref_check_borrow_end: this thread's, of the object at addr */
static inline bool wref__borrowed(const wref__rec *r)
{
    return (r->borrow & WREF__BORROW_USED_ANY) != 0;
}
/* Lock-free, without the bucket lock: true when thread tno's open borrow of r is already the
 * newest one with stack st, so that wref__borrow_add(r, tno, st) would change nothing (a
 * borrow repeated by one thread from one place). A thread's own borrow changes only under the
 * lock and by that thread (wref__borrow_add, wref__borrow_end), or goes (another thread's
 * borrow replacing it, a report, the memory returned): a true answer is then a state the
 * record had while this call ran, where the borrow was already recorded. The fields are
 * stored atomically for these loads. */
static inline bool wref__borrow_unchanged(const wref__rec *r, unsigned tno, wref__stack_id st)
{
    uint8_t b = __atomic_load_n(&r->borrow, __ATOMIC_RELAXED);
    for (int i = 0; i < WREF__BORROWERS; i++)
        if ((b & WREF__BORROW_USED(i)) && __atomic_load_n(&r->tno_borrow[i], __ATOMIC_RELAXED) == (uint16_t)tno)
            /* wref__borrow_add would store st there and point NEXT at the other slot */
            return __atomic_load_n(&r->st_borrow[i], __ATOMIC_RELAXED) == st &&
                   __atomic_load_n(&r->borrow, __ATOMIC_RELAXED) == b &&
                   ((b & WREF__BORROW_NEXT) != 0) == (i == 0);
    return false;
}
/* The borrower slot to name for a use by thread tno: tno's own, else the latest; -1: none.
 * *other: the other open slot, or -1. */
int wref__borrow_pick(const wref__rec_copy *r, unsigned tno, int *other);
/* Statistics (printed at exit with verbosity>=1). */
enum wref__borrow_stat {
    WREF__BSTAT_BORROWS,      /* borrows recorded: printed as stats.h's WREF__STAT_BORROWS
                                 (bumped once per borrow, per thread) plus what is added here */
    WREF__BSTAT_REPLACED,     /* a third thread's borrow replaced the oldest borrower slot */
    WREF__BSTAT_PINNED,       /* destroyed objects kept beyond the quarantine for a borrow */
    WREF__BSTAT_PIN_BYTES,    /* ... their bytes now */
    WREF__BSTAT_PIN_PEAK,     /* ... peak bytes */
    WREF__BSTAT_DROPPED,      /* open borrows whose memory was returned (pin limit, allocator switch) */
    WREF__BSTAT_COUNT
};
void wref__borrow_stat_add(enum wref__borrow_stat s, size_t n);
void wref__borrow_stat_pin_bytes(size_t now);
void wref__borrow_stats_print(void);

#endif /* WREF_CHECK_ENGINE_BORROW_H */
