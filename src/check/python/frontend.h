/* frontend.h: what the CPython frontend's files share (src/check/python/).
 *
 * Flow: an extension calls PyWeakref_GetObject (intercept.c, reached by LD_PRELOAD or through
 * libwref-audit.so's redirection) -> the referent is watched (objects.c: one record per
 * object, keyed by object and by allocation block) -> the chained object-domain allocator
 * (objects.c) sees the block freed -> it keeps the block out of reuse and turns it into a
 * tombstone (tombstone.c): a later use reaches one of the tombstone type's slots, which
 * reports it through the engine (wref__report) and raises ReferenceError. */
#ifndef WREF_CHECK_PYTHON_FRONTEND_H
#define WREF_CHECK_PYTHON_FRONTEND_H

#include "../engine/checker.h"
#include "../engine/core.h"
#include "../engine/finding.h"
#include "../engine/options.h"
#include "../engine/report.h"
#include "../engine/stack.h"
#include "capi.h"
#include "known.h"
#include "pystack.h"

#include <stdbool.h>
#include <stdint.h>

enum wref__py_how {          /* how the object came to be watched (the latest event) */
    WREF__PY_BORROWED,        /* PyWeakref_GetObject returned it */
    WREF__PY_WEAKREF_CREATED, /* PyWeakref_NewRef made a weakref to it */
    WREF__PY_FREED,           /* not watched; recognized at its free (wide.c, python_watch=all) */
    WREF__PY_WEAKLISTED,      /* not watched; freed with weakrefs still pointing at it (weaklists.c) */
    WREF__PY_PROXY_CREATED    /* PyWeakref_NewProxy made a proxy to it (otherwise as WEAKREF_CREATED) */
};

enum wref__py_state {
    WREF__PY_WATCHED,    /* alive, borrowed at least once */
    WREF__PY_TOMBSTONE   /* its block was freed: a tombstone in the engine heap's quarantine */
};

/* One watched object. Written under objects.c's lock; reports work on copies. */
typedef struct wref__py_rec {
    struct wref__py_rec *next_block, *next_obj;   /* hash chains */
    struct wref__py_rec *pool_next;               /* objects.c's free records */
    uintptr_t obj, block;                         /* block = obj - pre-header */
    uint64_t serial;                              /* 1, 2, ... in order of first borrow */
    uint32_t size;                                /* tp_basicsize + pre-header */
    uint8_t state;                                /* enum wref__py_state */
    uint8_t reported;                             /* a finding was made for it */
    uint8_t how;                                  /* enum wref__py_how */
    uint8_t pinned;                               /* weakrefs point into it: never freed */
    intptr_t weaklist;                            /* offset of its weakref list from obj; 0: none */
    char type_name[64];
    union {
        struct {
            wref__stack_id st_borrow;             /* the newest borrow (or weakref) */
            uint32_t py_borrow;                   /* Python stacks (pystack.h) */
        };
        uint64_t borrow_stacks;                   /* both: one load for the lock-free check */
    };
    wref__stack_id st_destroy, st_create;
    uint32_t py_destroy, py_create;
    unsigned tno_borrow, tno_destroy, tno_create;
    uint8_t why_create;                           /* origins.h: WREF__PY_ORIGIN_NONE when st_create is set */
    uint8_t why_weakref;                          /* WREF__PY_WEAKLISTED: the same for st_borrow (the weakref's allocation) */
} wref__py_rec;

/* st and py as a borrow_stacks value */
static inline uint64_t wref__py_stacks_pack(wref__stack_id st, uint32_t py)
{
    wref__py_rec r;
    r.st_borrow = st;
    r.py_borrow = py;
    return r.borrow_stacks;
}

/* ---- intercept.c ---- */
/* The frontend is on: the interpreter is supported and the allocator hook is installed. */
extern bool wref__py_active;

/* ---- objects.c ---- */
/* Installs the chained object-domain allocator (GIL held, after start-up). */
bool wref__py_alloc_install(void);
/* Installs it again when it is no longer in the chain (tracemalloc started before it, then
 * stopped, restored the allocator it had saved); GIL held. A probe allocation when another
 * hook is on top. */
