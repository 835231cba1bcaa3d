/* origins.c: where each live object-domain block was allocated (python_create=1), so
 * that a report about a watched object shows where it was created.
 *
 * The allocator hook (objects.c) reports every allocation, resize and free of the object
 * domain here; a watched object's record takes its block's origin when it starts being watched
 * (objects.c), by which time the block is long allocated, so every live block must have one.
 *
 * Sites. Unwinding the C stack at each allocation would cost a microsecond or more (CPython is
 * built without frame pointers), so a block's origin is a *site*: (the return address into
 * the hook's caller, the innermost Python code object and its instruction, the size). The
 * first allocation at a site captures the C stack (the engine's capture) and the Python frames
 * (read from the thread state, pystack.h wref__py_frames_raw: nothing allocated, no Python
 * code run inside the hook); later allocations at the site reuse them. So a create stack is
 * exact for the first block allocated at its site and, for the others, that first one's: its
 * outer frames (C callers above the hook's caller, Python callers of the innermost function)
 * may differ. The site keeps references to its code objects (its key's and its frames'), so a
 * code object's address in a key is never another one's. The Python frames become a pystack.h
 * id at the first report-side use (wref__py_origin_get), outside the hook.
 *
 * Sites live in mmap'd chunks of 4096 (never moved, at most 1M), found through an
 * open-addressing index of their numbers, doubled at half full.
 *
 * Blocks. block -> (site, allocating thread), packed in 32 bits (site number: 20 bits, thread
 * number: 12), in the engine's radix map (addrmap.h): no lock, and the blocks a pool hands
 * out one after another share cache lines of the map (a hash table keyed by address took a
 * cache miss on nearly every allocation and free: 13% of test_weakref's time under the
 * checker on 3.13). A block the map cannot hold (not 16-byte aligned, above 2^48, a thread
 * numbered 4095 or more, no memory for its range) goes to an open-addressing table instead:
 * 16 bytes per block, mmap'd, doubled at half full, linear probing with backward-shift
 * deletion. A live block is in exactly one of the two.
 *
 * Locking: the site index and the table take a spinlock; the object domain is called with the
 * GIL held, so it is uncontended; it is there for interpreters with a GIL each and for a
 * faulty extension that frees without the GIL. The map needs none (the allocator orders a
 * block's allocation before its free). Nothing in this file allocates through the object
 * domain, so the hook never re-enters it. */
#include "origins.h"

#include "../engine/addrmap.h"
#include "frontend.h"
#include "pystack.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CHUNK_BITS 12                 /* sites are kept in chunks of 4096, never moved */
#define CHUNKS 256                    /* at most 1M sites (SITE_NONE - 1) */
#define SITES_MIN_BITS 12             /* the site index: open addressing, doubled at half full */
#define BLOCKS_MIN_BITS 16

#define SITE_BITS 20                  /* a map value: (thread number << SITE_BITS) | site number */
#define SITE_NONE ((1u << SITE_BITS) - 1)             /* in a map value: no site (could not be made) */
#define MAP_TNO_LIMIT ((1u << (32 - SITE_BITS)) - 1)  /* threads numbered from here on use the table */
_Static_assert(((size_t)CHUNKS << CHUNK_BITS) <= SITE_NONE + 1, "site numbers fit the map's field");

typedef struct site {
    uintptr_t ret, code, where;
    size_t size;
    bool used;
    wref__stack_id st;
    uint32_t py;          /* the Python stack's id once stored (atomic), 0 before */
    uint32_t n;           /* Python frames */
    py_object **codes;    /* referenced */
    int *lines;
} site;

/* The sites by key hash, open addressing, at most half full. Read without the lock: an entry
 * is stored (release) once its site is complete and never changes; a grown index is a new
 * one, published whole, and the old one stays mapped (a reader may still be probing it; the
 * old ones together are smaller than the current). */
