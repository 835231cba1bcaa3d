/* alloc.c: the allocator seam. Every allocation of the runtime goes through wref__mem_*. */
#include "internal.h"
#include "check/wref/hooks.h"

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

/* `current` is replaced only while `live` is 0 (no allocation of the old allocator is
 * outstanding); allocation paths read it without a lock. */
static struct {
    wref_allocator current;
    intptr_t live;   /* outstanding allocations; atomic */
} alloc_state = {{NULL, malloc_alloc, malloc_free}, 0};

void *wref__mem_alloc(size_t size)
{
    void *p = alloc_state.current.alloc(alloc_state.current.ctx, size);
    if (p)
        __atomic_fetch_add(&alloc_state.live, 1, __ATOMIC_RELAXED);
    return p;
}

void wref__mem_free(void *p, size_t size)
{
    if (!p)
        return;
    alloc_state.current.free(alloc_state.current.ctx, p, size);
    __atomic_fetch_sub(&alloc_state.live, 1, __ATOMIC_RELEASE);
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
    /* the checker's quarantine holds chunks the program freed: not alive for the program */
    intptr_t live = __atomic_load_n(&alloc_state.live, __ATOMIC_ACQUIRE) - (intptr_t)wref__hook_allocator_held();
    if (live != 0) {
        wref_err_set(WREF_ERR_SYSTEM,
                     "wref_set_allocator: %ld allocation(s) of the current allocator are alive",
                     (long)live);
        return -1;
    }
    wref__hook_allocator_release();   /* they go back to the allocator that made them */
    if (a)
        alloc_state.current = *a;
    else
        alloc_state.current = (wref_allocator){NULL, malloc_alloc, malloc_free};
    return 0;
}
