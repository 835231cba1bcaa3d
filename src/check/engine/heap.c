/* heap.c: the debugging allocator behind every object of the checked build.
 *
 * Plain chunk (from the frontend's allocator backend, so fault injection still works):
 *     [ header: 16 bytes | block: size bytes | redzone: 0xFA up to the next 16 bytes, then 16 more ]
 * Guarded chunk (guard=all, or one in sample_rate with guard=sample; own mmap):
 *     [ ...slack... | header | block | redzone to 16 ][ guard page, PROT_NONE ]
 *   the block ends at the guard page, so an overflow past the redzone faults at once.
 * The header holds the block's size (so free and realloc need none), the chunk's guard slot,
 * and a check word over both and the block's address: a header that fails it was overwritten
 * (a write before the block) or is none of ours, and its chunk is never returned.
 *
 * An object (its record's rec->addr, rec->size bytes) may start inside its block (a pre-header
 * before it). On free the object is poisoned (poison.h: poison pointers that name it, 0xDD in
 * between) and the rest of the block filled with 0xDD, or, when guarded, its pages made
 * inaccessible, and the block waits in a FIFO quarantine bounded by quarantine_mb. Leaving the
 * quarantine, a block whose object still has an open borrow (borrow.c) is pinned instead: it
 * waits in a second FIFO, bounded by borrow_pin_mb, so that its address holds no newer object
 * while the borrowed pointer may still be used; the oldest pin leaves first when the bound is
 * passed, and its open borrows are dropped (counted). Poisoned bytes are verified
 * (write-after-free) when the memory is finally returned. A block with no record (freed
 * untracked, or left behind by realloc) is quarantined too, 0xDD only.
 *
 * The FIFOs are rings of entries (block, record) in the checker's own memory, not links
 * through the freed chunks, so a stale write cannot break them.
 *
 * Adopted blocks (wref__heap_adopt): a block of another allocator (the CPython frontend's
 * tombstones, from the object allocator it wraps) waits in the same quarantine FIFO, counted
 * at the size its owner gave, with no header, redzone or poison: its contents are the owner's
 * and the heap never reads or writes them. When it leaves, the owner's release callback runs
 * (without heap.lock) and decides what becomes of the memory. It is never pinned, never
 * checked for write-after-free, and not one of the held chunks (wref__heap_release_held
 * leaves it in the quarantine). The quarantine has a second bound, a block count
 * (wref__heap_set_max_blocks), for owners whose per-block tables are bounded.
 *
 * Guard slots: a table of MAX_GUARDED, the free ones on a stack, a chunk's slot in its header:
 * O(1) per guarded allocation and free. Slot k's chunk is mapped at gbase + k * GUARD_STRIDE,
 * inside an inaccessible reservation made at the first guarded allocation (1 GiB of address
 * space, never backed; a freed chunk's pages go back to it), so the fault handler finds the
 * slot of an address by a division, without locks (each slot published with a release store
 * of its block). A chunk larger than GUARD_STRIDE, or any chunk when the reservation could
 * not be made, is mapped anywhere and counted in n_big; only while n_big is not 0 does the
 * handler scan the slots below the high-water mark for an address outside the reservation.
 *
 * heap.lock guards the FIFOs and the guard table's writers. */
#include "heap.h"
#include "borrow.h"
#include "finding.h"
#include "options.h"
#include "poison.h"
#include "registry.h"
#include "report.h"
#include "stats.h"

#include <pthread.h>
#include <limits.h>
#include <stdlib.h>

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define REDZONE_BYTE 0xFA
#define REDZONE_WORD 0xFAFAFAFAFAFAFAFAull
#define MAX_GUARDED 16384
#define GUARD_STRIDE ((size_t)64 << 10)   /* address space per guard slot in the reservation */
#define HDR 16
#define CHECK_SEED 0x57524546u   /* "WREF" */

/* The chunk header, HDR bytes just before the block. */
struct chunk {
    uint64_t size;    /* the block's bytes */
    uint32_t guard;   /* guard slot + 1; 0: plain chunk */
    uint32_t check;   /* check_of(block, size, guard) */
};
_Static_assert(sizeof(struct chunk) == HDR, "chunk header: 16 bytes");

