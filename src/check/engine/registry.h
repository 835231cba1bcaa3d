/* registry.h: the records and their states (registry.c): one record per object, found by its
 * address, kept in the graveyard after its memory is returned. A record holds what reports
 * need to name an object (address, serial, type token, size, the stacks of its life) and
 * nothing of the object model: the type token is opaque (model.h). */
#ifndef WREF_CHECK_ENGINE_REGISTRY_H
#define WREF_CHECK_ENGINE_REGISTRY_H

#include "core.h"
#include "kinds.h"
#include "stack.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Records live from creation until they leave the graveyard (long after the object's memory
 * was reused), so a borrow or a finding can still name an object by its record. Every field
 * below except the immutable ones (addr, serial, type, size, st_created, tno_created) is
 * written under the record's lock (the stripe of its address, registry.c); state with atomic
 * stores, as wref__registry_peek's readers load it without the lock. Every reader, locked or
 * not, reads the state once per decision, so a transition that changes the state alone (no
 * other field with it) may also be stored without the lock, through wref__registry_peek.
 * One more: the destroying thread stores st_destroyed and tno_destroyed without the lock
 * (atomic stores, then the state FINALIZING with release), as no other thread writes them:
 * a reader that loads the state (acquire) before them sees the ones of that state. */
enum wref__state {
    WREF__ALIVE,
    WREF__FINALIZING,   /* count reached 0, finalize running (temporarily alive) */
    WREF__CLEARING,     /* weakrefs being cleared, callbacks running */
    WREF__DESTROYING,   /* destroy running, then late weakrefs cleared */
    WREF__FREED,        /* memory in quarantine, poisoned */
    WREF__GONE          /* memory returned; the record is kept in the graveyard */
};

/* Borrowers remembered per object (borrow.c): its last WREF__BORROWERS borrowing threads. */
#define WREF__BORROWERS 2
/* rec->borrow bits */
#define WREF__BORROW_USED(i) (1u << (i))   /* borrower slot i holds an open borrow */
#define WREF__BORROW_USED_ANY 3u
#define WREF__BORROW_NEXT (1u << 2)        /* the slot a borrow by a third thread replaces */
#define WREF__BORROW_PINNED (1u << 3)      /* memory kept beyond the quarantine (heap.c) */

/* 72 bytes on LP64 (bench/notes.md has the per-object accounting). */
typedef struct wref__rec {
    uintptr_t addr;                /* atomic: the registry's walk (registry_each) reads it unlocked */
    struct wref__rec *fifo_next;   /* quarantine / pins / graveyard / free list; under the heap lock */
    uint64_t serial;               /* 1, 2, ...: never reused */
    const void *type;              /* the object model's type token, opaque to the engine (model.h) */
    uint32_t size;                 /* the object's size */
    uint8_t state;                 /* enum wref__state */
    uint8_t reported;              /* WREF__REPORTED(kind) bits: reported once (kinds.def) */
    uint8_t guarded;               /* memory is on its own pages (heap.c) */
    uint8_t borrow;                /* WREF__BORROW_* */
    uint16_t tno_created, tno_destroyed, tno_cleared;
    wref__stack_id st_created, st_cleared, st_destroyed;
    /* The open borrows of this object: the borrowing thread and its latest borrow's stack. */
    uint16_t tno_borrow[WREF__BORROWERS];
    wref__stack_id st_borrow[WREF__BORROWERS];
} wref__rec;

_Static_assert(sizeof(void *) != 8 || sizeof(struct wref__rec) == 72, "wref__rec: 72 bytes on LP64");

/* Snapshot of a record taken under its lock, for reporting without holding it. */
typedef wref__rec wref__rec_copy;

/* The snapshot of r: every field but the link (fifo_next), which belongs to other locks
 * (heap/allocation) and is never read from a copy. */
static inline wref__rec_copy wref__rec_snapshot(const wref__rec *r)
{
    uint8_t state = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE);   /* first: see above */
    wref__rec_copy c = {.addr = r->addr, .serial = r->serial, .type = r->type, .size = r->size,
                        .state = state, .reported = r->reported, .guarded = r->guarded,
                        .tno_created = r->tno_created,
                        .tno_destroyed = __atomic_load_n(&r->tno_destroyed, __ATOMIC_RELAXED),
                        .tno_cleared = r->tno_cleared, .borrow = r->borrow, .st_created = r->st_created,
                        .st_cleared = r->st_cleared,
                        .st_destroyed = __atomic_load_n(&r->st_destroyed, __ATOMIC_RELAXED)};
    for (unsigned i = 0; i < WREF__BORROWERS; i++) {
        c.tno_borrow[i] = r->tno_borrow[i];
        c.st_borrow[i] = r->st_borrow[i];
    }
    return c;
}

