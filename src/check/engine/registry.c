/* registry.c: one record per object, found by address in O(1).
 *
 * Records come from one reserved arena of mmap'd slabs (never from the program's allocator).
 * The record of the object at address a is found without hashing through the address index: a
 * two-level table indexed by a's 32-byte granule (two objects' chunks start at least 32 bytes
 * apart, heap.c: round16(size) + 16, so a granule holds at most one object's start; a region
 * of 256 MiB of address space per leaf, leaves mmap'd NORESERVE on the first object in their
 * region), whose entry is the record's 32-bit index in the arena. No object memory is read (an
 * invalid pointer may point anywhere, even into inaccessible pages). The index is the only
 * table: an object whose record could not be made (arena exhausted) or whose region has no
 * leaf is not tracked, and the registry is degraded (stays quiet about unknown pointers).
 *
 * Locks: 1024 striped spinlocks, the stripe a hash of the address. An index entry is written
 * under its address's stripe lock (set when the record enters the index, cleared when it
 * leaves), so under that lock it is exact; read without the lock (wref__registry_peek) it
 * names a record whose addr is then compared with a. A record leaves the index when its memory
 * is returned (after the quarantine, and after the pins of heap.c while it has open borrows),
 * then waits in the graveyard (bounded FIFO) before it is reused, so that a reader that found
 * it just before (the fault handler, through the guard table) never sees it turn into another
 * object's record. */
#include "registry.h"
#include "core.h"
#include "model.h"
#include "../../common/cpu_relax.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

#define N_LOCKS 1024u
#define SLAB_BYTES (16384 * sizeof(wref__rec))   /* whole records: arena indexes are offset / size */
#define GRAVEYARD_MAX 65536u

#define GRAN_SHIFT WREF__IDX_GRAN_SHIFT                   /* objects start >= 32 bytes apart */
#define REGION_SHIFT WREF__IDX_REGION_SHIFT               /* 256 MiB of addresses per leaf */
#define LEAF_ENTRIES WREF__IDX_LEAF                       /* 2^23: a 32 MiB leaf */
#define TOP_ENTRIES WREF__IDX_TOP                         /* 48-bit addresses */
#define LEAF_NONE ((uint32_t *)1)   /* this region's leaf could not be mapped: not tracked */
#define ARENA_BYTES ((size_t)16 << 30)                    /* reserved (PROT_NONE) for records */

/* Stripe locks are spinlocks: every API call takes one for a few dozen instructions, where a
 * pthread mutex costs about 50 instructions a pair. One cache line each: no false sharing. */
struct bucket_lock {
    uint32_t locked;   /* atomic: 0 free, 1 held */
    char pad_[60];
};

static __attribute__((noinline)) void bucket_lock_slow(struct bucket_lock *l)
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
    struct bucket_lock locks[N_LOCKS];
    struct bucket_lock alloc_lock;       /* free list, slab, graveyard, leaves: a spinlock too
                                          * (held for a few stores but once per slab or leaf) */
    wref__rec *free_list;
    char *slab;
    size_t slab_left;
    wref__rec_fifo grave;
    size_t grave_n;
    uint64_t next_serial;                /* atomic */
    size_t live;                         /* atomic: records in the index */
    bool degraded;
    size_t arena_used;                   /* alloc_lock */
    uint32_t n_made;                     /* atomic: records handed out of the slabs (the walk's end) */
    bool inited;                         /* atomic: reg_init done */
} reg;

/* The index's top level: 8 MiB of zeroes (bss) until objects are made, a page touched per
 * 512 regions in use. Static, so that a lookup needs no initialization check. */
uint32_t *wref__index_top[WREF__IDX_TOP];
char *wref__rec_arena;   /* ARENA_BYTES reserved; slabs made accessible in order */

static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

/* Around fork: the allocation lock is held across it (and released in both processes); the 1024 stripe locks are not (taking
 * them all is slow, and ThreadSanitizer allows a thread 64 locks at once). Instead the child
 * re-initializes them: an index entry is one store, so a record another thread was updating
 * is at worst stale in the child, never half in the index. */
