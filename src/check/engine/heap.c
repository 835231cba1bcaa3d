/* heap.c: the debugging allocator behind every object of the checked build.
 *
 * Plain chunk (from the program's wref allocator, so fault injection still works):
 *     [ object: size bytes | redzone: 0xFA up to the next 16 bytes, then 16 more ]
 * Guarded chunk (guard=all, or one in sample_rate with guard=sample; own mmap):
 *     [ ...slack... | object | redzone to 16 ][ guard page, PROT_NONE ]
 *   the object ends at the guard page, so an overflow past the redzone faults at once.
 * On free the object is poisoned (poison.h: poison pointers that name it, 0xDD in between) or,
 * when guarded, its pages made inaccessible, and
 * it waits in a FIFO quarantine bounded by quarantine_mb. Leaving the quarantine, an object
 * that still has an open borrow (borrow.c) is pinned instead: it waits in a second FIFO,
 * bounded by borrow_pin_mb, so that its address holds no newer object while the borrowed
 * pointer may still be used; the oldest pin leaves first when the bound is passed, and its
 * open borrows are dropped (counted). Poisoned bytes are verified (write-after-free) when the
 * memory is finally returned.
 *
 * heap.lock guards the quarantine FIFO and the guard table's writers; the guard table is read
 * without locks by the fault handler (entries are published with release stores). */
#include "heap.h"
#include "borrow.h"
#include "finding.h"
#include "options.h"
#include "poison.h"
#include "registry.h"
#include "report.h"
#include "stats.h"

#include <pthread.h>
#include <stdlib.h>

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define REDZONE_BYTE 0xFA
#define MAX_GUARDED 4096

struct guard_slot {
    uintptr_t start, end;   /* the whole mapping, guard page included; 0 = free slot */
    uintptr_t obj;
    wref__rec *rec;         /* set by hooks via wref__heap_guarded_find once registered */
};

static struct {
    pthread_mutex_t lock;
    wref__rec_fifo q;             /* the quarantine, oldest first */
    size_t q_bytes;
    wref__rec_fifo pins;          /* destroyed, out of the quarantine, borrow open; oldest first */
    size_t pin_bytes;
    size_t held;                  /* atomic: chunks of the program's allocator in q and pins */
    size_t page;
    unsigned long sampled;        /* atomic allocation counter for guard=sample */
    unsigned guarded_live;
    struct guard_slot guards[MAX_GUARDED];
} heap = {.lock = PTHREAD_MUTEX_INITIALIZER};

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

static inline size_t chunk_bytes(size_t size)
{
    return round16(size) + 16;
}

static size_t page_size(void)
{
    if (!heap.page)
        heap.page = (size_t)sysconf(_SC_PAGESIZE);
    return heap.page;
}

static struct guard_slot *guard_slot_of(uintptr_t obj)
{
    for (unsigned i = 0; i < MAX_GUARDED; i++)
        if (__atomic_load_n(&heap.guards[i].obj, __ATOMIC_ACQUIRE) == obj)
            return &heap.guards[i];
    return NULL;
}

static void *guarded_alloc(size_t size)
{
    size_t pg = page_size();
    size_t data = (round16(size) + pg - 1) & ~(pg - 1);
    pthread_mutex_lock(&heap.lock);
    struct guard_slot *slot = NULL;
    if (heap.guarded_live < MAX_GUARDED)
        for (unsigned i = 0; i < MAX_GUARDED && !slot; i++)
            if (!heap.guards[i].start)
                slot = &heap.guards[i];
    if (!slot) {
        pthread_mutex_unlock(&heap.lock);
        return NULL;   /* table full: the caller uses a plain chunk */
    }
    char *map = mmap(NULL, data + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        pthread_mutex_unlock(&heap.lock);
        return NULL;
    }
    mprotect(map + data, pg, PROT_NONE);
    char *obj = map + data - round16(size);
    slot->start = (uintptr_t)map;
    slot->end = (uintptr_t)map + data + pg;
    slot->rec = NULL;
    __atomic_store_n(&slot->obj, (uintptr_t)obj, __ATOMIC_RELEASE);
    heap.guarded_live++;
    pthread_mutex_unlock(&heap.lock);
    return obj;
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
    if (!p) {
        p = backend->alloc(chunk_bytes(size));
        if (!p)
            return NULL;
        memset(p + size, REDZONE_BYTE, chunk_bytes(size) - size);
    } else {
        memset(p + size, REDZONE_BYTE, round16(size) - size);
    }
    return p;
}

bool wref__heap_is_guarded(const void *ob)
{
    return wref__opt.guard != WREF__GUARD_NONE && guard_slot_of((uintptr_t)ob) != NULL;
}