struct guard_slot {
    uintptr_t block;        /* atomic; 0 = free slot; published last */
    uintptr_t start, end;   /* atomic; the whole mapping, guard page included */
    wref__rec *rec;         /* atomic; the block's object's record, once registered */
};

/* A quarantined or pinned block; its size and guard slot are kept here, as a guarded chunk's
 * header is inaccessible once it is freed. */
struct entry {
    void *block;
    union {
        wref__rec *rec;   /* own block (release NULL); NULL: memory with no record */
        void *owner;      /* adopted block: its owner's, for release */
    };
    uint64_t size : 48, guard : 16;   /* the header's (guard: slot + 1, 0 when plain); adopted: the owner's size */
    wref__heap_release_fn release;    /* non-NULL: an adopted block (wref__heap_adopt) */
};
_Static_assert(MAX_GUARDED < 1u << 16, "a guard slot + 1 fits in an entry");

/* A FIFO of entries: a ring that doubles when full (the checker's own malloc), starting in a
 * static buffer, so that it always has room for RING0 entries. Its capacity is a power of 2. */
#define RING0 256
struct ring {
    struct entry *v;
    size_t cap, head, n;
    struct entry *init;   /* the static buffer */
};

static struct {
    pthread_mutex_t lock;
    struct ring q;                /* the quarantine, oldest first */
    size_t q_bytes;
    size_t q_max_blocks;          /* the count bound; 0: none (wref__heap_set_max_blocks) */
    size_t q_peak;                /* the highest q_bytes so far */
    struct ring pins;             /* destroyed, out of the quarantine, borrow open; oldest first */
    struct entry q0[RING0], pins0[RING0];
    size_t pin_bytes;
    size_t held;                  /* atomic: chunks of the program's allocator in q and pins */
    size_t page;
    unsigned long sampled;        /* atomic allocation counter for guard=sample */
    uint32_t guard_hwm;           /* atomic: slots [0, hwm) have been used */
    uintptr_t gbase;              /* atomic: the guard reservation (MAX_GUARDED strides), 0: none */
    int gbase_tried;              /* the reservation was attempted (heap.lock) */
    uint32_t n_big;               /* atomic: guarded chunks mapped outside the reservation */
    uint32_t n_free_guards;
    uint32_t free_guards[MAX_GUARDED];   /* free slots below the high-water mark (a stack) */
    struct guard_slot guards[MAX_GUARDED];
} heap = {.lock = PTHREAD_MUTEX_INITIALIZER,
           .q = {.v = heap.q0, .cap = RING0, .init = heap.q0},
           .pins = {.v = heap.pins0, .cap = RING0, .init = heap.pins0}};

static void *malloc_backend(size_t size)
{
    return malloc(size);
}

static void free_backend(void *p, size_t size)
{
    (void)size;
    free(p);
}

static const wref__heap_backend default_backend = {malloc_backend, free_backend};
static const wref__heap_backend *backend = &default_backend;   /* set once at start-up */

void wref__heap_set_backend(const wref__heap_backend *b)
{
    backend = b;
}

void wref__heap_set_max_blocks(size_t n)
{
    pthread_mutex_lock(&heap.lock);
    heap.q_max_blocks = n;
    pthread_mutex_unlock(&heap.lock);
}

void wref__heap_fork(enum wref__fork_phase phase)
{
    if (phase == WREF__FORK_PREPARE) {
        pthread_mutex_lock(&heap.lock);
        wref__poison_fork(true);
    } else {
        wref__poison_fork(false);
        pthread_mutex_unlock(&heap.lock);
    }
}

static inline size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* A plain chunk's bytes from the backend. */
static inline size_t chunk_bytes(size_t size)
{
    return HDR + round16(size) + 16;
}

static size_t page_size(void)
{
    size_t pg = __atomic_load_n(&heap.page, __ATOMIC_RELAXED);
    if (!pg) {
        pg = (size_t)sysconf(_SC_PAGESIZE);
        __atomic_store_n(&heap.page, pg, __ATOMIC_RELAXED);
    }
    return pg;
}

