/* poison.c: poison pointers into a reserved inaccessible region (poison.h).
 *
 * Slot k owns the reserved bytes [base + k * STRIDE, base + (k + 1) * STRIDE); its poison
 * pointer is base + k * STRIDE + BIAS, so a fault address names its slot by division, and the
 * slot names the record and object address (published with a release store of rec after
 * addr). Free slots form a LIFO list through `next` under pz.lock, fed first by slots never
 * used (pz.fresh), so only the slots ever used are touched.
 *
 * An object's slot is found again from its record, never from its memory (which the program
 * may have overwritten) and never by a scan: pz.of_rec maps the record's index in the
 * registry's arena to its slot + 1 (0: none), written by fill and cleared by release, and the
 * slot it names is checked to hold that record and address. One load and one check, for an
 * object with a slot, with none, or with every word overwritten. */
#include "poison.h"
#include "options.h"
#include "registry.h"
#include "../../common/cpu_relax.h"

#include <string.h>
#include <sys/mman.h>

#define CLAIMING ((struct wref__rec *)1)   /* a slot being filled in: matches nothing */

struct slot {
    struct wref__rec *rec;   /* atomic; NULL: free */
    uintptr_t addr;          /* atomic; the object's address, valid while rec is set */
    uint32_t next;           /* pz.lock: the next free slot + 1 while this one is free */
};

/* Records pz.of_rec covers: indices [0, OF_REC_MAX) of the registry's arena (16 GiB of 72-byte
 * records is 238 M). A record beyond it gets no slot (0xDD only), so it is never looked up. */
#define OF_REC_MAX ((size_t)1 << 28)

static struct {
    uintptr_t base;          /* atomic; 0: no region */
    struct slot *slots;      /* n slots, mmap'd */
    uint32_t *of_rec;        /* atomic entries: a record's slot + 1, by its arena index (0: none) */
    uint32_t n;
    uint32_t lock;           /* spinlock over free and fresh */
    uint32_t free;           /* the first free slot + 1; 0: none */
    uint32_t fresh;          /* slots [fresh, n) were never used */
} pz;

