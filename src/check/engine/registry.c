/* registry.c: one record per object, found by address in O(1).
 *
 * A fixed table of 2^20 buckets (reserved lazily by mmap) chained through rec->hash_next,
 * guarded by 1024 striped spinlocks (bucket i uses lock i % 1024). Records come from mmap'd
 * slabs, never from the program's allocator. A record leaves the table when its memory is
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
#define SLAB_BYTES (1u << 20)
#define GRAVEYARD_MAX 65536u

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
            void *p = mmap(NULL, SLAB_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
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
    pthread_once(&reg_once, reg_init);
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
    uint32_t b = bucket_of(r->addr);
    struct bucket_lock *l = &reg.locks[b % N_LOCKS];
    bucket_lock(l);
    r->hash_next = reg.buckets[b];
    reg.buckets[b] = r;
    bucket_unlock(l);
    __atomic_fetch_add(&reg.live, 1, __ATOMIC_RELAXED);
    return r;
}

int wref__registry_with(const void *ob, int (*fn)(wref__rec *rec, void *arg), void *arg)
{
    pthread_once(&reg_once, reg_init);
    if (!reg.buckets)
        return fn(NULL, arg);
    uintptr_t a = (uintptr_t)ob;
    uint32_t b = bucket_of(a);
    struct bucket_lock *l = &reg.locks[b % N_LOCKS];
    bucket_lock(l);
    wref__rec *r = reg.buckets[b];
    while (r && r->addr != a)
        r = r->hash_next;
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
    rec->state = WREF__GONE;
    bucket_unlock(l);
    __atomic_fetch_sub(&reg.live, 1, __ATOMIC_RELAXED);
    return true;
}

void wref__registry_each(void (*fn)(wref__rec *rec, void *arg), void *arg)
{
    pthread_once(&reg_once, reg_init);
    if (!reg.buckets)
        return;
    for (unsigned i = 0; i < N_LOCKS; i++) {
        bucket_lock(&reg.locks[i]);
        for (unsigned b = i; b < N_BUCKETS; b += N_LOCKS) {
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