static inline struct chunk *hdr_of(const void *block)
{
    return (struct chunk *)((uintptr_t)block - HDR);
}

static inline uint32_t check_of(const void *block, uint64_t size, uint32_t guard)
{
    uint64_t x = ((uintptr_t)block >> 4) ^ (size * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)guard << 40);
    return (uint32_t)(x ^ (x >> 32)) ^ CHECK_SEED;
}

static void hdr_set(void *block, size_t size, uint32_t guard)
{
    *hdr_of(block) = (struct chunk){.size = size, .guard = guard, .check = check_of(block, size, guard)};
}

/* The header of a block this heap made and nobody overwrote, else NULL. */
static const struct chunk *hdr_ok(const void *block)
{
    const struct chunk *h = hdr_of(block);
    return h->check == check_of(block, h->size, h->guard) ? h : NULL;
}

/* ---- guard slots ------------------------------------------------------------------------ */

/* The guard slot of a block (hdr_ok), or NULL for a plain one. */
static struct guard_slot *guard_slot_of(const struct chunk *h)
{
    return h && h->guard && h->guard <= MAX_GUARDED ? &heap.guards[h->guard - 1] : NULL;
}

/* A free slot index, or -1 (the table is full); heap.lock held. */
static long guard_claim(void)
{
    if (heap.n_free_guards)
        return heap.free_guards[--heap.n_free_guards];
    if (heap.guard_hwm < MAX_GUARDED) {
        uint32_t k = heap.guard_hwm;
        __atomic_store_n(&heap.guard_hwm, k + 1, __ATOMIC_RELEASE);
        return k;
    }
    return -1;
}