void wref__poison_init(void)
{
    if (pz.base)
        return;
    uint32_t n = wref__opt.poison_slots;
    size_t bytes = (size_t)n * WREF__POISON_STRIDE;
    void *r = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED)
        return;
    void *t = mmap(NULL, (size_t)n * sizeof(struct slot), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    /* 1 GiB reserved, a page touched per 1024 records that were ever poisoned */
    void *o = t == MAP_FAILED ? MAP_FAILED
                              : mmap(NULL, OF_REC_MAX * sizeof(uint32_t), PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (o == MAP_FAILED) {
        if (t != MAP_FAILED)
            munmap(t, (size_t)n * sizeof(struct slot));
        munmap(r, bytes);
        return;
    }
    pz.slots = t;
    pz.of_rec = o;
    pz.n = n;
    __atomic_store_n(&pz.base, (uintptr_t)r, __ATOMIC_RELEASE);
}

static void lock(void)
{
    while (__atomic_exchange_n(&pz.lock, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&pz.lock, __ATOMIC_RELAXED))
            wref__cpu_relax();
}

static void unlock(void)
{
    __atomic_store_n(&pz.lock, 0, __ATOMIC_RELEASE);
}

void wref__poison_fork(bool prepare)
{
    if (prepare)
        lock();
    else
        unlock();
}

/* A free slot, claimed (rec == CLAIMING), or -1 when all are taken. */
static long claim(void)
{
    long k = -1;
    lock();
    if (pz.free) {
        k = (long)pz.free - 1;
        pz.free = pz.slots[k].next;
    } else if (pz.fresh < pz.n) {
        k = (long)pz.fresh++;
    }
    if (k >= 0)
        __atomic_store_n(&pz.slots[k].rec, CLAIMING, __ATOMIC_RELAXED);
    unlock();
    return k;
}

static void give_back(long k)
{
    lock();
    __atomic_store_n(&pz.slots[k].rec, NULL, __ATOMIC_RELEASE);
    pz.slots[k].next = pz.free;
    pz.free = (uint32_t)k + 1;
    unlock();
}

static inline uintptr_t value_of(size_t k)
{
    return pz.base + k * WREF__POISON_STRIDE + WREF__POISON_BIAS;
}

static inline uintptr_t first_word(uintptr_t ob)
{
    return (ob + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
}

/* rec's entry in pz.of_rec (the region exists), or NULL: a record outside the arena's first
 * OF_REC_MAX (or none) has no entry and so never a slot. */
static inline uint32_t *of_rec_entry(const struct wref__rec *rec)
{
    uintptr_t a = (uintptr_t)wref__rec_arena, r = (uintptr_t)rec;
    if (rec == NULL || !a || r < a)
        return NULL;
    size_t i = (r - a) / sizeof(struct wref__rec);
    return i < OF_REC_MAX ? &pz.of_rec[i] : NULL;
}

/* The slot holding rec for the object at ob, or -1. O(1): rec's entry, checked against the
 * slot (an entry left by a fill whose release never came names a slot that is free or
 * another record's: no match). */
static long slot_of(uintptr_t ob, const struct wref__rec *rec)
{
    if (!__atomic_load_n(&pz.base, __ATOMIC_ACQUIRE))
        return -1;
    uint32_t *e = of_rec_entry(rec);
    uint32_t k1 = e ? __atomic_load_n(e, __ATOMIC_RELAXED) : 0;
    if (!k1 || k1 > pz.n)
        return -1;
    long k = (long)k1 - 1;
    return __atomic_load_n(&pz.slots[k].rec, __ATOMIC_ACQUIRE) == rec &&
                   __atomic_load_n(&pz.slots[k].addr, __ATOMIC_RELAXED) == ob
               ? k
               : -1;
}

bool wref__poison_fill(void *ob, size_t size, struct wref__rec *rec)
{
    memset(ob, WREF__POISON_BYTE, size);
    uintptr_t first = first_word((uintptr_t)ob);
    if (!__atomic_load_n(&pz.base, __ATOMIC_ACQUIRE) || first + sizeof first > (uintptr_t)ob + size)
        return true;   /* no region, or no word a pointer could be read from */
    uint32_t *e = of_rec_entry(rec);
    if (!e)
        return true;   /* no record (or one with no entry): 0xDD only */
    long k = claim();
    if (k < 0)
        return false;
    __atomic_store_n(&pz.slots[k].addr, (uintptr_t)ob, __ATOMIC_RELAXED);
    __atomic_store_n(&pz.slots[k].rec, rec, __ATOMIC_RELEASE);   /* published: addr is set */
    __atomic_store_n(e, (uint32_t)k + 1, __ATOMIC_RELAXED);
    uintptr_t v = value_of((size_t)k);
    for (uintptr_t w = first; w + sizeof v <= (uintptr_t)ob + size; w += sizeof v)
        memcpy((void *)w, &v, sizeof v);
    return true;
}

uintptr_t wref__poison_value(const void *ob, const struct wref__rec *rec)
{
    long k = slot_of((uintptr_t)ob, rec);
    return k < 0 ? 0 : value_of((size_t)k);
}

long wref__poison_check(const void *ob, size_t size, const struct wref__rec *rec)
{
    const unsigned char *p = ob;
    long k = slot_of((uintptr_t)ob, rec);
    uintptr_t v = k < 0 ? 0 : value_of((size_t)k);
    uintptr_t first = v ? first_word((uintptr_t)ob) : UINTPTR_MAX;
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
    if (k >= 0) {
        __atomic_store_n(of_rec_entry(rec), 0, __ATOMIC_RELAXED);
        give_back(k);
    }
}

struct wref__rec *wref__poison_find(uintptr_t addr, uintptr_t *obj)
{
    uintptr_t base = __atomic_load_n(&pz.base, __ATOMIC_ACQUIRE);
    if (!base || addr < base || addr - base >= (uintptr_t)pz.n * WREF__POISON_STRIDE)
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

struct wref__rec *wref__poison_decode(uintptr_t word, uintptr_t *obj, unsigned *skew)
{
    uintptr_t base = __atomic_load_n(&pz.base, __ATOMIC_ACQUIRE);
    if (!base)
        return NULL;
    for (unsigned k = 0; k < sizeof word; k++) {
        /* a read k bytes past a word boundary gives the poison rotated right by 8k bits */
        uintptr_t v = k ? word << (8 * k) | word >> (8 * (sizeof word - k)) : word;
        if (v < base + WREF__POISON_BIAS || (v - base - WREF__POISON_BIAS) % WREF__POISON_STRIDE)
            continue;
        uintptr_t slot = (v - base - WREF__POISON_BIAS) / WREF__POISON_STRIDE;
        if (slot >= pz.n)
            continue;
        struct wref__rec *r = __atomic_load_n(&pz.slots[slot].rec, __ATOMIC_ACQUIRE);
        if (!r || r == CLAIMING)
            continue;
        *obj = __atomic_load_n(&pz.slots[slot].addr, __ATOMIC_ACQUIRE);
        *skew = k;
        return r;
    }
    return NULL;
}