void wref__heap_set_guard_rec(const void *ob, wref__rec *rec)
{
    struct guard_slot *s = guard_slot_of((uintptr_t)ob);
    if (s)
        __atomic_store_n(&s->rec, rec, __ATOMIC_RELEASE);
}

long wref__heap_check_redzone(const void *ob, size_t size)
{
    const unsigned char *p = (const unsigned char *)ob;
    size_t end = wref__heap_is_guarded(ob) ? round16(size) : chunk_bytes(size);
    for (size_t i = size; i < end; i++)
        if (p[i] != REDZONE_BYTE)
            return (long)(i - size);
    return -1;
}

/* Offset of the first byte of a quarantined object that is no longer poison, or -1. */
static long check_poison(const wref__rec *r)
{
    if (r->guarded)
        return -1;   /* inaccessible: any write would have faulted */
    return wref__poison_check((const void *)r->addr, r->size, r);
}

static void report_write_after_free(wref__rec *r, long off, const char *when)
{
    char what[200];
    snprintf(what, sizeof what, "byte %ld of a destroyed %u-byte object was modified after it was destroyed "
             "(detected %s)", off, r->size, when);
    wref__rec_copy c = wref__rec_snapshot(r);
    wref__finding f = {.kind = WREF__K_WRITE_AFTER_FREE, .what = what, .object = &c,
                       .address = r->addr + (uintptr_t)off, .where = 0};
    f.history[f.n_history++] = (wref__labelled){"destroyed (the last reference dropped)", c.st_destroyed, c.tno_destroyed};
    f.history[f.n_history++] = (wref__labelled){"created", c.st_created, c.tno_created};
    wref__report(&f);
}

static size_t quarantine_cost(const wref__rec *r)
{
    return r->guarded ? page_size() : chunk_bytes(r->size);
}

/* Returns the memory of r, which has left the hash table, and moves r to the graveyard. */
static void give_back(wref__rec *r)
{
    wref__poison_release(r);   /* before the memory can hold anything else */
    if (r->guarded) {
        pthread_mutex_lock(&heap.lock);
        struct guard_slot *s = guard_slot_of(r->addr);
        if (s) {
            munmap((void *)s->start, s->end - s->start);
            __atomic_store_n(&s->obj, 0, __ATOMIC_RELEASE);
            s->start = s->end = 0;
            s->rec = NULL;
            heap.guarded_live--;
        }
        pthread_mutex_unlock(&heap.lock);
    } else {
        backend->free((void *)r->addr, chunk_bytes(r->size));
    }
    wref__graveyard_add(r);
}

/* r left the quarantine or the pins (heap.lock not held): returns its memory after checking
 * its poison, or (unless force) pins it when it has an open borrow. Returns the records the
 * pins pushed out meanwhile, linked through fifo_next, for the caller to release(force). */
static wref__rec *release(wref__rec *r, bool force)
{
    unsigned dropped;
    if (wref__registry_retire(r, force || !wref__opt.borrow_pin_mb, &dropped)) {   /* pin limit 0: no pin */
        /* out of the table: no other thread finds r any more */
        long off = check_poison(r);
        if (off >= 0)
            report_write_after_free(r, off, (r->borrow & WREF__BORROW_PINNED) ? "when it was returned after an open borrow"
                                                                            : "when it left the quarantine");
        if (dropped)
            wref__borrow_stat_add(WREF__BSTAT_DROPPED, dropped);
        if (!r->guarded)
            __atomic_fetch_sub(&heap.held, 1, __ATOMIC_RELAXED);
        give_back(r);
        return NULL;
    }
    /* pinned: the address stays the dead object's while its borrow is open */
    wref__borrow_stat_add(WREF__BSTAT_PINNED, 1);
    size_t limit = (size_t)wref__opt.borrow_pin_mb << 20;
    wref__rec *out = NULL, **tail = &out;
    pthread_mutex_lock(&heap.lock);
    wref__fifo_push(&heap.pins, r);
    heap.pin_bytes += quarantine_cost(r);
    while (heap.pins.head && heap.pin_bytes > limit) {
        wref__rec *old = wref__fifo_pop(&heap.pins);
        heap.pin_bytes -= quarantine_cost(old);
        *tail = old;
        tail = &old->fifo_next;
    }
    wref__borrow_stat_pin_bytes(heap.pin_bytes);
    pthread_mutex_unlock(&heap.lock);
    return out;
}

/* Releases a list of records linked through fifo_next (taken out of the FIFOs). */
static void release_list(wref__rec *list, bool force)
{
    while (list) {
        wref__rec *next = list->fifo_next;
        wref__rec *pushed_out = release(list, force);
        while (pushed_out) {   /* out of the pins: returned whatever their borrows */
            wref__rec *n2 = pushed_out->fifo_next;
            release(pushed_out, true);
            pushed_out = n2;
        }
        list = next;
    }
}

