/* poison.c: poison pointers into a reserved inaccessible region (poison.h).
 *
 * Slots: an open-addressed table keyed by object address (PROBES positions from a hash of the
 * address); a slot is claimed by CAS of its `rec` from NULL and freed by storing NULL. Lookups
 * by address visit all PROBES positions (a freed slot does not end the probe), so freeing
 * never hides another object's slot. A claimer CASes NULL -> CLAIMING, writes the address,
 * then publishes rec with a release store. Slot k owns the reserved bytes
 * [base + k * STRIDE, base + (k + 1) * STRIDE); its poison pointer is base + k * STRIDE + BIAS. */
#include "check/engine/poison.h"
#include "check/engine/checker.h"

#include <string.h>
#include <sys/mman.h>

#define PROBES 32
#define CLAIMING ((struct wref__rec *)1)   /* a slot being filled in: matches nothing */

struct slot {
    struct wref__rec *rec;   /* atomic; NULL: free */
    uintptr_t addr;          /* atomic; the object's address, valid while rec is set */
};

static struct {
    uintptr_t base;          /* 0: no region */
    struct slot *slots;      /* WREF__POISON_SLOTS, mmap'd */
} pz;

void wref__poison_init(void)
{
    if (pz.base)
        return;
    size_t bytes = (size_t)WREF__POISON_SLOTS * WREF__POISON_STRIDE;
    void *r = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED)
        return;
    void *t = mmap(NULL, (size_t)WREF__POISON_SLOTS * sizeof(struct slot), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (t == MAP_FAILED) {
        munmap(r, bytes);
        return;
    }
    pz.slots = t;
    __atomic_store_n(&pz.base, (uintptr_t)r, __ATOMIC_RELEASE);
}

static inline size_t home(uintptr_t addr)
{
    uint64_t k = (uint64_t)addr >> 4;
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k & (WREF__POISON_SLOTS - 1);
}

/* The slot index holding rec for the object at ob, or -1. */
static long slot_of(uintptr_t ob, const struct wref__rec *rec)
{
    if (!pz.base)
        return -1;
    size_t h = home(ob);
    for (unsigned i = 0; i < PROBES; i++) {
        size_t k = (h + i) & (WREF__POISON_SLOTS - 1);
        if (__atomic_load_n(&pz.slots[k].rec, __ATOMIC_ACQUIRE) == rec &&
            __atomic_load_n(&pz.slots[k].addr, __ATOMIC_RELAXED) == ob)
            return (long)k;
    }
    return -1;
}

static inline uintptr_t value_of(size_t k)
{
    return pz.base + k * WREF__POISON_STRIDE + WREF__POISON_BIAS;
}

void wref__poison_fill(void *ob, size_t size, struct wref__rec *rec)
{
    memset(ob, WREF__POISON_BYTE, size);
    if (!__atomic_load_n(&pz.base, __ATOMIC_ACQUIRE) || rec == NULL)
        return;
    size_t h = home((uintptr_t)ob);
    for (unsigned i = 0; i < PROBES; i++) {
        size_t k = (h + i) & (WREF__POISON_SLOTS - 1);
        struct wref__rec *none = NULL;
        if (__atomic_load_n(&pz.slots[k].rec, __ATOMIC_RELAXED) != NULL ||
            !__atomic_compare_exchange_n(&pz.slots[k].rec, &none, CLAIMING, false, __ATOMIC_ACQUIRE,
                                         __ATOMIC_RELAXED))
            continue;
        __atomic_store_n(&pz.slots[k].addr, (uintptr_t)ob, __ATOMIC_RELAXED);
        __atomic_store_n(&pz.slots[k].rec, rec, __ATOMIC_RELEASE);   /* published: addr is set */
        uintptr_t v = value_of(k);
        uintptr_t first = ((uintptr_t)ob + sizeof v - 1) & ~(uintptr_t)(sizeof v - 1);
        for (uintptr_t w = first; w + sizeof v <= (uintptr_t)ob + size; w += sizeof v)
            memcpy((void *)w, &v, sizeof v);
        return;
    }
}

uintptr_t wref__poison_value(const void *ob, const struct wref__rec *rec)
{
    long k = slot_of((uintptr_t)ob, rec);
    return k < 0 ? 0 : value_of((size_t)k);
}

long wref__poison_check(const void *ob, size_t size, const struct wref__rec *rec)
{
    const unsigned char *p = ob;
    uintptr_t v = wref__poison_value(ob, rec);
    uintptr_t first = v ? (((uintptr_t)ob + sizeof v - 1) & ~(uintptr_t)(sizeof v - 1)) : UINTPTR_MAX;
    for (size_t i = 0; i < size;) {
        uintptr_t at = (uintptr_t)ob + i;
        if (at >= first && i + sizeof v <= size && (at - first) % sizeof v == 0) {
            if (memcmp(p + i, &v, sizeof v) != 0) {
                const unsigned char *want = (const unsigned char *)&v;
                for (size_t j = 0; j < sizeof v; j++)
                    if (p[i + j] != want[j])
                        return (long)(i + j);
            }
            i += sizeof v;
            continue;
        }
        if (p[i] != WREF__POISON_BYTE)
            return (long)i;
        i++;
    }
    return -1;
}

void wref__poison_release(const struct wref__rec *rec)
{
    long k = slot_of(rec->addr, rec);
    if (k >= 0)
        __atomic_store_n(&pz.slots[k].rec, NULL, __ATOMIC_RELEASE);
}

struct wref__rec *wref__poison_find(uintptr_t addr, uintptr_t *obj)
{
    uintptr_t base = __atomic_load_n(&pz.base, __ATOMIC_ACQUIRE);
    if (!base || addr < base || addr - base >= (uintptr_t)WREF__POISON_SLOTS * WREF__POISON_STRIDE)
        return NULL;
    /* a field before the poison pointer (negative offset) still lies in its slot when it is
     * at most BIAS bytes before it */
    size_t k = (size_t)((addr - base) / WREF__POISON_STRIDE);
    struct wref__rec *r = __atomic_load_n(&pz.slots[k].rec, __ATOMIC_ACQUIRE);
    if (r == CLAIMING)
        return NULL;
    if (r)
        *obj = __atomic_load_n(&pz.slots[k].addr, __ATOMIC_ACQUIRE);
    return r;
}
