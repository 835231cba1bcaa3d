/* internal.h: what the runtime files share, grouped by the file that defines it.
 * Names: wref__* are internal but shared across files; file-local helpers are static. */
#ifndef WREF_RUNTIME_INTERNAL_H
#define WREF_RUNTIME_INTERNAL_H

#include "wref.h"
#include <stdarg.h>
#include <stdbool.h>

#define WREF__LIKELY(x) __builtin_expect(!!(x), 1)
#define WREF__UNLIKELY(x) __builtin_expect(!!(x), 0)
/* An entry point's full path, which the release build's inline fast path falls back to (and
 * the checked build's only path): out of line there, so the fast path needs no stack frame. */
#ifdef WREF_CHECKED
#define WREF__SLOW_IN_RELEASE inline __attribute__((always_inline))   /* keeps the API frame alone in stacks */
#else
#define WREF__SLOW_IN_RELEASE __attribute__((noinline, cold))
#endif

/* ---- object.c ------------------------------------------------------------------------------
 * Object header fields. ob_refcnt_ is only accessed with __atomic builtins.
 * ob_weaklist_ holds the head of the weakref list (a wref__weakref *, 8-aligned) in its high
 * bits and object flags in its low 3 bits; it is read and written under the object's stripe
 * lock, except for the lock-free "is the list empty" test of a dying object. */
#define WREF__FLAG_FINALIZED ((uintptr_t)1)   /* finalize has run (never again) */
#define WREF__FLAG_DEFERRED ((uintptr_t)2)    /* in the trashcan: the high bits link the next deferred object */
#define WREF__FLAG_SMR ((uintptr_t)4)         /* lock-free readers may hold its address: its free waits for them (smr.c);
                                                * set on an object when a weakref is linked to it, on a weakref when linked */
#define WREF__FLAG_MASK ((uintptr_t)7)

extern wref_object wref__none __attribute__((visibility("hidden")));

/* Every access to ob_weaklist_ is atomic: writes happen under the stripe lock, and the dying
 * object's "list empty?" test and its own flag bits are read without it. The release store
 * pairs with the acquire load: a dying object that sees the list emptied by a weakref
 * unlinking itself on another thread frees its memory only after that store. */
static inline uintptr_t wref__weaklist_load(const wref_object *ob)
{
    return __atomic_load_n(&ob->ob_weaklist_, __ATOMIC_ACQUIRE);
}

static inline void wref__weaklist_store(wref_object *ob, uintptr_t v)
{
    __atomic_store_n(&ob->ob_weaklist_, v, __ATOMIC_RELEASE);
}

/* Count reached 0: run the destruction protocol (docs/semantics.md section 4) or defer it (trashcan). */
void wref__dealloc(wref_object *ob);

static inline intptr_t wref__load_count(const wref_object *ob)
{
    return __atomic_load_n(&ob->ob_refcnt_, __ATOMIC_ACQUIRE);
}

/* Increment unless the count is 0. Returns 1 on success. One CAS when uncontended. */
static inline int wref__try_incref(wref_object *ob)
{
    intptr_t c = __atomic_load_n(&ob->ob_refcnt_, __ATOMIC_RELAXED);
    do {
        if (c == 0)
            return 0;
    } while (!__atomic_compare_exchange_n(&ob->ob_refcnt_, &c, c + 1, true, __ATOMIC_ACQUIRE,
                                          __ATOMIC_RELAXED));
    return 1;
}

/* incref/decref without the checker's use() hook, for pointers the runtime owns. */
static inline void wref__incref(wref_object *ob)
{
    if (ob != &wref__none)
        __atomic_fetch_add(&ob->ob_refcnt_, 1, __ATOMIC_RELAXED);
}

static inline void wref__decref(wref_object *ob)
{
    /* acq_rel: every thread's writes to *ob happen before the destroyer's accesses (a
     * standalone acquire fence would do on paper, but ThreadSanitizer cannot follow fences) */
    if (ob != &wref__none && __atomic_fetch_sub(&ob->ob_refcnt_, 1, __ATOMIC_ACQ_REL) == 1)
        wref__dealloc(ob);
}

static inline void wref__xdecref(wref_object *ob)
{
    if (ob)
        wref__decref(ob);
}

static inline int wref__is_weakrefable(const wref_object *ob)
{
    return (ob->ob_type_->flags & WREF_TYPE_WEAKREFABLE) != 0;
}

/* Allocates and initialises an object of an internal or user type: count 1, zeroed body. */
wref_object *wref__object_new(const wref_type *type);

/* wref_call without the use() hook. */
wref_object *wref__call(wref_object *callable, wref_object *arg);