void wref__registry_fork(enum wref__fork_phase phase)
{
    if (phase == WREF__FORK_PREPARE) {
        bucket_lock(&reg.alloc_lock);
        return;
    }
    if (phase == WREF__FORK_CHILD)
        for (unsigned i = 0; i < N_LOCKS; i++)
            __atomic_store_n(&reg.locks[i].locked, 0, __ATOMIC_RELAXED);
    bucket_unlock(&reg.alloc_lock);
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
    /* the arena: without it nothing is tracked (degraded) */
    void *a = mmap(NULL, ARENA_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (a != MAP_FAILED)
        wref__rec_arena = a;
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
    return (wref__rec *)(wref__rec_arena + (size_t)(i - 1) * sizeof(wref__rec));
}

/* r's index in the arena (1, 2, ...); every record is in the arena (rec_alloc). */
static inline uint32_t index_of(const wref__rec *r)
{
    return (uint32_t)(((uintptr_t)r - (uintptr_t)wref__rec_arena) / sizeof(wref__rec)) + 1;
}

/* The record the index names for address a (compare its addr with a), or NULL. Lock-free,
 * allocation-free. */
static inline wref__rec *index_find(uintptr_t a)
{
    size_t region = a >> REGION_SHIFT;
    if (region >= TOP_ENTRIES)
        return NULL;
    uint32_t *leaf = __atomic_load_n(&wref__index_top[region], __ATOMIC_ACQUIRE);
    if ((uintptr_t)leaf <= 1)
        return NULL;   /* no object was ever made (or tracked) in this region */
    uint32_t i = __atomic_load_n(&leaf[(a >> GRAN_SHIFT) & (LEAF_ENTRIES - 1)], __ATOMIC_ACQUIRE);
    return i ? rec_of_index(i) : NULL;
}

/* The leaf of a region that has none yet, mapped now (LEAF_NONE when it cannot be). */
static __attribute__((noinline)) uint32_t *leaf_map(size_t region)
{
    bucket_lock(&reg.alloc_lock);
    uint32_t *leaf = __atomic_load_n(&wref__index_top[region], __ATOMIC_RELAXED);
    if (!leaf) {
        void *p = mmap(NULL, LEAF_ENTRIES * sizeof(uint32_t), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        leaf = p == MAP_FAILED ? LEAF_NONE : p;
        __atomic_store_n(&wref__index_top[region], leaf, __ATOMIC_RELEASE);
    }
    bucket_unlock(&reg.alloc_lock);
    return leaf;
}

/* The index entry for address a, its leaf mapped now if need be; NULL when a's region has no
 * index (its objects are not tracked). */
static inline uint32_t *index_slot(uintptr_t a)
{
    size_t region = a >> REGION_SHIFT;
    if (!wref__rec_arena || region >= TOP_ENTRIES)
        return NULL;
    uint32_t *leaf = __atomic_load_n(&wref__index_top[region], __ATOMIC_ACQUIRE);
    if (__builtin_expect(!leaf, 0))
        leaf = leaf_map(region);
    return leaf == LEAF_NONE ? NULL : &leaf[(a >> GRAN_SHIFT) & (LEAF_ENTRIES - 1)];
}

/* Under a's stripe lock: the record of a in the index, or NULL. */
static inline wref__rec *find_locked(uintptr_t a)
{
    wref__rec *r = index_find(a);
    return r && r->addr == a ? r : NULL;   /* else a granule-mate's record: none at a */
}

wref__rec *wref__registry_peek(const void *ob)
{
    return wref__registry_peek_inline(ob);
}

static inline struct bucket_lock *lock_of(uintptr_t addr)
{
    return &reg.locks[((uint64_t)(addr >> 4) * 0x9E3779B97F4A7C15ull) >> 54];   /* 1024 stripes */
}

static wref__rec *rec_alloc(void)
{
    wref__rec *r = NULL;
    bucket_lock(&reg.alloc_lock);
    if (reg.free_list) {
        r = reg.free_list;
        reg.free_list = r->fifo_next;
    } else {
        if (reg.slab_left < sizeof(wref__rec)) {
            void *p = MAP_FAILED;
            if (wref__rec_arena && reg.arena_used + SLAB_BYTES <= ARENA_BYTES) {
                p = wref__rec_arena + reg.arena_used;
                if (mprotect(p, SLAB_BYTES, PROT_READ | PROT_WRITE) == 0)
                    reg.arena_used += SLAB_BYTES;
                else
                    p = MAP_FAILED;
            }
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
            __atomic_store_n(&reg.n_made, index_of(r), __ATOMIC_RELEASE);
        }
    }
    bucket_unlock(&reg.alloc_lock);
    return r;
}

static wref__rec *not_tracked(wref__rec *r)
{
    static bool once;
    if (r) {   /* back to the free list */
        bucket_lock(&reg.alloc_lock);
        r->fifo_next = reg.free_list;
        reg.free_list = r;
        bucket_unlock(&reg.alloc_lock);
    }
    __atomic_store_n(&reg.degraded, true, __ATOMIC_RELAXED);
    wref__checker_warn(&once, "out of memory for object records; invalid-object and use-after-free checks are off from now on");
    return NULL;
}

wref__rec *wref__registry_add(uintptr_t addr, const void *type, uint32_t size)
{
    reg_ensure();
    wref__rec *r = rec_alloc();
    uint32_t *slot = r ? index_slot(addr) : NULL;
    if (!slot)
        return not_tracked(r);
    /* every field but addr by plain stores: the walk (registry_each) reads a record's addr
     * without its lock, and anything else only once the index names it (under the lock) */
    r->fifo_next = NULL;
    r->serial = __atomic_add_fetch(&reg.next_serial, 1, __ATOMIC_RELAXED);
    r->type = type;
    r->size = size;
    __atomic_store_n(&r->state, (uint8_t)WREF__ALIVE, __ATOMIC_RELAXED);
    r->reported = r->guarded = r->borrow = 0;
    r->tno_created = (uint16_t)wref__thread_no();
    r->tno_destroyed = r->tno_cleared = 0;
    r->st_created = wref__capture();
    r->st_cleared = r->st_destroyed = 0;
    for (unsigned i = 0; i < WREF__BORROWERS; i++) {
        r->tno_borrow[i] = 0;
        r->st_borrow[i] = 0;
    }
    __atomic_store_n(&r->addr, addr, __ATOMIC_RELAXED);
    struct bucket_lock *l = lock_of(addr);
    bucket_lock(l);
    /* published after the record is filled in: peek's acquire load sees it whole */
    __atomic_store_n(slot, index_of(r), __ATOMIC_RELEASE);
    bucket_unlock(l);
    __atomic_fetch_add(&reg.live, 1, __ATOMIC_RELAXED);
    return r;
}

/* No initialization needed: until the first record, the index is all zeroes. */
int wref__registry_with(const void *ob, int (*fn)(wref__rec *rec, void *arg), void *arg)
{
    uintptr_t a = (uintptr_t)ob;
    struct bucket_lock *l = lock_of(a);
    bucket_lock(l);
    int res = fn(find_locked(a), arg);
    bucket_unlock(l);
    return res;
}

bool wref__registry_retire(wref__rec *rec, bool force, unsigned *dropped)
{
    struct bucket_lock *l = lock_of(rec->addr);
    bucket_lock(l);
    *dropped = (unsigned)__builtin_popcount(rec->borrow & WREF__BORROW_USED_ANY);
    if (*dropped && !force) {
        __atomic_store_n(&rec->borrow, (uint8_t)(rec->borrow | WREF__BORROW_PINNED), __ATOMIC_RELAXED);   /* borrow.h */
        bucket_unlock(l);
        return false;
    }
    uint32_t *slot = index_slot(rec->addr);
    if (slot && __atomic_load_n(slot, __ATOMIC_RELAXED) == index_of(rec))
        __atomic_store_n(slot, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&rec->state, WREF__GONE, __ATOMIC_RELEASE);
    bucket_unlock(l);
    __atomic_fetch_sub(&reg.live, 1, __ATOMIC_RELAXED);
    return true;
}

/* The records in the arena's order (creation order, but for reuse), each checked under its
 * address's lock to be the one the index names for it: a record not yet published, retired,
 * or reused meanwhile for another address is skipped. Sequential through the slabs, one
 * index load per record. */
void wref__registry_each(void (*fn)(wref__rec *rec, void *arg), void *arg)
{
    uint32_t n = __atomic_load_n(&reg.n_made, __ATOMIC_ACQUIRE);
    for (uint32_t i = 1; i <= n; i++) {
        wref__rec *r = rec_of_index(i);
        uintptr_t a = __atomic_load_n(&r->addr, __ATOMIC_RELAXED);
        if (!a)
            continue;
        struct bucket_lock *l = lock_of(a);
        bucket_lock(l);
        if (index_find(a) == r && __atomic_load_n(&r->addr, __ATOMIC_RELAXED) == a)
            fn(r, arg);
        bucket_unlock(l);
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

void wref__graveyard_add(wref__rec *rec)
{
    bucket_lock(&reg.alloc_lock);
    wref__fifo_push(&reg.grave, rec);
    if (++reg.grave_n > GRAVEYARD_MAX) {
        wref__rec *old = wref__fifo_pop(&reg.grave);
        reg.grave_n--;
        old->fifo_next = reg.free_list;
        reg.free_list = old;
    }
    bucket_unlock(&reg.alloc_lock);
}

const char *wref__type_name(const wref__rec_copy *r)
{
    return r ? wref__model_type_name(r->type) : "?";
}
