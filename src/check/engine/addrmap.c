/* addrmap.c: the radix map's slow paths (addrmap.h has the lookups, inline).
 *
 * Levels: top[a >> 32 & 0xffff] -> mid[a >> 16 & 0xffff] -> leaf[a >> 4 & 0xfff]. A level is
 * mmap'd when a first set reaches it and published with a compare-and-swap (the loser unmaps
 * its copy); published pointers are read with acquire loads. Entries are atomic 32-bit
 * words, read and written relaxed: the caller orders the operations on one address. */
#include "addrmap.h"

#include <sys/mman.h>

#define LEVEL_BITS 16
#define LEAF_BITS 12   /* 64 KiB of addresses: 4096 granules of 16 bytes */

static void *map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* *slot, mapped (size bytes, zeroed) and published when it was NULL; NULL when out of memory. */
static void *level(void **slot, size_t size)
{
    void *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (p)
        return p;
    void *fresh = map(size);
    if (!fresh)
        return NULL;
    if (__atomic_compare_exchange_n(slot, &p, fresh, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return fresh;
    munmap(fresh, size);   /* another thread published first: p is its level */
    return p;
}

uint32_t *wref__addrmap_make_entry(wref__addrmap *m, uintptr_t a)
{
    void **top = level((void **)&m->top, sizeof(void *) << LEVEL_BITS);
    void **mid = top ? level(&top[(uint64_t)a >> 32 & 0xffff], sizeof(void *) << LEVEL_BITS) : NULL;
    uint32_t *leaf = mid ? level(&mid[a >> 16 & 0xffff], sizeof(uint32_t) << LEAF_BITS) : NULL;
    return leaf ? &leaf[a >> 4 & 0xfff] : NULL;
}

size_t wref__addrmap_count(const wref__addrmap *m)
{
    size_t n = 0;
    void **top = (void **)__atomic_load_n(&m->top, __ATOMIC_ACQUIRE);
    for (size_t i = 0; top && i < (size_t)1 << LEVEL_BITS; i++) {
        void **mid = __atomic_load_n(&top[i], __ATOMIC_ACQUIRE);
        for (size_t j = 0; mid && j < (size_t)1 << LEVEL_BITS; j++) {
            const uint32_t *leaf = __atomic_load_n(&mid[j], __ATOMIC_ACQUIRE);
            for (size_t k = 0; leaf && k < (size_t)1 << LEAF_BITS; k++)
                n += __atomic_load_n(&leaf[k], __ATOMIC_RELAXED) != 0;
        }
    }
    return n;
}