void wref__py_alloc_ensure(void);
/* When tracemalloc was tracing at the hook's installation: its stop() replaced by one that
 * installs the hook again right after (GIL held, at the frontend's start). */
void wref__py_tracemalloc_watch(void);
/* The C and Python stacks of a call into an interposer from caller_pc: captured, or those of
 * the first call from the same C call site and Python position (a per-thread cache). */
void wref__py_site_stacks(uintptr_t caller_pc, wref__stack_id *st, uint32_t *py);
/* o was just returned by PyWeakref_GetObject to the code at caller_pc, or got a weakref from
 * PyWeakref_NewRef there (how; GIL held): watch it. */
void wref__py_watch_borrow(py_object *o, uintptr_t caller_pc, int how);

static inline __attribute__((always_inline)) wref__py_site_key wref__py_site_key_of(uintptr_t pc)
{
    wref__py_site_key k = {pc, 0, 0};
    if (!wref__py_innermost(&k.code, &k.where))
        k.code = k.where = 0;
    return k;
}
/* The sequence counters lock-free readers check, in one cache line, written under objects.c's
 * lock. generation: bumped around a change that lock-free readers could see half made (odd
 * meanwhile: a record unlinked or leaving the watched state). borrows: bumped after a watched
 * record's borrow facts (stacks, thread, kind) changed. */
typedef struct wref__py_seq {
    uint64_t generation, borrows;
} __attribute__((aligned(64))) wref__py_seq_t;
extern wref__py_seq_t wref__py_seq;

#define WREF__PY_BUCKETS 16384
#define WREF__PY_MAX_WALK 64   /* chain links a lock-free reader follows before it gives up */
/* objects.c's records by object (hash chains, read lock-free) */
extern wref__py_rec *wref__py_by_obj[WREF__PY_BUCKETS];
static inline __attribute__((always_inline)) size_t wref__py_slot(uintptr_t a)
{
    return (size_t)((a >> 4) * 0x9E3779B97F4A7C15ull >> 50) % WREF__PY_BUCKETS;
}

/* True when record r holds this thread's last borrow l (its thread, stacks, kind): no other
 * borrow was recorded in it since. */
static inline __attribute__((always_inline)) bool wref__py_rec_holds_last(const wref__py_rec *r,
                                                                         const wref__py_last *l)
{
    return __atomic_load_n(&r->borrow_stacks, __ATOMIC_ACQUIRE) == l->stacks &&
           __atomic_load_n(&r->tno_borrow, __ATOMIC_ACQUIRE) == l->tno &&
           __atomic_load_n(&r->how, __ATOMIC_ACQUIRE) == WREF__PY_BORROWED;
}
/* A borrow through PyWeakref_GetObject that changes nothing, decided inline without a lock
 * and without a call: from this thread's last site, of an object known borrowed there
 * (known.h, its set chosen by key: the weakref's address, which the caller has before the
 * referent's; gen: the generation, read with acquire before). */
static inline __attribute__((always_inline)) bool wref__py_borrow_cached(py_object *o, uintptr_t key,
                                                                         wref__py_site_key k, uint64_t gen)
{
    wref__py_last *l = &wref__py_last_borrow;
    return wref__py_last_at(l, k) &&
           wref__py_known_has(l, key, (uintptr_t)o, gen, __atomic_load_n(&wref__py_seq.borrows, __ATOMIC_ACQUIRE));
}
/* The same, or of an object whose record holds this site's stacks, thread and kind already
 * (the generation unchanged across the read): then o is entered as known. */
