/* addrmap.h: a lock-free map from block addresses to nonzero 32-bit values, for metadata kept
 * beside a foreign allocator's blocks (the CPython frontend's create sites).
 *
 * A two-level radix directory over 48-bit addresses with one 32-bit entry per 16-byte
 * granule: a lookup is three dependent loads and no hash, and blocks allocated one after
 * another from the same pool share cache lines of their leaf. Memory: 4 bytes per 16 bytes of
 * the address ranges ever set (a leaf covers 64 KiB), plus 512 KiB of directory per 4 GiB
 * range used; leaves are never freed, so a reader never sees one go away.
 *
 * Concurrency: any operations may run at once on distinct addresses. Operations on one
 * address must be ordered by the caller (an allocator orders a block's allocation before its
 * free, which suffices). Async-signal-safe but for a first set in a new range (mmap). */
#ifndef WREF_CHECK_ENGINE_ADDRMAP_H
#define WREF_CHECK_ENGINE_ADDRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Zero-initialised static storage is an empty map. */
typedef struct wref__addrmap {
    uint32_t ***top;   /* address bits 47..32 -> bits 31..16 -> a leaf of 4096 granules of
                        * bits 15..4; every pointer published once, read with acquire loads */
} wref__addrmap;

/* Whether an address can be mapped at all: 16-byte aligned, nonzero and below 2^48. */
static inline bool wref__addrmap_covers(uintptr_t a)
{
    return a && !(a & 15) && (uint64_t)a >> 48 == 0;
}

/* a's entry when its leaf exists, else NULL; a must be covered. */
static inline uint32_t *wref__addrmap_entry(const wref__addrmap *m, uintptr_t a)
{
    uint32_t ***top = __atomic_load_n(&m->top, __ATOMIC_ACQUIRE);
    if (__builtin_expect(!top, 0))
        return NULL;
    uint32_t **mid = __atomic_load_n(&top[(uint64_t)a >> 32 & 0xffff], __ATOMIC_ACQUIRE);
    if (__builtin_expect(!mid, 0))
        return NULL;
    uint32_t *leaf = __atomic_load_n(&mid[a >> 16 & 0xffff], __ATOMIC_ACQUIRE);
    return __builtin_expect(leaf != NULL, 1) ? &leaf[a >> 4 & 0xfff] : NULL;
}

/* a's entry, its levels made first (covered a; the slow path of a first set in a range);
 * NULL when out of memory. */
uint32_t *wref__addrmap_make_entry(wref__addrmap *m, uintptr_t a);

/* Stores v (nonzero) for a; false when a is not covered or there is no memory for its
 * range (nothing stored). */
static inline bool wref__addrmap_set(wref__addrmap *m, uintptr_t a, uint32_t v)
{
    if (!wref__addrmap_covers(a))
        return false;
    uint32_t *e = wref__addrmap_entry(m, a);
    if (__builtin_expect(!e, 0) && !(e = wref__addrmap_make_entry(m, a)))
        return false;
    __atomic_store_n(e, v, __ATOMIC_RELAXED);
    return true;
}

/* The value stored for a (0: none). */
static inline uint32_t wref__addrmap_get(const wref__addrmap *m, uintptr_t a)
{
    const uint32_t *e = wref__addrmap_covers(a) ? wref__addrmap_entry(m, a) : NULL;
    return e ? __atomic_load_n(e, __ATOMIC_RELAXED) : 0;
}

/* The value stored for a, and a's entry emptied (0: there was none). No read-modify-write:
 * nothing else touches a's entry meanwhile (the contract above). */
static inline uint32_t wref__addrmap_take(wref__addrmap *m, uintptr_t a)
{
    uint32_t *e = wref__addrmap_covers(a) ? wref__addrmap_entry(m, a) : NULL;
    uint32_t v = e ? __atomic_load_n(e, __ATOMIC_RELAXED) : 0;
    if (v)
        __atomic_store_n(e, 0, __ATOMIC_RELAXED);
    return v;
}

/* How many addresses have a value: walks every leaf (for exit statistics, not hot paths). */
size_t wref__addrmap_count(const wref__addrmap *m);

#endif /* WREF_CHECK_ENGINE_ADDRMAP_H */