/* Poisons a destroyed object. When every poison slot is taken, the oldest quarantined objects
 * leave the quarantine early (a slot each, unless pinned by an open borrow) until one is free,
 * so the newest destroyed objects always have poison that names them (poison.h). */
static void poison(void *ob, size_t size, wref__rec *rec)
{
    for (unsigned tries = 0; !wref__poison_fill(ob, size, rec); tries++) {
        pthread_mutex_lock(&heap.lock);
        wref__rec *old = tries < 64 ? wref__fifo_pop(&heap.q) : NULL;
        if (old)
            heap.q_bytes -= quarantine_cost(old);
        pthread_mutex_unlock(&heap.lock);
        if (!old) {
            wref__stat_add(WREF__STAT_POISON_PLAIN, 1);   /* 0xDD only */
            return;
        }
        wref__stat_add(WREF__STAT_POISON_EVICTED, 1);
        old->fifo_next = NULL;
        release_list(old, false);
    }
}

void wref__heap_free(void *ob, size_t size, wref__rec *rec)
{
    if (!rec) {   /* untracked (records ran out): no quarantine */
        if (wref__heap_is_guarded(ob)) {
            /* leave it mapped: rare, and unmapping needs the slot bookkeeping above */
            return;
        }
        backend->free(ob, chunk_bytes(size));
        return;
    }
    if (rec->guarded) {
        size_t pg = page_size();
        uintptr_t first = (uintptr_t)ob & ~(uintptr_t)(pg - 1);
        mprotect((void *)first, (uintptr_t)ob + round16(size) - first, PROT_NONE);
    } else {
        poison(ob, size, rec);
    }
    size_t limit = (size_t)wref__opt.quarantine_mb << 20;
    wref__rec *evict = NULL, **tail = &evict;
    pthread_mutex_lock(&heap.lock);
    wref__fifo_push(&heap.q, rec);
    heap.q_bytes += quarantine_cost(rec);
    wref__stat_max(WREF__STAT_QUARANTINE_PEAK, heap.q_bytes);
    if (!rec->guarded)
        __atomic_fetch_add(&heap.held, 1, __ATOMIC_RELAXED);
    while (heap.q.head && heap.q_bytes > limit) {
        wref__rec *old = wref__fifo_pop(&heap.q);
        heap.q_bytes -= quarantine_cost(old);
        *tail = old;
        tail = &old->fifo_next;
    }
    pthread_mutex_unlock(&heap.lock);
    release_list(evict, false);
}

size_t wref__heap_held_chunks(void)
{
    return __atomic_load_n(&heap.held, __ATOMIC_RELAXED);
}

void wref__heap_release_held(void)
{
    pthread_mutex_lock(&heap.lock);
    wref__rec *list = heap.q.head, *pins = heap.pins.head;
    heap.q = (wref__rec_fifo){0};
    heap.pins = (wref__rec_fifo){0};
    heap.q_bytes = heap.pin_bytes = 0;
    wref__borrow_stat_pin_bytes(0);
    pthread_mutex_unlock(&heap.lock);
    release_list(list, true);
    release_list(pins, true);
}

void wref__heap_drain_check(void)
{
    /* Under the lock so that no other thread evicts meanwhile; reporting never takes it. */
    pthread_mutex_lock(&heap.lock);
    for (int pass = 0; pass < 2; pass++) {
        for (wref__rec *r = pass ? heap.pins.head : heap.q.head; r; r = r->fifo_next) {
            long off = check_poison(r);
            if (off >= 0 && !(r->reported & WREF__REPORTED(WREF__K_WRITE_AFTER_FREE))) {
                r->reported |= WREF__REPORTED(WREF__K_WRITE_AFTER_FREE);
                report_write_after_free(r, off, pass ? "at exit, while it was kept for an open borrow"
                                                     : "at exit, while it was in the quarantine");
            }
        }
    }
    pthread_mutex_unlock(&heap.lock);
}

wref__rec *wref__heap_guarded_find(uintptr_t addr, uintptr_t *obj_addr)
{
    for (unsigned i = 0; i < MAX_GUARDED; i++) {
        struct guard_slot *s = &heap.guards[i];
        uintptr_t obj = __atomic_load_n(&s->obj, __ATOMIC_ACQUIRE);
        if (obj && addr >= s->start && addr < s->end) {
            *obj_addr = obj;
            return __atomic_load_n(&s->rec, __ATOMIC_ACQUIRE);
        }
    }
    return NULL;
}