/* A FIFO of records linked through fifo_next (quarantine, graveyard); the caller holds the
 * lock that owns it. */
typedef struct wref__rec_fifo {
    wref__rec *head, *tail;   /* oldest first */
} wref__rec_fifo;

static inline void wref__fifo_push(wref__rec_fifo *q, wref__rec *r)
{
    r->fifo_next = NULL;
    if (q->tail)
        q->tail->fifo_next = r;
    else
        q->head = r;
    q->tail = r;
}

/* The oldest record, unlinked; NULL when empty. */
static inline wref__rec *wref__fifo_pop(wref__rec_fifo *q)
{
    wref__rec *r = q->head;
    if (r) {
        q->head = r->fifo_next;
        if (!q->head)
            q->tail = NULL;
        r->fifo_next = NULL;
    }
    return r;
}

/* A new ALIVE record for the object at addr (of type token `type`, size bytes), created here
 * (stack and thread); NULL when out of memory (then degraded). */
wref__rec *wref__registry_add(uintptr_t addr, const void *type, uint32_t size);
/* Calls fn(rec, arg) with ob's record locked (NULL when unknown); returns fn's result. */
int wref__registry_with(const void *ob, int (*fn)(wref__rec *rec, void *arg), void *arg);
/* The address index (registry.c), read inline by wref__registry_peek: the top level maps a
 * 256 MiB region to its leaf (NULL: no object there yet; (uint32_t *)1: not indexed), a leaf
 * entry per 32-byte granule holds the record's arena index + 1 (0: none). */
#define WREF__IDX_GRAN_SHIFT 5
#define WREF__IDX_REGION_SHIFT 28
#define WREF__IDX_TOP ((size_t)1 << (48 - WREF__IDX_REGION_SHIFT))
#define WREF__IDX_LEAF ((size_t)1 << (WREF__IDX_REGION_SHIFT - WREF__IDX_GRAN_SHIFT))
extern uint32_t *wref__index_top[WREF__IDX_TOP];   /* atomic entries */
extern char *wref__rec_arena;   /* set before the first leaf is published */

/* Lock-free: the record of the object at ob when the address index has it, else NULL (then ask
 * wref__registry_with). Only for a quick look at rec->state (atomic load) and the immutable
 * fields; every decision that writes, or reports, is taken again under the lock. (Stores of
 * the state alone need no lock: see the state comment above.) */
static inline wref__rec *wref__registry_peek_inline(const void *ob)
{
    uintptr_t a = (uintptr_t)ob;
    size_t region = a >> WREF__IDX_REGION_SHIFT;
    if (region >= WREF__IDX_TOP)
        return NULL;
    uint32_t *leaf = __atomic_load_n(&wref__index_top[region], __ATOMIC_ACQUIRE);
    if ((uintptr_t)leaf <= 1)
        return NULL;
    uint32_t i = __atomic_load_n(&leaf[(a >> WREF__IDX_GRAN_SHIFT) & (WREF__IDX_LEAF - 1)], __ATOMIC_ACQUIRE);
    if (!i)
        return NULL;
    wref__rec *r = (wref__rec *)((uintptr_t)wref__rec_arena + (size_t)(i - 1) * sizeof(wref__rec));
    if (!r)
        __builtin_unreachable();   /* an arena slot: lets callers' NULL tests fold into the compare */
    return __atomic_load_n(&r->addr, __ATOMIC_RELAXED) == a ? r : NULL;
}
wref__rec *wref__registry_peek(const void *ob);   /* the same, out of line */
/* The memory of rec (FREED) is about to be returned: rec leaves the index (state GONE)
 * and true is returned, unless it has open borrows and !force: then it is marked
 * WREF__BORROW_PINNED, stays, and false is returned. *dropped: the open borrows it had. */
bool wref__registry_retire(wref__rec *rec, bool force, unsigned *dropped);
/* Walks every record in the index (live and quarantined), each with its lock held. */
void wref__registry_each(void (*fn)(wref__rec *rec, void *arg), void *arg);
bool wref__registry_degraded(void);                /* a record could not be made: stay quiet */
void wref__graveyard_add(wref__rec *rec);          /* takes ownership; recycles the oldest */
size_t wref__registry_live_count(void);
void wref__registry_fork(enum wref__fork_phase phase);
/* The record's type name, from the object model (model.h); "?" for NULL. */
const char *wref__type_name(const wref__rec_copy *r);

#endif /* WREF_CHECK_ENGINE_REGISTRY_H */
