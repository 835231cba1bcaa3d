/* origins.h: where each live object-domain block was allocated, for the create stacks of the
 * CPython frontend's reports (python_create=1; origins.c). */
#ifndef WREF_CHECK_PYTHON_ORIGINS_H
#define WREF_CHECK_PYTHON_ORIGINS_H

#include "../engine/core.h"
#include "../engine/stack.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* At the allocator hook's installation (GIL held): turns recording on when
 * python_create is set, and checks the thread-state layout the hooks read. */
void wref__py_origins_init(void);

/* The allocator hook (objects.c) calls these for every object-domain call, the frontend's own
 * allocations included: block was just returned for size bytes to the code that called the
 * hook at return address ret (alloc); block is about to be freed (free); old was resized to
 * block (realloc: the block keeps its origin; old == NULL is an alloc). Cheap, allocate
 * nothing through the object domain and run no Python code. */
void wref__py_origin_alloc(void *block, size_t size, uintptr_t ret);
void wref__py_origin_free(void *block);
void wref__py_origin_realloc(void *old, void *block, size_t size, uintptr_t ret);

/* Why a block has no create stack (WREF__PY_ORIGIN_NONE: it has one). */
enum wref__py_origin_why {
    WREF__PY_ORIGIN_NONE,
    WREF__PY_ORIGIN_OFF,        /* python_create=0 */
    WREF__PY_ORIGIN_UNSEEN,     /* allocated before the hook was installed, or outside the object domain */
    WREF__PY_ORIGIN_FULL        /* its site was new and there was no memory for it (or 1M sites) */
};

/* The create stacks of the live block at address block: the C stack, the Python stack (a
 * pystack.h id) and the allocating thread (T<n>); returns WREF__PY_ORIGIN_NONE when known,
 * else why not (all three then 0). Stores the site's Python stack on first use (allocates):
 * GIL held, not inside an allocator hook unless the frontend's allocations are forwarded. */
int wref__py_origin_get(uintptr_t block, wref__stack_id *st, uint32_t *py, unsigned *tno);

/* The label of a report's create stack: "created", or "created: not recorded (...)" for why. */
const char *wref__py_origin_label(int why);

/* Around fork (intercept.c's handlers): the lock is held across it, re-made in the child. */
void wref__py_origins_fork(enum wref__fork_phase phase);

/* Statistics for verbosity >= 1, at exit. */
void wref__py_origins_stats(void);

#endif /* WREF_CHECK_PYTHON_ORIGINS_H */