static inline bool wref__py_borrow_known(py_object *o, uintptr_t key, wref__py_site_key k, uint64_t gen)
{
    wref__py_last *l = &wref__py_last_borrow;
    if (!wref__py_last_at(l, k) || (gen & 1))
        return false;
    uintptr_t obj = (uintptr_t)o;
    uint64_t borrows = __atomic_load_n(&wref__py_seq.borrows, __ATOMIC_ACQUIRE);
    if (wref__py_known_has(l, key, obj, gen, borrows))
        return true;
    const wref__py_rec *r = __atomic_load_n(&wref__py_by_obj[wref__py_slot(obj)], __ATOMIC_ACQUIRE);
    for (int n = 0; r && __atomic_load_n(&r->obj, __ATOMIC_ACQUIRE) != obj;
         r = __atomic_load_n(&r->next_obj, __ATOMIC_ACQUIRE))
        if (++n == WREF__PY_MAX_WALK)
            return false;
    /* Its state and block need no check: a borrow of a tombstone or of a stale record (another
     * block now) records nothing either (objects.c). */
    if (!r || !wref__py_rec_holds_last(r, l) ||
        __atomic_load_n(&wref__py_seq.generation, __ATOMIC_RELAXED) != gen)
        return false;   /* the generation is read again after the record's acquire loads */
    if (l->generation != gen || l->borrows != borrows)
        wref__py_known_epoch(l, gen, borrows);
    wref__py_known_enter(l, key, obj);
    return true;
}
/* wref__py_watch_borrow past the inline check (the site pc/code/where; key as for
 * wref__py_borrow_known). */
void wref__py_watch_borrow_at(py_object *o, uintptr_t key, uintptr_t pc, uintptr_t code, uintptr_t where, int how);
/* use-after-clear: o, just borrowed or weakly referenced by `api` (called at caller_pc, how),
 * has a count of 0 (it is being destroyed); reported once per object, with its earlier
 * borrow or weakref when it was watched before. Call before wref__py_watch_borrow. */
void wref__py_check_dying_slow(py_object *o, const char *api, uintptr_t caller_pc, int how);
static inline void wref__py_check_dying(py_object *o, const char *api, uintptr_t caller_pc, int how)
{
    if (__builtin_expect(o->ob_refcnt == 0, 0))   /* one load on the borrow path */
        wref__py_check_dying_slow(o, api, caller_pc, how);
}
/* Copies the record of the object at obj (tombstone or watched); false when unknown. Marks it
 * reported when mark_reported is set and returns in *first whether it was the first time. */
bool wref__py_rec_find(uintptr_t obj, wref__py_rec *out, bool mark_reported, bool *first);
/* At exit: late Py_INCREFs of quarantined tombstones. */
void wref__py_objects_exit(void);
/* Around fork (intercept.c's pthread_atfork handlers): the lock is held across it. */
void wref__py_objects_fork(enum wref__fork_phase phase);
/* Statistics for verbosity >= 1. */
void wref__py_objects_stats(size_t *watched, size_t *tombstones, size_t *dropped);

/* ---- callbacks.c: weakref callbacks registered from C ---- */
bool wref__py_callbacks_init(void);   /* the wrapper type; GIL held */
/* A wrapper (new reference) to hand the real NewRef/NewProxy instead of `callback`, which
 * extension code at caller_pc registers on ob through `api`; NULL: pass callback itself (no
 * callback, a caller inside the interpreter, or out of memory). */
py_object *wref__py_callback_wrap(py_object *ob, py_object *callback, uintptr_t caller_pc, const char *api);
/* PyUnstable_Object_ClearWeakRefsNoCallbacks(ob): calls clear(ob) (the real one) and reports
 * each callback registered from C that it dropped (callback-suppressed). */
void wref__py_callbacks_suppressed(py_object *ob, void (*clear)(py_object *));
/* A callback registered from C during which its dying referent (count 0) gained references:
 * the callback's repr and its registration. */
typedef struct wref__py_gain {
    char callback[160];
    const char *api;
    wref__stack_id st_reg;
    uint32_t py_reg;
    unsigned tno_reg;
} wref__py_gain;
/* Takes the gain noted for the object at referent, if any. */
bool wref__py_callbacks_gain_take(uintptr_t referent, wref__py_gain *out);
/* At exit: callbacks registered from C that never ran, their referent still alive. */
void wref__py_callbacks_exit(void);
void wref__py_callbacks_stats(size_t *registered, size_t *errors, size_t *suppressed);
void wref__py_callbacks_fork(enum wref__fork_phase phase);   /* its lock, held across fork */