typedef struct site_index {
    unsigned bits;
    uint32_t no[];   /* site numbers (index + 1); 0: empty; atomic */
} site_index;

typedef struct slot {
    uintptr_t block;      /* 0: empty */
    uint32_t site;        /* index + 1; 0: the site could not be made (table full) */
    uint32_t tno;
} slot;

static struct {
    int lock;
    bool on;
    site *chunks[CHUNKS];
    size_t n_sites;
    struct site_index *index;         /* published with a release store (atomic) */
    slot *t;
    unsigned bits;
    size_t used;
    uint64_t allocs, full, lost;
} o;

static wref__addrmap blocks;

static void lock(void)
{
    while (__atomic_exchange_n(&o.lock, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&o.lock, __ATOMIC_RELAXED))
            ;
}

static void unlock(void)
{
    __atomic_store_n(&o.lock, 0, __ATOMIC_RELEASE);
}

static void *map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static site *site_at(uint32_t no)
{
    return &o.chunks[(no - 1) >> CHUNK_BITS][(no - 1) & ((1u << CHUNK_BITS) - 1)];
}

/* The index uses the top bits: each word is folded in by a multiply, and the last step
 * (murmur3's finaliser) spreads every input bit over them. */
static uint64_t site_hash(uintptr_t ret, uintptr_t code, uintptr_t where, size_t size)
{
    uint64_t h = ((uint64_t)ret * 0x9E3779B97F4A7C15ull ^ code) * 0xC2B2AE3D27D4EB4Full;
    h = (h ^ where) * 0x9E3779B97F4A7C15ull ^ size;
    h = (h ^ h >> 33) * 0xFF51AFD7ED558CCDull;
    h = (h ^ h >> 33) * 0xC4CEB9FE1A85EC53ull;
    return h ^ h >> 33;
}

/* Doubles the site index (lock held); false when out of memory. */
static bool index_grow(void)
{
    unsigned bits = o.index ? o.index->bits + 1 : SITES_MIN_BITS;
    site_index *index = map(sizeof *index + (sizeof(uint32_t) << bits));
    if (!index)
        return false;
    index->bits = bits;
    size_t mask = ((size_t)1 << bits) - 1;
    for (uint32_t no = 1; no <= o.n_sites; no++) {
        const site *s = site_at(no);
        size_t i = (size_t)(site_hash(s->ret, s->code, s->where, s->size) >> (64 - bits));
        while (index->no[i])
            i = (i + 1) & mask;
        index->no[i] = no;
    }
    __atomic_store_n(&o.index, index, __ATOMIC_RELEASE);   /* the old one is not unmapped */
    return true;
}

