/* heap.h: the quarantine heap (heap.c): blocks with a checked header before them and a redzone
 * after them, poisoned and quarantined when freed, optionally on guard pages; memory comes from
 * an allocator backend. Layout and policy: heap.c.
 *
 * A *block* is what the frontend's allocator hands out; the *object* a record (registry.h)
 * names lies inside it, at rec->addr, and need not start at the block: a CPython 3.12+ object
 * has a pre-header of up to 32 bytes before it. The heap finds every block's size in its
 * header, so free and realloc take no size. A frontend that cannot allocate through the heap
 * (the CPython one wraps the interpreter's allocator) quarantines its blocks by adopting them
 * (wref__heap_adopt). */
#ifndef WREF_CHECK_ENGINE_HEAP_H
#define WREF_CHECK_ENGINE_HEAP_H

#include "registry.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The allocator the chunks come from and go back to (the frontend's: wref's wref_set_allocator
 * one). free gets the size alloc was asked for. Set at start-up, before the first
 * wref__heap_alloc; the default is malloc/free. */
typedef struct wref__heap_backend {
    void *(*alloc)(size_t size);
    void (*free)(void *p, size_t size);
} wref__heap_backend;
void wref__heap_set_backend(const wref__heap_backend *b);

/* A block of `size` bytes (not zeroed), 16-byte aligned when the backend's memory is; NULL when
 * out of memory. */
void *wref__heap_alloc(size_t size);
/* The block's size, as asked of wref__heap_alloc/realloc; 0 when its header fails its check. */
size_t wref__heap_size(const void *block);
/* Frees a block (its redzone is checked by the caller first: wref__heap_check_redzone): poisons
 * it and quarantines it (may evict older blocks). rec: the record of the object in the block
 * (rec->addr inside it, rec->size bytes from there, state FREED), whose poison then names it
 * and whose memory stays out of reuse while a borrow of it is open; NULL for memory with no
 * record (poisoned with 0xDD bytes only). A block whose header was overwritten (a write before
 * its start) is never returned. */
void wref__heap_free(void *block, wref__rec *rec);
/* Called when an adopted block leaves the quarantine (evicted by a bound, or making room for
 * poison), with heap.lock not held: the owner's locks may be taken (they come before
 * heap.lock in the lock order) and the heap may be called again. block and size are those
 * given to wref__heap_adopt; what becomes of the memory is the owner's decision. */
typedef void (*wref__heap_release_fn)(void *owner, void *block, size_t size);
/* Quarantines a block of another allocator (no header or redzone: the frontend's own, e.g.
 * the CPython object allocator it wraps) in the FIFO with this heap's blocks: it counts `size`
 * bytes against quarantine_mb and one block against the count bound, and when it leaves,
 * release(owner, block, size) runs. Its contents are kept, never poisoned or checked (a
 * CPython tombstone must stay a valid object). Not a held chunk: wref__heap_release_held
 * leaves it. The caller must not hold a lock that release takes. */
void wref__heap_adopt(void *block, size_t size, void *owner, wref__heap_release_fn release);   /* size < 2^48 */
/* The owners of the adopted blocks still quarantined with this release function, oldest first:
 * the first min(n, max) of them in owners[], n returned. An owner stays valid while its
 * release cannot run (the caller holds the lock release takes first). */
size_t wref__heap_adopted(wref__heap_release_fn release, void **owners, size_t max);
/* The quarantine's second bound: at most n blocks (adopted or not; 0, the default: no count
 * bound), the oldest leaving first, as for quarantine_mb. Set by a frontend at its start. */
void wref__heap_set_max_blocks(size_t n);
/* A new block of `size` bytes holding the old one's first min(old, new) bytes; the old block
 * is freed as by wref__heap_free(block, NULL) (its record, if any, is the caller's to move).
 * block NULL: wref__heap_alloc. NULL when out of memory, the old block then untouched. */
void *wref__heap_realloc(void *block, size_t size);
/* Offset past the block's end of the first modified redzone byte, or -1 when intact (or when
 * the header was overwritten: wref__heap_free reports that). */
long wref__heap_check_redzone(const void *block);
void wref__heap_drain_check(void);                   /* at exit: check quarantined poison */
/* wref_set_allocator: the chunks of the program's allocator that the checker still holds
 * although the program freed them (quarantine and pins), and their hand-back before the
 * allocator changes (their open borrows are dropped). */
size_t wref__heap_held_chunks(void);
void wref__heap_release_held(void);
bool wref__heap_is_guarded(const void *block);
/* The record of the object in a guarded block, for the fault handler. */
void wref__heap_set_guard_rec(const void *block, wref__rec *rec);
/* Signal-safe: the record of the guarded block whose pages hold addr, or NULL; *obj_addr: the
 * record's object (the block when no record is set). */
wref__rec *wref__heap_guarded_find(uintptr_t addr, uintptr_t *obj_addr);

void wref__heap_fork(enum wref__fork_phase phase);

#endif /* WREF_CHECK_ENGINE_HEAP_H */