/* ---- wide.c: python_watch=all ---- */
extern bool wref__py_wide;                    /* on: every freed object is recognized */
void wref__py_start(void);                    /* intercept.c: starts the frontend once (GIL held) */
void wref__py_wide_init(void);                /* at the frontend's start */
/* The freed block's object as a new tombstone record (destroy stacks set), or NULL when the
 * block holds no recognizable dead object. */
wref__py_rec *wref__py_wide_record(void *block);
/* The tombstones it made, by object: an array table (a chained one costs a cache miss per
 * link at each eviction). Called with objects.c's lock held. */
void wref__py_wide_insert(wref__py_rec *r);
void wref__py_wide_remove(wref__py_rec *r);
wref__py_rec *wref__py_wide_find(uintptr_t obj);
void wref__py_wide_report_use(const wref__py_rec *r, const char *op);
void wref__py_wide_report_late_incref(const wref__py_rec *r, ssize_t count);
void wref__py_wide_stats(void);               /* verbosity >= 1, at exit */
void wref__py_wide_fork(enum wref__fork_phase phase);   /* its lock, held across fork */
/* A word that may be a pointer to an object: aligned, in the user address range. */
static inline bool wref__py_plausible(uintptr_t a)
{
    return a >= 0x10000 && a < (1ull << 47) && !(a & 7);
}
/* Reads n bytes at addr without faulting (process_vm_readv); false when any is unreadable. */
bool wref__py_probe(uintptr_t addr, void *out, size_t n);
/* Reads [at, at+n) near the start of the block p: directly on p's page, else probed. */
bool wref__py_read_block(uintptr_t p, uintptr_t at, void *out, size_t n);
/* t is the address of a ready type object (probed: never faults; no cache). When false,
 * *not_ready says whether t is a type but for Py_TPFLAGS_READY (being readied: the verdict will
 * change, so callers must not cache it). */
bool wref__py_type_valid(uintptr_t t, bool *not_ready);

/* ---- weaklists.c: dangling-weakref for objects nobody watched ---- */
extern bool wref__py_weaklists;   /* on: every unwatched free is checked (set at the frontend's start) */
void wref__py_weaklists_init(void);
/* The dead object in the freed, unwatched block p whose weakref list is still not empty (its
 * dealloc did not clear it), with the list's offset from it, its head (a live weakref to the
 * object) and that weakref's allocation block. NULL for nearly every free: no object, a type
 * without a weakref list, an empty list. Also forgets the decision cached for a type whose own
 * block this is (so: call it for every free). */
typedef struct wref__py_weaklist {
    intptr_t wl;
    uintptr_t head, head_block;
} wref__py_weaklist;
py_object *wref__py_weaklisted(uintptr_t p, wref__py_weaklist *out);
/* False when wref__py_weaklisted(p) surely returns NULL and has nothing to forget (nearly every
 * free; no call, no lock): call that only when this says true. */
bool wref__py_weaklisted_maybe(uintptr_t p);
void wref__py_weaklists_stats(void);   /* verbosity >= 1, at exit */
void wref__py_weaklists_fork(enum wref__fork_phase phase);   /* its lock, held across fork (a leaf) */

/* ---- tombstone.c ---- */
bool wref__py_tombstone_init(void);                /* the tombstone type; GIL held */
/* Turns the freed object into a tombstone: its type and count (memory stays ours). */
void wref__py_tombstone_make(py_object *o);
/* The watched object r is being freed while its weakref list is not empty. */
void wref__py_report_dangling_weakref(const wref__py_rec *r, wref__stack_id where, uint32_t py_where);
/* use-after-clear: the watched object r is freed while `held` references to it exist (it
 * gained them after its count had reached 0), or (held == 0) it was borrowed or weakly
 * referenced by `api` while its count was 0. */
void wref__py_report_use_after_clear(const wref__py_rec *r, ssize_t held, const char *api, wref__stack_id where,
                                     uint32_t py_where, const wref__py_gain *gain);
/* A quarantined object whose count changed after the free (late Py_INCREF): reports it. */
void wref__py_report_late_incref(const wref__py_rec *r, ssize_t count);

#endif /* WREF_CHECK_PYTHON_FRONTEND_H */
