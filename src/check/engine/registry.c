/* registry.c: one record per object, found by address in O(1).
 *
 * A fixed table of 2^20 buckets (reserved lazily by mmap) chained through rec->hash_next,
 * guarded by 1024 striped spinlocks (bucket i uses lock i % 1024). Records come from mmap'd
 * slabs, never from the program's allocator.
 *
 * The address index: the bucket chains are walked only as a fallback. The record of the object
 * at address a is found without hashing through a two-level table indexed by a's 16-byte
 * granule (a region of 256 MiB of address space per leaf, leaves mmap'd NORESERVE on the first
 * object in their region), whose entry is the record's 32-bit index in one reserved arena of
 * records. No object memory is read (an invalid pointer may point anywhere, even into
 * inaccessible pages). An entry is written under the object's bucket lock (set when the record
 * enters the table, cleared when it leaves), so under that lock it is exact; read without the
 * lock (wref__registry_peek) it names a record whose addr is then compared with a. Where no
 * leaf could be mapped (LEAF_NONE), or a record lies outside the arena (IDX_HASHED), the
 * bucket chains answer. A record leaves the table when its memory is
 * returned (after the quarantine, and after the pins of heap.c while it has open borrows), then
 * waits in the graveyard (bounded FIFO) before it is reused, so that a reader that found it
 * just before (the fault handler, through the guard table) never sees it turn into another
 * object's record. */
#include "registry.h"
#include "core.h"
#include "model.h"
#include "../../common/cpu_relax.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

#define BUCKET_BITS 20
#define N_BUCKETS (1u << BUCKET_BITS)
#define N_LOCKS 1024u
#define SLAB_BYTES (16384 * sizeof(wref__rec))   /* whole records: arena indexes are offset / size */
#define GRAVEYARD_MAX 65536u

#define GRAN_SHIFT 4                                      /* objects start >= 48 bytes apart */
#define REGION_SHIFT 28                                   /* 256 MiB of addresses per leaf */
#define LEAF_ENTRIES ((size_t)1 << (REGION_SHIFT - GRAN_SHIFT))   /* 2^24: a 64 MiB leaf */
#define TOP_ENTRIES ((size_t)1 << (48 - REGION_SHIFT))            /* 48-bit addresses */
#define LEAF_NONE ((uint32_t *)1)   /* this region's leaf could not be mapped: chains only */
#define IDX_HASHED UINT32_MAX       /* the record is outside the arena: look in its chain */
#define ARENA_BYTES ((size_t)16 << 30)                    /* reserved (PROT_NONE) for records */

/* Bucket locks are spinlocks: every API call takes one for a few dozen instructions, where a
 * pthread mutex costs about 50 instructions a pair. One cache line each: no false sharing. */
struct bucket_lock {
    uint32_t locked;   /* atomic: 0 free, 1 held */
    char pad_[60];
};

static void bucket_lock_slow(struct bucket_lock *l)
{
    for (unsigned spins = 0;; spins++) {
        if (!__atomic_load_n(&l->locked, __ATOMIC_RELAXED) &&
            !__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
            return;
        if (spins < 64)
            wref__cpu_relax();   /* portable: common/cpu_relax.h */
        else
            sched_yield();   /* the holder may be descheduled: 2 cores, many threads */
    }
}

static inline void bucket_lock(struct bucket_lock *l)
{
    if (__builtin_expect(__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE), 0))
        bucket_lock_slow(l);
}