/* The guard reservation, made once (heap.lock held); 0 if it cannot be. */
static uintptr_t guard_reservation(void)
{
    if (!heap.gbase_tried) {
        heap.gbase_tried = 1;
        void *r = mmap(NULL, MAX_GUARDED * GUARD_STRIDE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (r != MAP_FAILED)
            __atomic_store_n(&heap.gbase, (uintptr_t)r, __ATOMIC_RELEASE);
    }
    return __atomic_load_n(&heap.gbase, __ATOMIC_RELAXED);
}

static void *guarded_alloc(size_t size)
{
    size_t pg = page_size();
    size_t data = (HDR + round16(size) + pg - 1) & ~(pg - 1);
    if (data < HDR + round16(size) || data > SIZE_MAX - pg)   /* overflowed */
        return NULL;
    pthread_mutex_lock(&heap.lock);
    uintptr_t base = guard_reservation();
    long k = guard_claim();
    pthread_mutex_unlock(&heap.lock);
    if (k < 0)
        return NULL;   /* table full: the caller uses a plain chunk */
    bool big = !base || data + pg > GUARD_STRIDE;
    char *map = big ? mmap(NULL, data + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                    : mmap((void *)(base + (size_t)k * GUARD_STRIDE), data + pg, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (map == MAP_FAILED) {
        pthread_mutex_lock(&heap.lock);
        heap.free_guards[heap.n_free_guards++] = (uint32_t)k;
        pthread_mutex_unlock(&heap.lock);
        return NULL;
    }
    if (big)
        __atomic_fetch_add(&heap.n_big, 1, __ATOMIC_RELEASE);
    mprotect(map + data, pg, PROT_NONE);
    char *block = map + data - round16(size);
    hdr_set(block, size, (uint32_t)k + 1);
    struct guard_slot *s = &heap.guards[k];
    __atomic_store_n(&s->start, (uintptr_t)map, __ATOMIC_RELAXED);
    __atomic_store_n(&s->end, (uintptr_t)map + data + pg, __ATOMIC_RELAXED);
    __atomic_store_n(&s->rec, NULL, __ATOMIC_RELAXED);
    __atomic_store_n(&s->block, (uintptr_t)block, __ATOMIC_RELEASE);
    return block;
}

static bool in_reservation(uintptr_t a)
{
    uintptr_t base = __atomic_load_n(&heap.gbase, __ATOMIC_ACQUIRE);
    return base && a >= base && a - base < MAX_GUARDED * GUARD_STRIDE;
}

/* Unmaps a guarded chunk (its pages go back to the reservation) and frees its slot. */
static void guarded_unmap(struct guard_slot *s)
{
    uintptr_t start = __atomic_load_n(&s->start, __ATOMIC_RELAXED);
    uintptr_t end = __atomic_load_n(&s->end, __ATOMIC_RELAXED);
    __atomic_store_n(&s->block, 0, __ATOMIC_RELEASE);   /* the fault handler stops finding it */
    __atomic_store_n(&s->rec, NULL, __ATOMIC_RELAXED);
    if (in_reservation(start)) {
        mmap((void *)start, end - start, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    } else {
        munmap((void *)start, end - start);
        __atomic_fetch_sub(&heap.n_big, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_lock(&heap.lock);
    heap.free_guards[heap.n_free_guards++] = (uint32_t)(s - heap.guards);
    pthread_mutex_unlock(&heap.lock);
}

static bool want_guard(void)
{
    if (wref__opt.guard == WREF__GUARD_ALL)
        return true;
    if (wref__opt.guard == WREF__GUARD_SAMPLE && wref__opt.sample_rate)
        return __atomic_fetch_add(&heap.sampled, 1, __ATOMIC_RELAXED) % wref__opt.sample_rate == 0;
    return false;
}

void *wref__heap_alloc(size_t size)
{
    char *p = want_guard() ? guarded_alloc(size) : NULL;
    if (p) {
        memset(p + size, REDZONE_BYTE, round16(size) - size);
        return p;
    }
    if (size > SIZE_MAX - HDR - 32)
        return NULL;
    char *c = backend->alloc(chunk_bytes(size));
    if (!c)
        return NULL;
    p = c + HDR;
    hdr_set(p, size, 0);
    memset(p + size, REDZONE_BYTE, chunk_bytes(size) - HDR - size);
    return p;
}

size_t wref__heap_size(const void *block)
{
    const struct chunk *h = hdr_ok(block);
    return h ? (size_t)h->size : 0;
}

bool wref__heap_is_guarded(const void *block)
{
    return wref__opt.guard != WREF__GUARD_NONE && guard_slot_of(hdr_ok(block)) != NULL;
}

void wref__heap_set_guard_rec(const void *block, wref__rec *rec)
{
    struct guard_slot *s = guard_slot_of(hdr_ok(block));
    if (s)
        __atomic_store_n(&s->rec, rec, __ATOMIC_RELEASE);
}

/* Redzone bytes [from, to) of p, compared a word at a time (aligned, with a byte head and
 * tail): the offset from `from` of the first one changed, or -1. */
static long redzone_scan(const unsigned char *p, size_t from, size_t to)
{
    size_t i = from;
    for (; i < to && ((uintptr_t)(p + i) & 7); i++)
        if (p[i] != REDZONE_BYTE)
            return (long)(i - from);
    for (; i + 8 <= to; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w != REDZONE_WORD)
            break;   /* the byte loop below names the byte */
    }
    for (; i < to; i++)
        if (p[i] != REDZONE_BYTE)
            return (long)(i - from);
    return -1;
}

long wref__heap_check_redzone(const void *block)
{
    const struct chunk *h = hdr_ok(block);
    if (!h)
        return -1;   /* the header before it was overwritten: reported when it is freed */
    size_t size = (size_t)h->size;
    return redzone_scan(block, size, h->guard ? round16(size) : round16(size) + 16);
}

/* ---- write-after-free ------------------------------------------------------------------- */

/* The object of rec lies inside the block of `size` bytes. */
static bool object_inside(const void *block, size_t size, const wref__rec *rec)
{
    uintptr_t b = (uintptr_t)block;
    return rec && rec->addr >= b && rec->addr - b <= size && rec->size <= size - (rec->addr - b);
}

/* Offset from the object (from the block when it has none) of the first byte of a quarantined
 * block that is no longer poison, or INTACT. Its header counts: a write before the block is
 * at a negative offset. */
#define INTACT LONG_MIN
static long check_poison(const struct entry *e)
{
    if (e->guard || e->release)
        return INTACT;   /* inaccessible: any write would have faulted; adopted: not ours to check */
    size_t size = (size_t)e->size;
    const unsigned char *b = e->block;
    bool inside = object_inside(b, size, e->rec);
    size_t pre = inside ? e->rec->addr - (uintptr_t)b : 0;
    const struct chunk *h = hdr_of(b);
    if (h->size != size || h->guard || h->check != check_of(b, size, 0)) {
        struct chunk want = {.size = size, .guard = 0, .check = check_of(b, size, 0)};
        for (size_t i = 0; i < HDR; i++)
            if ((b - HDR)[i] != ((const unsigned char *)&want)[i])
                return (long)i - (long)(HDR + pre);
    }
    if (!inside) {
        long off = wref__poison_check(b, size, NULL);
        return off < 0 ? INTACT : off;
    }
    size_t after = pre + e->rec->size;
    for (size_t i = 0; i < pre; i++)
        if (b[i] != WREF__POISON_BYTE)
            return (long)i - (long)pre;
    long off = wref__poison_check(b + pre, e->rec->size, e->rec);
    if (off >= 0)
        return off;
    off = wref__poison_check(b + after, size - after, NULL);
    return off < 0 ? INTACT : (long)e->rec->size + off;
}

static void report_write_after_free(const struct entry *e, long off, const char *when)
{
    char what[240];
    wref__rec *r = e->rec;
    if (!r || !object_inside(e->block, (size_t)e->size, r)) {
        snprintf(what, sizeof what, "byte %ld of a freed %zu-byte block with no object was modified after it "
                 "was freed (detected %s)", off, (size_t)e->size, when);
        wref__finding f = {.kind = WREF__K_WRITE_AFTER_FREE, .what = what,
                           .address = (uintptr_t)e->block + (uintptr_t)off, .where = 0};
        wref__report(&f);
        return;
    }
    if (off < 0)
        snprintf(what, sizeof what, "byte %ld (in the block before it) of a destroyed %u-byte object was "
                 "modified after it was destroyed (detected %s)", off, r->size, when);
    else
        snprintf(what, sizeof what, "byte %ld of a destroyed %u-byte object was modified after it was destroyed "
                 "(detected %s)", off, r->size, when);
    wref__rec_copy c = wref__rec_snapshot(r);
    wref__finding f = {.kind = WREF__K_WRITE_AFTER_FREE, .what = what, .object = &c,
                       .address = r->addr + (uintptr_t)off, .where = 0};
    f.history[f.n_history++] = (wref__labelled){"destroyed (the last reference dropped)", c.st_destroyed, c.tno_destroyed};
    f.history[f.n_history++] = (wref__labelled){"created", c.st_created, c.tno_created};
    wref__report(&f);
}

static void report_bad_header(const void *block, const wref__rec *rec)
{
    char what[200];
    snprintf(what, sizeof what, "the %d bytes before the start of %s were overwritten (the checker's chunk "
             "header): the memory is kept, never reused (detected when it was freed)", HDR,
             rec ? "an object's block" : "a block");
    wref__rec_copy c;
    if (rec)
        c = wref__rec_snapshot(rec);
    wref__finding f = {.kind = WREF__K_HEAP_OVERFLOW, .what = what, .object = rec ? &c : NULL,
                       .address = (uintptr_t)block - HDR, .where = wref__capture()};
    if (rec)
        f.history[f.n_history++] = (wref__labelled){"created", c.st_created, c.tno_created};
    wref__report(&f);
}

/* ---- the FIFOs -------------------------------------------------------------------------- */

/* Appends e; when the ring is full and cannot grow, the oldest entry makes room: it is taken
 * out into *out, the caller's to release, and true returned. */
static __attribute__((noinline, cold)) bool ring_grow(struct ring *r, struct entry *out)
{
    size_t cap = r->cap * 2;
    struct entry *v = malloc(cap * sizeof *v);
    if (!v) {
        *out = r->v[r->head];
        r->head = (r->head + 1) & (r->cap - 1);
        r->n--;
        return true;
    }
    for (size_t i = 0; i < r->n; i++)
        v[i] = r->v[(r->head + i) & (r->cap - 1)];
    if (r->v != r->init)
        free(r->v);
    r->v = v;
    r->cap = cap;
    r->head = 0;
    return false;
}

static inline bool ring_push(struct ring *r, const struct entry *e, struct entry *out)
{
    bool evicted = r->n == r->cap && ring_grow(r, out);
    r->v[(r->head + r->n++) & (r->cap - 1)] = *e;
    return evicted;
}

static inline bool ring_pop(struct ring *r, struct entry *out)
{
    if (!r->n)
        return false;
    *out = r->v[r->head];
    r->head = (r->head + 1) & (r->cap - 1);
    r->n--;
    return true;
}

static inline struct entry *ring_at(struct ring *r, size_t i)
{
    return &r->v[(r->head + i) & (r->cap - 1)];
}

/* The bytes an entry counts against its FIFO's bound: its chunk, or its mapping; an adopted
 * block the size its owner gave. */
static size_t cost(const struct entry *e)
{
    if (e->release)
        return (size_t)e->size;
    size_t pg = page_size();
    return e->guard ? ((HDR + round16((size_t)e->size) + pg - 1) & ~(pg - 1)) + pg : chunk_bytes((size_t)e->size);
}

/* Returns the memory of e (out of the FIFOs, its record out of the hash table, which then
 * moves to the graveyard). */
static void give_back(const struct entry *e)
{
    if (e->guard) {
        guarded_unmap(&heap.guards[e->guard - 1]);
    } else {
        if (object_inside(e->block, (size_t)e->size, e->rec))
            wref__poison_release(e->rec);   /* before the memory can hold anything else */
        backend->free((char *)e->block - HDR, chunk_bytes((size_t)e->size));
        __atomic_fetch_sub(&heap.held, 1, __ATOMIC_RELAXED);
    }
    if (e->rec)
        wref__graveyard_add(e->rec);
}

static void release(const struct entry *e, bool force);

/* e's block is pinned: it waits in the pins; the oldest pins beyond the bound are returned. */
static void pin(const struct entry *e)
{
    wref__borrow_stat_add(WREF__BSTAT_PINNED, 1);
    size_t limit = (size_t)wref__opt.borrow_pin_mb << 20;
    struct entry old;
    pthread_mutex_lock(&heap.lock);
    bool out = ring_push(&heap.pins, e, &old);   /* no memory for the ring: the oldest leaves */
    heap.pin_bytes += cost(e);
    if (out)
        heap.pin_bytes -= cost(&old);
    wref__borrow_stat_pin_bytes(heap.pin_bytes);
    pthread_mutex_unlock(&heap.lock);
    if (out)
        release(&old, true);
    for (;;) {
        pthread_mutex_lock(&heap.lock);
        out = heap.pin_bytes > limit && ring_pop(&heap.pins, &old);
        if (out)
            heap.pin_bytes -= cost(&old);
        wref__borrow_stat_pin_bytes(heap.pin_bytes);
        pthread_mutex_unlock(&heap.lock);
        if (!out)
            return;
        release(&old, true);   /* out of the pins: returned whatever its borrows */
    }
}

/* e left the quarantine or the pins (heap.lock not held): returns its memory after checking
 * its poison, or (unless force) pins it when its object has an open borrow; an adopted block
 * goes to its owner. */
static void release(const struct entry *e, bool force)
{
    if (e->release) {
        e->release(e->owner, e->block, (size_t)e->size);
        return;
    }
    if (e->rec) {
        unsigned dropped;
        if (!wref__registry_retire(e->rec, force || !wref__opt.borrow_pin_mb, &dropped)) {   /* pin limit 0: no pin */
            pin(e);   /* the address stays the dead object's while its borrow is open */
            return;
        }
        /* out of the table: no other thread finds the record any more */
        if (dropped)
            wref__borrow_stat_add(WREF__BSTAT_DROPPED, dropped);
    }
    long off = check_poison(e);
    if (off != INTACT)
        report_write_after_free(e, off, e->rec && (e->rec->borrow & WREF__BORROW_PINNED)
                                            ? "when it was returned after an open borrow"
                                            : "when it left the quarantine");
    give_back(e);
}

/* Poisons a destroyed object. When every poison slot is taken, the oldest quarantined blocks
 * leave the quarantine early (a slot each, unless pinned by an open borrow) until one is free,
 * so the newest destroyed objects always have poison that names them (poison.h). */
static void poison(void *ob, size_t size, wref__rec *rec)
{
    for (unsigned tries = 0; !wref__poison_fill(ob, size, rec); tries++) {
        struct entry old;
        pthread_mutex_lock(&heap.lock);
        bool got = tries < 64 && ring_pop(&heap.q, &old);
        if (got)
            heap.q_bytes -= cost(&old);
        pthread_mutex_unlock(&heap.lock);
        if (!got) {
            wref__stat_add(WREF__STAT_POISON_PLAIN, 1);   /* 0xDD only */
            return;
        }
        wref__stat_add(WREF__STAT_POISON_EVICTED, 1);
        release(&old, false);
    }
}

/* Over either bound of the quarantine (heap.lock held). */
static inline bool q_over(size_t limit)
{
    return heap.q_bytes > limit || (heap.q_max_blocks && heap.q.n > heap.q_max_blocks);
}

/* e in, and the oldest out while over a bound, a few at a time under one lock; they are
 * released with the lock dropped. */
static void quarantine(const struct entry *e)
{
    size_t limit = (size_t)wref__opt.quarantine_mb << 20, c = cost(e);
    struct entry out[8];
    size_t n_out = 0;
    bool more;
    pthread_mutex_lock(&heap.lock);
    if (ring_push(&heap.q, e, &out[0]))   /* no memory for the ring: the oldest leaves */
        heap.q_bytes -= cost(&out[n_out++]);
    heap.q_bytes += c;
    if (heap.q_bytes > heap.q_peak) {   /* the statistic only when it grows */
        heap.q_peak = heap.q_bytes;
        wref__stat_max(WREF__STAT_QUARANTINE_PEAK, heap.q_bytes);
    }
    do {
        while (n_out < 8 && q_over(limit) && ring_pop(&heap.q, &out[n_out]))
            heap.q_bytes -= cost(&out[n_out++]);
        more = n_out == 8 && q_over(limit);
        pthread_mutex_unlock(&heap.lock);
        for (size_t i = 0; i < n_out; i++)
            release(&out[i], false);
        n_out = 0;
        if (more)
            pthread_mutex_lock(&heap.lock);
    } while (more);
}

void wref__heap_free(void *block, wref__rec *rec)
{
    if (!block)
        return;
    const struct chunk *h = hdr_ok(block);
    if (!h) {
        report_bad_header(block, rec);
        return;   /* size unknown: kept */
    }
    size_t size = (size_t)h->size;
    struct guard_slot *gs = guard_slot_of(h);
    struct entry e = {.block = block, .rec = rec, .size = size, .guard = h->guard};
    if (gs) {
        uintptr_t start = __atomic_load_n(&gs->start, __ATOMIC_RELAXED);
        mprotect((void *)start, (uintptr_t)block + round16(size) - start, PROT_NONE);
    } else if (object_inside(block, size, rec)) {
        size_t pre = rec->addr - (uintptr_t)block, after = pre + rec->size;
        if (pre)
            memset(block, WREF__POISON_BYTE, pre);
        poison((char *)block + pre, rec->size, rec);
        if (after < size)
            memset((char *)block + after, WREF__POISON_BYTE, size - after);
    } else {
        wref__poison_fill(block, size, NULL);
    }
    if (!gs)
        __atomic_fetch_add(&heap.held, 1, __ATOMIC_RELAXED);
    quarantine(&e);
}

void wref__heap_adopt(void *block, size_t size, void *owner, wref__heap_release_fn release_fn)
{
    struct entry e = {.block = block, .owner = owner, .size = size, .release = release_fn};
    quarantine(&e);
}

void *wref__heap_realloc(void *block, size_t size)
{
    if (!block)
        return wref__heap_alloc(size);
    const struct chunk *h = hdr_ok(block);
    if (!h) {
        report_bad_header(block, NULL);
        return NULL;
    }
    size_t old = (size_t)h->size;
    void *p = wref__heap_alloc(size);
    if (!p)
        return NULL;
    memcpy(p, block, old < size ? old : size);
    wref__heap_free(block, NULL);
    return p;
}

size_t wref__heap_held_chunks(void)
{
    return __atomic_load_n(&heap.held, __ATOMIC_RELAXED);
}

void wref__heap_release_held(void)
{
    /* what is held now; blocks other threads free meanwhile may stay */
    for (int pass = 0; pass < 2; pass++) {
        struct ring *r = pass ? &heap.pins : &heap.q;
        pthread_mutex_lock(&heap.lock);
        size_t n = r->n;
        pthread_mutex_unlock(&heap.lock);
        for (size_t i = 0; i < n; i++) {
            struct entry e, none;
            pthread_mutex_lock(&heap.lock);
            bool got = ring_pop(r, &e);
            if (got && e.release) {   /* adopted (only in the quarantine): not held, it stays (newest now) */
                (void)ring_push(r, &e, &none);   /* room: one was just taken */
                pthread_mutex_unlock(&heap.lock);
                continue;
            }
            if (got)
                *(pass ? &heap.pin_bytes : &heap.q_bytes) -= cost(&e);
            if (pass)
                wref__borrow_stat_pin_bytes(heap.pin_bytes);
            pthread_mutex_unlock(&heap.lock);
            if (!got)
                break;
            release(&e, true);
        }
    }
}

void wref__heap_drain_check(void)
{
    /* Under the lock so that no other thread evicts meanwhile; reporting never takes it. */
    pthread_mutex_lock(&heap.lock);
    for (int pass = 0; pass < 2; pass++) {
        struct ring *r = pass ? &heap.pins : &heap.q;
        for (size_t i = 0; i < r->n; i++) {
            struct entry *e = ring_at(r, i);
            long off = check_poison(e);   /* adopted: INTACT */
            if (off == INTACT)
                continue;
            if (e->rec && (e->rec->reported & WREF__REPORTED(WREF__K_WRITE_AFTER_FREE)))
                continue;
            if (e->rec)
                e->rec->reported |= WREF__REPORTED(WREF__K_WRITE_AFTER_FREE);
            report_write_after_free(e, off, pass ? "at exit, while it was kept for an open borrow"
                                                 : "at exit, while it was in the quarantine");
        }
    }
    pthread_mutex_unlock(&heap.lock);
}

size_t wref__heap_adopted(wref__heap_release_fn release_fn, void **owners, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&heap.lock);
    for (size_t i = 0; i < heap.q.n; i++) {
        const struct entry *e = ring_at(&heap.q, i);
        if (e->release != release_fn)
            continue;
        if (n < max)
            owners[n] = e->owner;
        n++;
    }
    pthread_mutex_unlock(&heap.lock);
    return n;
}

/* The record of slot s when addr is inside its chunk; *found: it is. */
static wref__rec *slot_match(struct guard_slot *s, uintptr_t addr, uintptr_t *obj_addr, bool *found)
{
    uintptr_t block = __atomic_load_n(&s->block, __ATOMIC_ACQUIRE);
    if (!block || addr < __atomic_load_n(&s->start, __ATOMIC_RELAXED) ||
        addr >= __atomic_load_n(&s->end, __ATOMIC_RELAXED))
        return NULL;
    *found = true;
    wref__rec *r = __atomic_load_n(&s->rec, __ATOMIC_ACQUIRE);
    *obj_addr = r ? r->addr : block;
    return r;
}

wref__rec *wref__heap_guarded_find(uintptr_t addr, uintptr_t *obj_addr)
{
    bool found = false;
    if (in_reservation(addr)) {   /* O(1): the stride names the slot */
        size_t k = (addr - __atomic_load_n(&heap.gbase, __ATOMIC_RELAXED)) / GUARD_STRIDE;
        return k < __atomic_load_n(&heap.guard_hwm, __ATOMIC_ACQUIRE) ? slot_match(&heap.guards[k], addr, obj_addr, &found)
                                                                      : NULL;
    }
    if (!__atomic_load_n(&heap.n_big, __ATOMIC_ACQUIRE))
        return NULL;
    uint32_t n = __atomic_load_n(&heap.guard_hwm, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        wref__rec *r = slot_match(&heap.guards[i], addr, obj_addr, &found);
        if (found)
            return r;
    }
    return NULL;
}
