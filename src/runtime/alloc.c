/* alloc.c: the allocator seam. Every allocation of the runtime goes through wref__mem_*.
 *
 * wref_set_allocator must know whether any allocation of the current allocator is alive. The
 * count is kept per thread, so that allocating and freeing write no shared cache line: each
 * thread owns a counter block (alone in a 128-byte block) with two monotonic counters, its
 * allocations and its frees, each written only by that thread with a plain store. An object
 * allocated on one thread and freed on another moves one thread's `allocs` and the other's
 * `frees`; live = sum(allocs) - sum(frees).
 *
 * The sum is taken by a double collect: two passes over every block; when both sums came out
 * equal, every counter (monotonic) kept the same value from its first read to its second, so
 * the values are those of one instant between the passes and the difference is exact even
 * while other threads allocate. A pass that keeps changing (a busy allocator) is reported as
 * alive. Blocks are never freed: a thread that exits leaves its counts in its block and marks
 * it free for the next thread, which goes on counting there. A thread that cannot get a block
 * (out of memory) counts in a shared block with atomic increments. */
#include "internal.h"
#include "check/wref/hooks.h"

#include <pthread.h>
#include <stdlib.h>

static void *malloc_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}

static void malloc_free(void *ctx, void *p, size_t size)
{
    (void)ctx;
    (void)size;
    free(p);
}

/* `current` is replaced only while no allocation of the old allocator is outstanding;
 * allocation paths read it without a lock. */
static wref_allocator current = {NULL, malloc_alloc, malloc_free};

struct counter {
    unsigned long allocs;    /* written by the owner only (wref__seq_bump), read by live_total */
    unsigned long frees;
    struct counter *next;    /* immutable once published */
    int in_use;              /* owned by a live thread; under counters.lock */
} __attribute__((aligned(128)));

static struct {
    pthread_mutex_t lock;    /* the list and the blocks' ownership; held by live_total */
    struct counter *list;    /* every block ever made, newest first */
    struct counter shared;   /* for threads without a block: atomic increments */
    pthread_key_t key;       /* its destructor gives the thread's block back */
    pthread_once_t once;
} counters = {PTHREAD_MUTEX_INITIALIZER, NULL, {0, 0, NULL, 0}, 0, PTHREAD_ONCE_INIT};

static __thread struct counter *mine __attribute__((tls_model("initial-exec")));

static void counter_release(void *arg)
{
    struct counter *c = arg;
    pthread_mutex_lock(&counters.lock);
    c->in_use = 0;
    if (mine == c)
        mine = NULL;
    pthread_mutex_unlock(&counters.lock);
}

static void counters_init(void)
{
    pthread_key_create(&counters.key, counter_release);
}

/* fork: the list's lock is held across fork(); in the child, which has only the forking
 * thread, every other thread's block is free (its counts stay: its objects were copied). */
static void fork_prepare(void) { pthread_mutex_lock(&counters.lock); }
static void fork_parent(void) { pthread_mutex_unlock(&counters.lock); }
static void fork_child(void)
{
    for (struct counter *c = counters.list; c; c = c->next)
        if (c != mine)
            c->in_use = 0;
    pthread_mutex_unlock(&counters.lock);
}

__attribute__((constructor)) static void counters_constructor(void)
{
    pthread_once(&counters.once, counters_init);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* This thread's block, found or made on its first allocation or free; NULL when out of memory. */
static __attribute__((noinline, cold)) struct counter *counter_register(void)
{
    pthread_once(&counters.once, counters_init);
    pthread_mutex_lock(&counters.lock);
    struct counter *c;
    for (c = counters.list; c; c = c->next)
        if (!c->in_use)
            break;
    if (!c) {
        c = aligned_alloc(128, sizeof *c);
        if (c) {
            c->allocs = c->frees = 0;
            c->next = counters.list;
            __atomic_store_n(&counters.list, c, __ATOMIC_RELEASE);
        }
    }
    if (c) {
        c->in_use = 1;
        mine = c;
    }
    pthread_mutex_unlock(&counters.lock);
    if (c && pthread_setspecific(counters.key, c) != 0) {
        counter_release(c);   /* no destructor would give it back: count in the shared block */
        c = NULL;
    }
    return c;
}

static inline void count_alloc(void)
{
    struct counter *c = mine;
    if (WREF__UNLIKELY(!c) && !(c = counter_register())) {
        __atomic_fetch_add(&counters.shared.allocs, 1, __ATOMIC_RELEASE);
        return;
    }
    wref__seq_bump(&c->allocs);
}

static inline void count_free(void)
{
    struct counter *c = mine;
    if (WREF__UNLIKELY(!c) && !(c = counter_register())) {
        __atomic_fetch_add(&counters.shared.frees, 1, __ATOMIC_RELEASE);
        return;
    }
    wref__seq_bump(&c->frees);
}

void *wref__mem_alloc(size_t size)
{
    void *p = current.alloc(current.ctx, size);
    if (p)
        count_alloc();
    return p;
}

void wref__mem_free(void *p, size_t size)
{
    if (!p)
        return;
    current.free(current.ctx, p, size);
    count_free();
}

/* One pass: the sums of every block's counters. */
static void collect(unsigned long *allocs, unsigned long *frees)
{
    unsigned long a = __atomic_load_n(&counters.shared.allocs, __ATOMIC_SEQ_CST);
    unsigned long f = __atomic_load_n(&counters.shared.frees, __ATOMIC_SEQ_CST);
    for (struct counter *c = __atomic_load_n(&counters.list, __ATOMIC_ACQUIRE); c; c = c->next) {
        a += __atomic_load_n(&c->allocs, __ATOMIC_SEQ_CST);
        f += __atomic_load_n(&c->frees, __ATOMIC_SEQ_CST);
    }
    *allocs = a;
    *frees = f;
}

/* The allocations alive at one instant of the call; -1 when no two passes agreed. */
static intptr_t live_total(void)
{
    pthread_mutex_lock(&counters.lock);   /* no block changes hands meanwhile */
    intptr_t live = -1;
    unsigned long a1, f1, a2, f2;
    collect(&a1, &f1);
    for (int tries = 0; tries < 1000; tries++) {
        collect(&a2, &f2);
        if (a1 == a2 && f1 == f2) {
            live = (intptr_t)(a1 - f1);
            break;
        }
        a1 = a2;
        f1 = f2;
    }
    pthread_mutex_unlock(&counters.lock);
    return live;
}

int wref_set_allocator(const wref_allocator *a)
{
    if (a && (!a->alloc || !a->free)) {
        wref_err_set(WREF_ERR_SYSTEM, "wref_set_allocator: alloc and free are both required");
        return -1;
    }
#ifdef WREF__LOCKFREE_READS
    wref__smr_flush();   /* this thread's deferred frees are not live objects */
#endif
    intptr_t live = live_total();
    if (live < 0) {
        wref_err_set(WREF_ERR_SYSTEM,
                     "wref_set_allocator: the current allocator is in use by other threads");
        return -1;
    }
    /* the checker's quarantine holds chunks the program freed: not alive for the program */
    live -= (intptr_t)wref__hook_allocator_held();
    if (live != 0) {
        wref_err_set(WREF_ERR_SYSTEM,
                     "wref_set_allocator: %ld allocation(s) of the current allocator are alive",
                     (long)live);
        return -1;
    }
    wref__hook_allocator_release();   /* they go back to the allocator that made them */
    if (a)
        current = *a;
    else
        current = (wref_allocator){NULL, malloc_alloc, malloc_free};
    return 0;
}