static inline void bucket_unlock(struct bucket_lock *l)
{
    __atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

static struct {
    wref__rec **buckets;                 /* N_BUCKETS heads */
    struct bucket_lock locks[N_LOCKS];
    pthread_mutex_t alloc_lock;          /* free list, slab, graveyard */
    wref__rec *free_list;
    char *slab;
    size_t slab_left;
    wref__rec_fifo grave;
    size_t grave_n;
    uint64_t next_serial;                /* atomic */
    size_t live;                         /* atomic: records in the table */
    bool degraded;
    uint32_t **top;                      /* atomic: TOP_ENTRIES leaves (NULL: none yet) */
    /* atomic: bit r set once a record entered a bucket of row r (buckets r*N_LOCKS ...
     * r*N_LOCKS + N_LOCKS-1), never cleared: registry_each walks only those rows, so the exit
     * census of a program with few objects does not visit 2^20 empty buckets (20 M
     * instructions, most of a short program's run under the checker) */
    uint64_t rows[N_BUCKETS / N_LOCKS / 64];
    char *arena;                         /* ARENA_BYTES reserved; slabs made accessible in order */
    size_t arena_used;                   /* alloc_lock */
    bool inited;                         /* atomic: reg_init done */
} reg = {.alloc_lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

/* Around fork: the allocation lock is held across it; the 1024 bucket locks are not (taking
 * them all is slow, and ThreadSanitizer allows a thread 64 locks at once). Instead the child
 * re-initializes them: a bucket's chain is consistent at every store (insert links a filled
 * record with one store, remove unlinks with one), so a record another thread was updating
 * is at worst stale in the child, never a broken list. */
void wref__registry_fork(enum wref__fork_phase phase)
{
    if (phase == WREF__FORK_PREPARE) {
        pthread_mutex_lock(&reg.alloc_lock);
        return;
    }
    if (phase == WREF__FORK_CHILD)
        for (unsigned i = 0; i < N_LOCKS; i++)
            __atomic_store_n(&reg.locks[i].locked, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&reg.alloc_lock);
}

/* LeakSanitizer, when the program runs under it: the slabs hold the addresses of quarantined
 * object memory (malloc'd, freed by wref but not yet by us), which LSan would otherwise report
 * as leaked because it does not scan mmap'd memory. Found at run time, so it works whether or
 * not this library was built with a sanitizer. */
typedef void (*lsan_root_fn)(const void *p, size_t size);
static lsan_root_fn lsan_register_root;

static void reg_init(void)
{
    lsan_register_root = (lsan_root_fn)dlsym(RTLD_DEFAULT, "__lsan_register_root_region");
    void *p = mmap(NULL, N_BUCKETS * sizeof(wref__rec *), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    reg.buckets = p == MAP_FAILED ? NULL : p;
    /* the address index (see the top): without it every lookup walks a chain */
    void *a = mmap(NULL, ARENA_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    void *t = mmap(NULL, TOP_ENTRIES * sizeof(uint32_t *), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (a != MAP_FAILED && t != MAP_FAILED) {
        reg.arena = a;
        __atomic_store_n(&reg.top, (uint32_t **)t, __ATOMIC_RELEASE);
    } else {
        if (a != MAP_FAILED)
            munmap(a, ARENA_BYTES);
        if (t != MAP_FAILED)
            munmap(t, TOP_ENTRIES * sizeof(uint32_t *));
    }
    __atomic_store_n(&reg.inited, true, __ATOMIC_RELEASE);
}

static inline void reg_ensure(void)
{
    if (__builtin_expect(!__atomic_load_n(&reg.inited, __ATOMIC_ACQUIRE), 0))
        pthread_once(&reg_once, reg_init);
}

/* ---- the address index ------------------------------------------------------------------- */

static inline wref__rec *rec_of_index(uint32_t i)
{
    return (wref__rec *)(reg.arena + (size_t)(i - 1) * sizeof(wref__rec));
}

/* r's index in the arena (1, 2, ...), or IDX_HASHED for a record outside it. */
static inline uint32_t index_of(const wref__rec *r)
{
    uintptr_t off = (uintptr_t)r - (uintptr_t)reg.arena;
    if (!reg.arena || (uintptr_t)r < (uintptr_t)reg.arena || off >= ARENA_BYTES)
        return IDX_HASHED;
    return (uint32_t)(off / sizeof(wref__rec)) + 1;
}

enum { SH_MISS, SH_HIT, SH_CHAIN };

/* Where the index says the record of address a is: SH_HIT with *out (compare its addr with a),
 * SH_MISS (no record), or SH_CHAIN (ask the bucket chain). Lock-free, allocation-free. */
static inline int index_find(uintptr_t a, wref__rec **out)
{
    uint32_t **top = __atomic_load_n(&reg.top, __ATOMIC_ACQUIRE);
    size_t region = a >> REGION_SHIFT;
    if (!top || region >= TOP_ENTRIES)
        return SH_CHAIN;
    uint32_t *leaf = __atomic_load_n(&top[region], __ATOMIC_ACQUIRE);
    if (!leaf)
        return SH_MISS;   /* no object was ever made in this region */
    if (leaf == LEAF_NONE)
        return SH_CHAIN;
    uint32_t i = __atomic_load_n(&leaf[(a >> GRAN_SHIFT) & (LEAF_ENTRIES - 1)], __ATOMIC_ACQUIRE);
    if (!i)
        return SH_MISS;
    if (i == IDX_HASHED)
        return SH_CHAIN;
    *out = rec_of_index(i);
    return SH_HIT;
}

/* The index entry for address a, its leaf mapped now if need be; NULL when a's region has no
 * index (the chains are then its only index, for ever). */
static uint32_t *index_slot(uintptr_t a)
{
    uint32_t **top = __atomic_load_n(&reg.top, __ATOMIC_ACQUIRE);
    size_t region = a >> REGION_SHIFT;
    if (!top || region >= TOP_ENTRIES)
        return NULL;
    uint32_t *leaf = __atomic_load_n(&top[region], __ATOMIC_ACQUIRE);
    if (__builtin_expect(!leaf, 0)) {
        pthread_mutex_lock(&reg.alloc_lock);
        leaf = top[region];
        if (!leaf) {
            void *p = mmap(NULL, LEAF_ENTRIES * sizeof(uint32_t), PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            leaf = p == MAP_FAILED ? LEAF_NONE : p;
            __atomic_store_n(&top[region], leaf, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&reg.alloc_lock);
    }
    return leaf == LEAF_NONE ? NULL : &leaf[(a >> GRAN_SHIFT) & (LEAF_ENTRIES - 1)];
}

/* Under a's bucket lock: the record of a in the table, or NULL. */
static inline wref__rec *find_locked(uintptr_t a, uint32_t b)
{
    wref__rec *r = NULL;
    switch (index_find(a, &r)) {
    case SH_HIT:
        return r->addr == a ? r : NULL;   /* another granule-mate's record: none at a */
    case SH_MISS:
        return NULL;
    default:
        r = reg.buckets[b];
        while (r && r->addr != a)
            r = r->hash_next;
        return r;
    }
}

wref__rec *wref__registry_peek(const void *ob)
{
    if (!__atomic_load_n(&reg.inited, __ATOMIC_ACQUIRE))
        return NULL;
    wref__rec *r;
    if (index_find((uintptr_t)ob, &r) != SH_HIT || r->addr != (uintptr_t)ob)
        return NULL;
    return r;
}

static inline uint32_t bucket_of(uintptr_t addr)
{
    return (uint32_t)(((uint64_t)(addr >> 4) * 0x9E3779B97F4A7C15ull) >> (64 - BUCKET_BITS));
}

static wref__rec *rec_alloc(void)
{
    wref__rec *r = NULL;
    pthread_mutex_lock(&reg.alloc_lock);
    if (reg.free_list) {
        r = reg.free_list;
        reg.free_list = r->fifo_next;
    } else {
        if (reg.slab_left < sizeof(wref__rec)) {
            void *p = MAP_FAILED;
            if (reg.arena && reg.arena_used + SLAB_BYTES <= ARENA_BYTES) {   /* the arena first */
                p = reg.arena + reg.arena_used;
                if (mprotect(p, SLAB_BYTES, PROT_READ | PROT_WRITE) == 0)
                    reg.arena_used += SLAB_BYTES;
                else
                    p = MAP_FAILED;
            }
            if (p == MAP_FAILED)   /* records outside the arena are found through their chains */
                p = mmap(NULL, SLAB_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p != MAP_FAILED) {
                reg.slab = p;
                reg.slab_left = SLAB_BYTES;
                if (lsan_register_root)
                    lsan_register_root(p, SLAB_BYTES);
            }
        }
        if (reg.slab_left >= sizeof(wref__rec)) {
            r = (wref__rec *)reg.slab;
            reg.slab += sizeof(wref__rec);
            reg.slab_left -= sizeof(wref__rec);
        }
    }
    pthread_mutex_unlock(&reg.alloc_lock);
    return r;
}

wref__rec *wref__registry_add(uintptr_t addr, const void *type, uint32_t size)
{
    reg_ensure();
    wref__rec *r = reg.buckets ? rec_alloc() : NULL;
    if (!r) {
        static bool once;
        __atomic_store_n(&reg.degraded, true, __ATOMIC_RELAXED);
        wref__checker_warn(&once, "out of memory for object records; invalid-object and use-after-free checks are off from now on");
        return NULL;
    }
    *r = (wref__rec){0};
    r->addr = addr;
    r->serial = __atomic_add_fetch(&reg.next_serial, 1, __ATOMIC_RELAXED);
    r->type = type;
    r->size = size;
    r->state = WREF__ALIVE;
    r->tno_created = (uint16_t)wref__thread_no();
    r->st_created = wref__capture();
    uint32_t *slot = index_slot(r->addr);
    uint32_t idx = index_of(r);
    uint32_t b = bucket_of(r->addr);
    struct bucket_lock *l = &reg.locks[b % N_LOCKS];
    bucket_lock(l);
    r->hash_next = reg.buckets[b];
    reg.buckets[b] = r;
    uint64_t *row = &reg.rows[b / N_LOCKS / 64], bit = (uint64_t)1 << (b / N_LOCKS % 64);
    if (!(__atomic_load_n(row, __ATOMIC_RELAXED) & bit))
        __atomic_fetch_or(row, bit, __ATOMIC_RELAXED);   /* read back under the bucket locks */
    if (slot)   /* published after the record is filled in: peek's acquire load sees it whole */
        __atomic_store_n(slot, idx, __ATOMIC_RELEASE);
    bucket_unlock(l);
    __atomic_fetch_add(&reg.live, 1, __ATOMIC_RELAXED);
    return r;
}

int wref__registry_with(const void *ob, int (*fn)(wref__rec *rec, void *arg), void *arg)
{
    reg_ensure();
    if (!reg.buckets)
        return fn(NULL, arg);
    uintptr_t a = (uintptr_t)ob;
    uint32_t b = bucket_of(a);
    struct bucket_lock *l = &reg.locks[b % N_LOCKS];
    bucket_lock(l);
    wref__rec *r = find_locked(a, b);
    int res = fn(r, arg);
    bucket_unlock(l);
    return res;
}

bool wref__registry_retire(wref__rec *rec, bool force, unsigned *dropped)
{
    uint32_t b = bucket_of(rec->addr);
    struct bucket_lock *l = &reg.locks[b % N_LOCKS];
    bucket_lock(l);
    *dropped = (unsigned)__builtin_popcount(rec->borrow & WREF__BORROW_USED_ANY);
    if (*dropped && !force) {
        rec->borrow |= WREF__BORROW_PINNED;
        bucket_unlock(l);
        return false;
    }
    for (wref__rec **pp = &reg.buckets[b]; *pp; pp = &(*pp)->hash_next) {
        if (*pp == rec) {
            *pp = rec->hash_next;
            break;
        }
    }
    uint32_t *slot = index_slot(rec->addr);
    if (slot && __atomic_load_n(slot, __ATOMIC_RELAXED) == index_of(rec))
        __atomic_store_n(slot, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&rec->state, WREF__GONE, __ATOMIC_RELEASE);
    bucket_unlock(l);
    __atomic_fetch_sub(&reg.live, 1, __ATOMIC_RELAXED);
    return true;
}

void wref__registry_each(void (*fn)(wref__rec *rec, void *arg), void *arg)
{
    reg_ensure();
    if (!reg.buckets)
        return;
    uint64_t rows[N_BUCKETS / N_LOCKS / 64];
    bool any = false;
    for (unsigned w = 0; w < N_BUCKETS / N_LOCKS / 64; w++)
        any |= (rows[w] = __atomic_load_n(&reg.rows[w], __ATOMIC_RELAXED)) != 0;
    if (!any)
        return;
    for (unsigned i = 0; i < N_LOCKS; i++) {
        bucket_lock(&reg.locks[i]);
        /* a row set after the snapshot above holds records added meanwhile: a walk that
         * races with adds sees some of them either way */
        for (unsigned w = 0; w < N_BUCKETS / N_LOCKS / 64; w++)
            rows[w] |= __atomic_load_n(&reg.rows[w], __ATOMIC_RELAXED);
        for (unsigned b = i; b < N_BUCKETS; b += N_LOCKS) {
            if (!(rows[b / N_LOCKS / 64] & ((uint64_t)1 << (b / N_LOCKS % 64))))
                continue;   /* no record ever entered this row */
            /* the walk strides through memory: fetch the buckets and records ahead of it
             * (the leak census walks a million records in a few dozen milliseconds so) */
            if (b + 32 * N_LOCKS < N_BUCKETS)
                __builtin_prefetch(&reg.buckets[b + 32 * N_LOCKS]);
            if (b + 16 * N_LOCKS < N_BUCKETS) {
                wref__rec *ahead = __atomic_load_n(&reg.buckets[b + 16 * N_LOCKS], __ATOMIC_RELAXED);
                if (ahead)
                    __builtin_prefetch(ahead);
            }
            for (wref__rec *r = reg.buckets[b]; r; r = r->hash_next)
                fn(r, arg);
        }
        bucket_unlock(&reg.locks[i]);
    }
}

bool wref__registry_degraded(void)
{
    return __atomic_load_n(&reg.degraded, __ATOMIC_RELAXED);
}

size_t wref__registry_live_count(void)
{
    return __atomic_load_n(&reg.live, __ATOMIC_RELAXED);
}

/* The graveyard is also hashed by serial, chained through hash_next (free once a record has
 * left the table), so that finding a record in it is O(1), not a walk of 65,536 records.
 * Under alloc_lock. */
static wref__rec *grave_by_serial[GRAVEYARD_MAX];

static wref__rec **grave_chain(uint64_t serial)
{
    return &grave_by_serial[(serial * 0x9E3779B97F4A7C15ull >> 32) % GRAVEYARD_MAX];
}

void wref__graveyard_add(wref__rec *rec)
{
    pthread_mutex_lock(&reg.alloc_lock);
    wref__fifo_push(&reg.grave, rec);
    wref__rec **chain = grave_chain(rec->serial);
    rec->hash_next = *chain;
    *chain = rec;
    if (++reg.grave_n > GRAVEYARD_MAX) {
        wref__rec *old = wref__fifo_pop(&reg.grave);
        reg.grave_n--;
        for (wref__rec **pp = grave_chain(old->serial); *pp; pp = &(*pp)->hash_next)
            if (*pp == old) {
                *pp = old->hash_next;
                break;
            }
        old->hash_next = NULL;
        old->fifo_next = reg.free_list;
        reg.free_list = old;
    }
    pthread_mutex_unlock(&reg.alloc_lock);
}

bool wref__graveyard_find(uint64_t serial, wref__rec_copy *out)
{
    bool found = false;
    pthread_mutex_lock(&reg.alloc_lock);
    for (wref__rec *r = *grave_chain(serial); r; r = r->hash_next) {
        if (r->serial == serial) {
            *out = wref__rec_snapshot(r);
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&reg.alloc_lock);
    return found;
}

const char *wref__type_name(const wref__rec_copy *r)
{
    return r ? wref__model_type_name(r->type) : "?";
}