/* ---- weakref.c -------------------------------------------------------------------------- */
typedef struct wref__weakref wref__weakref;

/* A weak reference object (ref, proxy or callable proxy). 64 bytes on LP64.
 * referent: the object, or NULL once cleared; written under the stripe lock, read with an
 *   atomic load by the lock-free reads (get-ref, get-object, canonical reuse).
 * callback: strong reference or NULL; under the stripe lock. Once linked it changes only to
 *   NULL, with a release store that the lock-free canonical reuse's acquire load pairs with.
 * While linked (referent != NULL) link.prev/next chain the referent's list. After
 * wref_clear_weakrefs took a ref to run its callback, pending.next/callback queue it on the
 * clearing thread's private list (the ref is unlinked, so no other thread reads these). */
struct wref__weakref {
    wref_object base;
    wref_object *referent;
    wref_object *callback;
    union {
        struct { wref__weakref *prev, *next; } link;
        struct { wref__weakref *next; wref_object *callback; } pending;
    } u;
    uint32_t stripe;   /* lock index, fixed at creation from the referent's address */
};

/* The three weakref types, adjacent, so that "is a weakref" is one range check. */
extern const wref_type wref__weakref_types[3] __attribute__((visibility("hidden")));
#define wref__ref_type (wref__weakref_types[0])
#define wref__proxy_type (wref__weakref_types[1])
#define wref__callable_proxy_type (wref__weakref_types[2])

static inline int wref__is_weakref_type(const wref_type *t)
{
    return (uintptr_t)t - (uintptr_t)wref__weakref_types < sizeof wref__weakref_types;
}

/* Clears ob's weakrefs (the protocol's step 2, or 4 when run_callbacks is false). */
void wref__clear_weakrefs(wref_object *ob, bool run_callbacks);

/* Calls ref's referent through a proxy: wref_call semantics. */
wref_object *wref__proxy_call(wref_object *proxy, wref_object *arg);

/* ---- callback.c ------------------------------------------------------------------------- */
extern const wref_type wref__callback_type __attribute__((visibility("hidden")));
/* The function of a callback object (wref_callback_new); NULL for any other object. For the
 * checker, which names a failing callback by its function. */
wref_callback_fn wref__callback_fn(const wref_object *cb);

/* ---- lock.c -------------------------------------------------------------------------------
 * Striped spinlocks protecting weakref lists: a referent's list, the links and the referent
 * field of each of its weakrefs are guarded by lock wref__stripe_of(referent). Critical
 * sections are short and never call user code or the allocator. */
#define WREF__STRIPES 128u

/* wref__cpu_relax: the spin-wait hint of any spin loop (runtime or checker). */
#include "../common/cpu_relax.h"

static inline uint32_t wref__stripe_of(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p >> 4;
    return (uint32_t)((x * 0x9E3779B97F4A7C15ull) >> 57);   /* top 7 bits: 0..127 */
}

/* A test-and-test-and-set byte lock alone in a 128-byte block (an adjacent-line pair, see
 * struct wref__reader); 0 free, 1 held. */
struct wref__stripe {
    unsigned char locked;   /* acquire on lock, release on unlock */
    char pad[127];
} __attribute__((aligned(128)));

extern struct wref__stripe wref__stripes[WREF__STRIPES] __attribute__((visibility("hidden")));

void wref__lock_slow(uint32_t stripe);   /* spins, then yields, until the stripe is ours */
/* fork(): lock.c's pthread_atfork handlers take every stripe before fork() and release them
 * in both processes, so a child never inherits a stripe held by a thread it does not have. */

/* Inline fast paths: one xchg to lock, one release store to unlock (get-ref and canonical
 * reuse pay no call for them). */
static inline void wref__lock(uint32_t stripe)
{
    if (WREF__UNLIKELY(__atomic_exchange_n(&wref__stripes[stripe].locked, 1, __ATOMIC_ACQUIRE)))
        wref__lock_slow(stripe);
}

static inline void wref__unlock(uint32_t stripe)
{
    __atomic_store_n(&wref__stripes[stripe].locked, 0, __ATOMIC_RELEASE);
}

/* A full (StoreLoad) barrier. ThreadSanitizer does not support fences (GCC: -Wtsan), so
 * under it a seq_cst read-modify-write of a dummy cell stands in (a full barrier on the
 * hardware as well). */
#if defined(__SANITIZE_THREAD__)
#define WREF__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WREF__TSAN 1
#endif
#endif
#ifdef WREF__TSAN
extern int wref__fence_cell __attribute__((visibility("hidden")));
static inline void wref__full_fence(void) { __atomic_fetch_add(&wref__fence_cell, 0, __ATOMIC_SEQ_CST); }
#else
static inline void wref__full_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
#endif

