/* borrow.c: who holds a borrowed pointer (from wref_get_object / WREF_GET_OBJECT).
 *
 * A borrow is written into the borrowed object's own record: per object, the last
 * WREF__BORROWERS threads that borrowed it, each with the stack of its latest borrow. A thread
 * can hold any number of open borrows (nothing per thread to overflow), and a borrowed pointer
 * handed to another thread still names the thread that borrowed it. The one bound: when a
 * third thread borrows an object that two other threads still hold borrowed, it replaces the
 * older of the two (counted: WREF__BSTAT_REPLACED); a misuse is still a dangling-borrow, it
 * then names a borrower that is not the oldest.
 *
 * A borrow is open until the borrowing thread calls wref_check_borrow_end, its misuse is
 * reported, or the destroyed object's memory is finally returned: heap.c keeps the memory of a
 * destroyed object with an open borrow (up to borrow_pin_mb beyond the quarantine), so while
 * a borrow is open its address cannot hold a newer object and any use of it is a use of the
 * dead one. Returning that memory drops the borrows (WREF__BSTAT_DROPPED).
 *
 * Every function taking a record runs under the record's bucket lock (registry.c). */
#include "borrow.h"
#include "core.h"
#include "options.h"
#include "registry.h"
#include "stats.h"

/* The fields wref__borrow_unchanged reads without the lock: stored atomically (relaxed; the
 * lock orders the writers). */
#define STORE(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)

void wref__borrow_add(wref__rec *r, unsigned tno, wref__stack_id st)
{
    int slot = -1;
    for (int i = 0; i < WREF__BORROWERS; i++)
        if ((r->borrow & WREF__BORROW_USED(i)) && r->tno_borrow[i] == (uint16_t)tno)
            slot = i;   /* this thread's earlier borrow: the latest stack is the one to show */
    for (int i = 0; slot < 0 && i < WREF__BORROWERS; i++)
        if (!(r->borrow & WREF__BORROW_USED(i)))
            slot = i;
    if (slot < 0) {
        slot = (r->borrow & WREF__BORROW_NEXT) ? 1 : 0;
        wref__borrow_stat_add(WREF__BSTAT_REPLACED, 1);
    }
    STORE(r->tno_borrow[slot], (uint16_t)tno);
    STORE(r->st_borrow[slot], st);
    /* the next replacement takes the other slot: the older borrower */
    uint8_t b = (uint8_t)((r->borrow | WREF__BORROW_USED(slot)) & ~WREF__BORROW_NEXT);
    if (slot == 0)
        b |= WREF__BORROW_NEXT;
    STORE(r->borrow, b);
}

void wref__borrow_end_rec(wref__rec *r, unsigned tno)
{
    for (int i = 0; i < WREF__BORROWERS; i++) {
        if ((r->borrow & WREF__BORROW_USED(i)) && r->tno_borrow[i] == (uint16_t)tno) {
            uint8_t b = (uint8_t)(r->borrow & ~WREF__BORROW_USED(i));
            /* the remaining borrower, if any, becomes the one to replace next */
            STORE(r->borrow, (uint8_t)((b & ~WREF__BORROW_NEXT) | (i == 0 ? WREF__BORROW_NEXT : 0)));
            STORE(r->st_borrow[i], 0);
        }
    }
}

int wref__borrow_pick(const wref__rec_copy *r, unsigned tno, int *other)
{
    int own = -1, latest = -1;
    for (int i = 0; i < WREF__BORROWERS; i++) {
        if (!(r->borrow & WREF__BORROW_USED(i)))
            continue;
        if (r->tno_borrow[i] == (uint16_t)tno)
            own = i;
    }
    /* NEXT points at the older slot when both are open */
    int older = (r->borrow & WREF__BORROW_NEXT) ? 1 : 0, newer = 1 - older;
    if (r->borrow & WREF__BORROW_USED(newer))
        latest = newer;
    else if (r->borrow & WREF__BORROW_USED(older))
        latest = older;
    int pick = own >= 0 ? own : latest;
    *other = -1;
    if (pick >= 0 && (r->borrow & WREF__BORROW_USED(1 - pick)))
        *other = 1 - pick;
    return pick;
}

static int end_borrow(wref__rec *r, void *arg)
{
    if (r)
        wref__borrow_end_rec(r, *(unsigned *)arg);
    return 0;
}

void wref__borrow_end(uintptr_t addr)
{
    unsigned tno = wref__thread_no();
    wref__registry_with((const void *)addr, end_borrow, &tno);
}

/* ---- statistics ------------------------------------------------------------------------------ */

static size_t stats[WREF__BSTAT_COUNT];   /* atomic */

void wref__borrow_stat_add(enum wref__borrow_stat s, size_t n)
{
    __atomic_fetch_add(&stats[s], n, __ATOMIC_RELAXED);
}

/* Called under the heap lock: plain stores of the gauge and its peak suffice. */
void wref__borrow_stat_pin_bytes(size_t now)
{
    __atomic_store_n(&stats[WREF__BSTAT_PIN_BYTES], now, __ATOMIC_RELAXED);
    if (now > __atomic_load_n(&stats[WREF__BSTAT_PIN_PEAK], __ATOMIC_RELAXED))
        __atomic_store_n(&stats[WREF__BSTAT_PIN_PEAK], now, __ATOMIC_RELAXED);
}

void wref__borrow_stats_print(void)
{
    size_t v[WREF__BSTAT_COUNT];
    for (int i = 0; i < WREF__BSTAT_COUNT; i++)
        v[i] = __atomic_load_n(&stats[i], __ATOMIC_RELAXED);
    v[WREF__BSTAT_BORROWS] += (size_t)wref__stat_get(WREF__STAT_BORROWS);   /* the per-thread count */
    /* the checker's own line shape, like verbosity=1's "active (pid N)" */
    wref__checker_warn(NULL,
                       "borrows: %zu recorded, %zu replaced (a third borrowing thread), %zu destroyed object(s) "
                       "kept for an open borrow (peak %zu bytes, limit borrow_pin_mb=%u), %zu open borrow(s) "
                       "dropped when their memory was returned",
                       v[WREF__BSTAT_BORROWS], v[WREF__BSTAT_REPLACED], v[WREF__BSTAT_PINNED],
                       v[WREF__BSTAT_PIN_PEAK], wref__opt.borrow_pin_mb, v[WREF__BSTAT_DROPPED]);
}