static size_t bslot(uintptr_t b, unsigned bits)
{
    return (size_t)(((uint64_t)(b >> 4) * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}

static slot *table_map(unsigned bits)
{
    return map(sizeof(slot) << bits);
}

/* Doubles the table (lock held); false when out of memory. */
static bool grow(void)
{
    unsigned bits = o.t ? o.bits + 1 : BLOCKS_MIN_BITS;
    slot *t = table_map(bits);
    if (!t)
        return false;
    size_t mask = ((size_t)1 << bits) - 1;
    if (o.t) {
        for (size_t i = 0; i < (size_t)1 << o.bits; i++)
            if (o.t[i].block) {
                size_t j = bslot(o.t[i].block, bits);
                while (t[j].block)
                    j = (j + 1) & mask;
                t[j] = o.t[i];
            }
        munmap(o.t, sizeof(slot) << o.bits);
    }
    o.t = t;
    o.bits = bits;
    return true;
}

static inline void insert(uintptr_t block, uint32_t site_no, uint32_t tno)
{
    if ((!o.t || (o.used + 1) * 2 > (size_t)1 << o.bits) && !grow()) {
        o.lost++;
        return;
    }
    size_t mask = ((size_t)1 << o.bits) - 1, i = bslot(block, o.bits);
    while (o.t[i].block && o.t[i].block != block)
        i = (i + 1) & mask;
    if (!o.t[i].block)
        __atomic_store_n(&o.used, o.used + 1, __ATOMIC_RELAXED);   /* read unlocked by take() */
    o.t[i] = (slot){block, site_no, tno};
}

static slot *find(uintptr_t block)
{
    if (!o.t)
        return NULL;
    size_t mask = ((size_t)1 << o.bits) - 1;
    for (size_t i = bslot(block, o.bits); o.t[i].block; i = (i + 1) & mask)
        if (o.t[i].block == block)
            return &o.t[i];
    return NULL;
}

static void remove_slot(slot *s)
{
    size_t mask = ((size_t)1 << o.bits) - 1, i = (size_t)(s - o.t);
    for (size_t j = (i + 1) & mask; o.t[j].block; j = (j + 1) & mask) {
        size_t home = bslot(o.t[j].block, o.bits);
        if (((j - home) & mask) >= ((j - i) & mask)) {   /* j may move into the hole at i */
            o.t[i] = o.t[j];
            i = j;
        }
    }
    o.t[i].block = 0;
    __atomic_store_n(&o.used, o.used - 1, __ATOMIC_RELAXED);
}

/* The site of key (ret, code, where, size) in the current index, or 0; *at: the empty entry
 * that ended the probe. Lock-free. */
static inline uint32_t site_find(uintptr_t ret, uintptr_t code, uintptr_t where, size_t size, uint64_t h,
                                 size_t *at)
{
    const site_index *index = __atomic_load_n(&o.index, __ATOMIC_ACQUIRE);
    size_t mask = ((size_t)1 << index->bits) - 1, i = (size_t)(h >> (64 - index->bits));
    for (uint32_t no; (no = __atomic_load_n(&index->no[i], __ATOMIC_ACQUIRE)); i = (i + 1) & mask) {
        const site *s = site_at(no);
        if (s->ret == ret && s->code == code && s->where == where && s->size == size)
            return no;
    }
    *at = i;
    return 0;
}

/* A new site (takes the lock): its stacks captured; 0 when the site table is full or out of
 * memory. */
static uint32_t make_site(uintptr_t ret, uintptr_t code, uintptr_t where, size_t size, uint64_t h);

/* The site of an allocation here: found without the lock, or made. */
static inline __attribute__((always_inline)) uint32_t site_of(uintptr_t ret, size_t size)
{
    uintptr_t code = 0, where = 0;
    void *ts = NULL;
    if (wref__py_frame.on) {   /* the thread's slot once set (pystack.h), else the C API: never the slot's search */
        void *const *slot = wref__py_ts_slot;
        ts = slot ? __atomic_load_n(slot, __ATOMIC_RELAXED) : wref__py.thread_state_unchecked();
    }
    if (!ts || !wref__py_innermost_fast(ts, &code, &where))
        code = where = 0;
    uint64_t h = site_hash(ret, code, where, size);
    size_t at;
    uint32_t no = site_find(ret, code, where, size, h, &at);
    return __builtin_expect(no != 0, 1) ? no : make_site(ret, code, where, size, h);
}

/* make_site with the lock held: the key looked up again (another thread may have made it
 * meanwhile), then a new site at the end of its probe. */
static uint32_t make_site_locked(uintptr_t ret, uintptr_t code, uintptr_t where, size_t size, uint64_t h)
{
    size_t i;
    uint32_t no = site_find(ret, code, where, size, h, &i);
    if (no)
        return no;
    no = (uint32_t)o.n_sites + 1;
    if (no >= SITE_NONE) {
        o.full++;
        return 0;
    }
    site **chunk = &o.chunks[(no - 1) >> CHUNK_BITS];
    if (!*chunk && !(*chunk = map(sizeof(site) << CHUNK_BITS))) {
        o.full++;
        return 0;
    }
    if ((o.n_sites + 1) * 2 > (size_t)1 << o.index->bits) {   /* keep the index at most half full */
        if (!index_grow()) {
            o.full++;
            return 0;
        }
        (void)site_find(ret, code, where, size, h, &i);   /* the end of its probe in the new index */
    }
    site *s = site_at(no);
    py_object *codes[64];
    int lines[64];
    size_t n = wref__py_frames_raw(codes, lines, wref__opt.stack_depth < 64 ? wref__opt.stack_depth : 64);
    s->codes = n ? malloc(n * sizeof *s->codes) : NULL;
    s->lines = n ? malloc(n * sizeof *s->lines) : NULL;
    if (n && (!s->codes || !s->lines)) {
        free(s->codes), free(s->lines);
        s->codes = NULL, s->lines = NULL;
        n = 0;
    }
    for (size_t k = 0; k < n; k++) {
        wref__py.incref(s->codes[k] = codes[k]);
        s->lines[k] = lines[k];
    }
    if (code)
        wref__py.incref((py_object *)code);   /* the key's code object stays this one */
    s->n = (uint32_t)n;
    s->st = wref__capture();
    s->ret = ret, s->code = code, s->where = where, s->size = size;
    s->used = true;
    o.n_sites++;
    __atomic_store_n(&o.index->no[i], no, __ATOMIC_RELEASE);   /* the site is complete */
    return no;
}

static __attribute__((noinline)) uint32_t make_site(uintptr_t ret, uintptr_t code, uintptr_t where, size_t size,
                                                    uint64_t h)
{
    lock();
    uint32_t no = make_site_locked(ret, code, where, size, h);
    unlock();
    return no;
}

static __thread __attribute__((tls_model("initial-exec"))) int busy;
static __thread __attribute__((tls_model("initial-exec"))) uint32_t tno_plus1;   /* wref__thread_no() + 1 */

/* Stores block's origin: in the map when it can hold it, else in the table (takes the lock). */
static inline void record(uintptr_t block, uint32_t site_no, uint32_t tno)
{
    if (tno < MAP_TNO_LIMIT && wref__addrmap_set(&blocks, block, tno << SITE_BITS | (site_no ? site_no : SITE_NONE)))
        return;
    lock();
    insert(block, site_no, tno);
    unlock();
}

/* block's origin, removed: from the map or the table; false when it had none. */
static bool take(uintptr_t block, uint32_t *site_no, uint32_t *tno)
{
    uint32_t v = wref__addrmap_take(&blocks, block);
    if (v) {
        *site_no = (v & SITE_NONE) == SITE_NONE ? 0 : v & SITE_NONE;
        *tno = v >> SITE_BITS;
        return true;
    }
    if (!__atomic_load_n(&o.used, __ATOMIC_RELAXED))
        return false;   /* the table is empty (a block's insert happened before its free) */
    lock();
    slot *s = find(block);
    slot keep = s ? *s : (slot){0};
    if (s)
        remove_slot(s);
    unlock();
    *site_no = keep.site, *tno = keep.tno;
    return keep.block != 0;
}

void wref__py_origin_alloc(void *block, size_t size, uintptr_t ret)
{
    if (!block || !__atomic_load_n(&o.on, __ATOMIC_RELAXED) || busy)
        return;
    busy++;
    if (__builtin_expect(!tno_plus1, 0))
        tno_plus1 = wref__thread_no() + 1;
    /* no read-modify-write: a count lost when two interpreters allocate at once is acceptable
     * for a statistic */
    __atomic_store_n(&o.allocs, __atomic_load_n(&o.allocs, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
    record((uintptr_t)block, site_of(ret, size), tno_plus1 - 1);
    busy--;
}

void wref__py_origin_free(void *block)
{
    uint32_t site_no, tno;
    if (block && __atomic_load_n(&o.on, __ATOMIC_RELAXED))
        (void)take((uintptr_t)block, &site_no, &tno);
}

void wref__py_origin_realloc(void *old, void *block, size_t size, uintptr_t ret)
{
    if (!block || !__atomic_load_n(&o.on, __ATOMIC_RELAXED))
        return;
    if (old == block)
        return;   /* resized in place: the same origin */
    uint32_t site_no, tno;
    if (old && take((uintptr_t)old, &site_no, &tno))
        record((uintptr_t)block, site_no, tno);   /* the object moved: it keeps where it was created */
    else
        wref__py_origin_alloc(block, size, ret);
}

int wref__py_origin_get(uintptr_t block, wref__stack_id *st, uint32_t *py, unsigned *tno)
{
    *st = 0, *py = 0, *tno = 0;
    if (!__atomic_load_n(&o.on, __ATOMIC_RELAXED))
        return WREF__PY_ORIGIN_OFF;
    uint32_t v = wref__addrmap_get(&blocks, block);
    slot copy = {block, (v & SITE_NONE) == SITE_NONE ? 0 : v & SITE_NONE, v >> SITE_BITS};
    if (!v) {
        lock();
        slot *s = find(block);
        copy = s ? *s : (slot){0};
        unlock();
    }
    if (!copy.block)
        return WREF__PY_ORIGIN_UNSEEN;
    if (!copy.site)
        return WREF__PY_ORIGIN_FULL;
    lock();
    site *si = site_at(copy.site);   /* never moves; immutable but for py */
    unlock();
    uint32_t id = __atomic_load_n(&si->py, __ATOMIC_ACQUIRE);
    if (!id && si->n) {
        id = wref__py_stack_store(si->codes, si->lines, si->n);
        __atomic_store_n(&si->py, id, __ATOMIC_RELEASE);
    }
    *st = si->st;
    *py = id;
    *tno = copy.tno;
    return WREF__PY_ORIGIN_NONE;
}

const char *wref__py_origin_label(int why)
{
    switch (why) {
    case WREF__PY_ORIGIN_NONE:
        return "created";
    case WREF__PY_ORIGIN_OFF:
        return "created: not recorded (python_create=0)";
    case WREF__PY_ORIGIN_FULL:
        return "created: not recorded (out of memory for its allocation site)";
    default:
        return "created: not recorded (allocated before the checker started)";
    }
}

void wref__py_origins_init(void)
{
    if (!wref__opt.python_create || __atomic_load_n(&o.index, __ATOMIC_ACQUIRE))
        return;
    lock();
    bool ok = index_grow();
    unlock();
    if (!ok) {
        wref__checker_warn(NULL, "python frontend: out of memory for the create stacks; not recorded");
        return;
    }
    /* the hooks read the innermost frame only once its layout is checked (the check calls the
     * C API, which the hooks must not): check it now, where a frame usually runs */
    uintptr_t code, where;
    (void)wref__py_innermost(&code, &where);
    __atomic_store_n(&o.on, true, __ATOMIC_RELEASE);
}

void wref__py_origins_fork(enum wref__fork_phase phase)
{
    if (phase == WREF__FORK_PREPARE)
        lock();
    else
        unlock();   /* the child's only thread is the one that took it */
}

void wref__py_origins_stats(void)
{
    if (!__atomic_load_n(&o.index, __ATOMIC_ACQUIRE) || wref__opt.verbosity < 1)
        return;
    lock();
    uint64_t allocs = __atomic_load_n(&o.allocs, __ATOMIC_RELAXED), full = o.full, lost = o.lost;
    size_t sites = o.n_sites, live = o.used;
    unlock();
    live += wref__addrmap_count(&blocks);
    wref__checker_warn(NULL, "python frontend: create stacks: %llu allocations recorded at %zu sites (%llu at a new "
                       "site out of memory, %llu not recorded: out of memory), %zu blocks live",
                       (unsigned long long)allocs, sites, (unsigned long long)full, (unsigned long long)lost, live);
}