/* *seq += 1 by its only writer, as one plain store another thread may read at any time (a
 * reader slot's seq, alloc.c's counters).
 * x86-64: one `add` to memory (a plain store, ordered after every earlier access: TSO), and a
 * compiler barrier. Elsewhere, and under ThreadSanitizer (which must see the release), an
 * atomic load and a release store. */
static inline void wref__seq_bump(unsigned long *seq)
{
#if defined(__x86_64__) && !defined(WREF__TSAN)
    __asm__ __volatile__("addq $1, %0" : "+m"(*seq) : : "memory");
#else
    __atomic_store_n(seq, __atomic_load_n(seq, __ATOMIC_RELAXED) + 1, __ATOMIC_RELEASE);
#endif
}

/* ---- smr.c ----------------------------------------------------------------------------------
 * Lock-free weakref reads and the deferred frees that make them safe (see smr.c). In the
 * checked build the reads take the stripe lock (the checker's quarantine and guard pages own
 * freed memory), so none of this exists there. */
#ifndef WREF_CHECKED
#define WREF__LOCKFREE_READS 1

/* A thread's reader slot, alone in an aligned 128-byte block: no false sharing between readers,
 * not even through the adjacent-line prefetcher (Intel's fetches 64-byte lines in 128-byte
 * pairs, so two writers 64 bytes apart would still pull each other's line). */
#define WREF__READER_ALIGN 128
struct wref__reader {
    unsigned long seq;              /* odd while inside a read section; written by its owner only */
    struct wref__reader *next;      /* immutable once published */
    int in_use;                     /* owned by a live thread */
} __attribute__((aligned(WREF__READER_ALIGN)));

/* This thread's slot when its read sections are plain stores (the kernel has
 * membarrier(PRIVATE_EXPEDITED)); NULL before the thread's first read and when sections need a
 * fence: the callers' out-of-line paths then use wref__reader_get and wref__read_fence. */
extern __thread struct wref__reader *wref__reader_fast
    __attribute__((tls_model("initial-exec"), visibility("hidden")));
extern int wref__smr_reader_fence __attribute__((visibility("hidden")));   /* 1: no membarrier */

struct wref__reader *wref__reader_get(void);        /* this thread's slot (registers it); NULL when out of memory */
void wref__smr_free(void *p, size_t size);           /* frees after a grace period */
void wref__smr_flush(void);                          /* this thread's deferred frees, now */
size_t wref__smr_pending_max(void);                  /* the per-thread bound, in objects */

/* Begin/end a read section on this thread's slot r. Between them, the memory of any object or
 * weakref reached through a referent field or a weakref list stays allocated (smr.c). Begin is
 * a plain store and a compiler barrier: the reclaimer's membarrier orders it (smr.c). */
static inline void wref__read_begin(struct wref__reader *r)
{
    wref__seq_bump(&r->seq);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/* wref__read_begin for a slot from wref__reader_get: adds the full fence that stands in for
 * membarrier when the kernel has none. */
static inline void wref__read_begin_any(struct wref__reader *r)
{
    wref__seq_bump(&r->seq);
    if (WREF__UNLIKELY(__atomic_load_n(&wref__smr_reader_fence, __ATOMIC_RELAXED)))
        wref__full_fence();
    else
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static inline void wref__read_end(struct wref__reader *r)
{
    wref__seq_bump(&r->seq);   /* release: the section's loads (and CAS) come before it */
}
#endif

/* ---- error.c -------------------------------------------------------------------------------- */
/* A saved error indicator, for code that must run user code without clobbering it. */
typedef struct wref__saved_error {
    wref_error kind;
    char message[256];
} wref__saved_error;

void wref__err_save(wref__saved_error *s);          /* takes the pending error, clears it */
void wref__err_restore(const wref__saved_error *s); /* puts it back (replacing any) */
void wref__err_vset(wref_error kind, const char *fmt, va_list ap);
/* Passes an error that cannot be raised to the unraisable hook. reported: the checker already
 * reported this failure, so the default hook (no hook installed) prints nothing; an
 * installed hook still runs. */
void wref__unraisable(wref_error kind, const char *message, wref_object *obj, int reported);

/* ---- alloc.c ------------------------------------------------------------------------------- */
void *wref__mem_alloc(size_t size);           /* the configured allocator; NULL on failure */
void wref__mem_free(void *p, size_t size);

#endif /* WREF_RUNTIME_INTERNAL_H */
