/* known.h: a thread's last borrow site and the objects known borrowed there, the CPython
 * frontend's inline answer to a borrow that changes nothing (frontend.h wref__py_borrow_known).
 *
 * The site is a key (the C caller and the innermost Python position) with the stacks of its
 * first borrow and the thread's number. An object is entered once its record was seen to hold
 * exactly this site's borrow while the frontend's counters (frontend.h wref__py_seq: the
 * generation and the borrow changes) had the values the table holds for. While they are
 * unchanged no record was unlinked and no record's borrow facts changed, so every entry still
 * holds. Anything else (another site, other counters) starts a new epoch, which drops every
 * entry at once.
 *
 * The table: WREF__PY_KNOWN words, direct-mapped by address (wref__py_known_slot), each an
 * object's address with the epoch in its top bits. Exact: an address at or above 2^48 is never
 * entered, and when the epoch wraps the table is cleared. It is the thread's own, allocated
 * with its first site (not in TLS: under LD_AUDIT the initial-exec TLS comes out of a small
 * surplus) and freed at the thread's exit, which also unsets the site.
 *
 * Addresses and counters only: nothing here reads an object. Every function works on the
 * calling thread's wref__py_last_borrow (l). */
#ifndef WREF_CHECK_PYTHON_KNOWN_H
#define WREF_CHECK_PYTHON_KNOWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A borrow's site: the C caller and the innermost Python position (pystack.h); code is 0 when
 * there is no Python frame. */
typedef struct wref__py_site_key {
    uintptr_t pc, code, where;
} wref__py_site_key;

#define WREF__PY_KNOWN 4096
#define WREF__PY_KNOWN_SHIFT 48   /* the epoch: the top 16 bits, 1..65535 (0: an empty entry) */

typedef struct wref__py_last {
    uintptr_t pc, code, where;      /* the site's key; pc 0: no site (then known may be NULL) */
    uint64_t stacks;                /* the stacks of its first borrow (frontend.h wref__py_stacks_pack) */
    unsigned tno;                   /* the thread's number */
    uint64_t generation, borrows;   /* the counters the entries hold for */
    uintptr_t tag;                  /* the epoch << WREF__PY_KNOWN_SHIFT */
    uintptr_t *known;               /* WREF__PY_KNOWN entries */
} wref__py_last;
extern __thread __attribute__((tls_model("initial-exec"))) wref__py_last wref__py_last_borrow;

/* Nearby objects get distinct slots: within 64 KB the slot is the address's 16-byte line. */
static inline __attribute__((always_inline)) size_t wref__py_known_slot(uintptr_t a)
{
    return (size_t)(a >> 4) % WREF__PY_KNOWN;
}

/* l's site is k. A set site's code is never 0, so a key without a Python frame never matches. */
static inline __attribute__((always_inline)) bool wref__py_last_at(const wref__py_last *l, wref__py_site_key k)
{
    return l->pc == k.pc && l->code == k.code && l->where == k.where;
}

/* obj is known at l's site for the counters gen and borrows. Only after wref__py_last_at
 * answered true (the table exists then). An odd gen is never the table's. A high address is
 * refused first: its top bits would read as an epoch. */
static inline __attribute__((always_inline)) bool wref__py_known_has(const wref__py_last *l, uintptr_t obj,
                                                                     uint64_t gen, uint64_t borrows)
{
    return l->generation == gen && l->borrows == borrows &&
           ((l->known[wref__py_known_slot(obj)] ^ (obj | l->tag)) | obj >> WREF__PY_KNOWN_SHIFT) == 0;
}

/* A new epoch for the counters gen and borrows: every entry dropped. The site is set. */
void wref__py_known_epoch(wref__py_last *l, uint64_t gen, uint64_t borrows);

/* obj known (after its record was seen to hold the site's borrow, the counters the table's).
 * The site is set. */
static inline void wref__py_known_enter(wref__py_last *l, uintptr_t obj)
{
    if (!(obj >> WREF__PY_KNOWN_SHIFT))
        l->known[wref__py_known_slot(obj)] = obj | l->tag;
}

/* l's site becomes k (code not 0) with these stacks and thread number, for the counters gen
 * and borrows (read under the lock that orders their changes): the entries are kept when all
 * of that is what l had, and dropped otherwise. False (l unchanged) when k.code is 0 or the
 * table cannot be allocated. */
bool wref__py_last_set(wref__py_last *l, wref__py_site_key k, uint64_t stacks, unsigned tno, uint64_t gen,
                       uint64_t borrows);

#endif
