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
 * The table: WREF__PY_KNOWN_SETS sets of two words, chosen by a key (wref__py_known_set: the
 * weakref's address), each word an object's address with the epoch in its top bits. Exact: an
 * address at or above 2^48 is never entered or known, and when the epoch wraps the table is
 * cleared. It is the thread's own, allocated
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

#define WREF__PY_KNOWN_SETS 4096   /* of two entries: 64 KB a thread */
#define WREF__PY_KNOWN_SHIFT 48    /* the epoch: the top 16 bits, 1..65535 (0: an empty entry) */

typedef struct wref__py_last {
    uintptr_t pc, code, where;      /* the site's key; pc 0: no site (then known may be NULL) */
    uint64_t stacks;                /* the stacks of its first borrow (frontend.h wref__py_stacks_pack) */
    unsigned tno;                   /* the thread's number */
    uint64_t generation, borrows;   /* the counters the entries hold for */
    uintptr_t tag;                  /* the epoch << WREF__PY_KNOWN_SHIFT */
    uintptr_t (*known)[2];          /* WREF__PY_KNOWN_SETS sets, the newer entry first */
} wref__py_last;
extern __thread __attribute__((tls_model("initial-exec"))) wref__py_last wref__py_last_borrow;

/* The set of key (an address: the weakref's): nearby keys get distinct sets, the set is the
 * key's 16-byte line within an aligned 64 KB; two entries a set for keys of two regions whose
 * lines meet (weakrefs made in a row are spread over pools and arenas). Permuting the sets per
 * 64 KB cost more than it saved (measured: bench/python/notes.md). */
static inline __attribute__((always_inline)) size_t wref__py_known_set(uintptr_t key)
{
    return (size_t)(key >> 4) % WREF__PY_KNOWN_SETS;
}

/* l's site is k. A set site's code is never 0, so a key without a Python frame never matches. */
static inline __attribute__((always_inline)) bool wref__py_last_at(const wref__py_last *l, wref__py_site_key k)
{
    return l->pc == k.pc && l->code == k.code && l->where == k.where;
}

/* obj is known at l's site for the counters gen and borrows, found in key's set (any set
 * would do: an entry holds for its epoch wherever it is; the key only spreads them). Only after
 * wref__py_last_at answered true (the table exists then). An odd gen is never the table's. A
 * high address is never known: its top bits would read as an epoch. */
static inline __attribute__((always_inline)) bool wref__py_known_has(const wref__py_last *l, uintptr_t key,
                                                                     uintptr_t obj, uint64_t gen, uint64_t borrows)
{
    const uintptr_t *e = l->known[wref__py_known_set(key)];   /* first: key comes before obj */
    if (l->generation != gen || l->borrows != borrows || obj >> WREF__PY_KNOWN_SHIFT)
        return false;
    uintptr_t want = obj | l->tag;
    return e[0] == want || e[1] == want;
}

/* A new epoch for the counters gen and borrows: every entry dropped. The site is set. */
void wref__py_known_epoch(wref__py_last *l, uint64_t gen, uint64_t borrows);

/* obj known (after its record was seen to hold the site's borrow, the counters the table's),
 * in key's set: its newer entry, the other one the older (the oldest is dropped). The site is
 * set. */
static inline void wref__py_known_enter(wref__py_last *l, uintptr_t key, uintptr_t obj)
{
    if (obj >> WREF__PY_KNOWN_SHIFT)
        return;
    uintptr_t *e = l->known[wref__py_known_set(key)], want = obj | l->tag;
    if (e[0] != want && e[1] != want) {
        e[1] = e[0];
        e[0] = want;
    }
}

/* l's site becomes k (code not 0) with these stacks and thread number, for the counters gen
 * and borrows (read under the lock that orders their changes): the entries are kept when all
 * of that is what l had, and dropped otherwise. False (l unchanged) when k.code is 0 or the
 * table cannot be allocated. */
bool wref__py_last_set(wref__py_last *l, wref__py_site_key k, uint64_t stacks, unsigned tno, uint64_t gen,
                       uint64_t borrows);

#endif
