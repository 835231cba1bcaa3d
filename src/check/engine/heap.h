/* heap.h: the quarantine heap (heap.c): object memory with a redzone after it, poisoned and
 * quarantined when freed, optionally on guard pages; memory comes from an allocator backend.
 * Layout and policy: heap.c. */
#ifndef WREF_CHECK_ENGINE_HEAP_H
#define WREF_CHECK_ENGINE_HEAP_H

#include "registry.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The allocator the object memory comes from and goes back to (the frontend's: wref's
 * wref_set_allocator one). free gets the size alloc was asked for. Set at start-up, before
 * the first wref__heap_alloc; the default is malloc/free. */
typedef struct wref__heap_backend {
    void *(*alloc)(size_t size);
    void (*free)(void *p, size_t size);
} wref__heap_backend;
void wref__heap_set_backend(const wref__heap_backend *b);

void *wref__heap_alloc(size_t size);                 /* object memory: redzone after it */
/* Checks the redzone (heap-overflow), poisons, quarantines; may evict older objects. */
void wref__heap_free(void *ob, size_t size, wref__rec *rec);
/* Offset of the first modified redzone byte, or -1 when intact. */
long wref__heap_check_redzone(const void *ob, size_t size);
void wref__heap_drain_check(void);                   /* at exit: check quarantined poison */
/* wref_set_allocator: the chunks of the program's allocator that the checker still holds
 * although the program freed them (quarantine and pins), and their hand-back before the
 * allocator changes (their open borrows are dropped). */
size_t wref__heap_held_chunks(void);
void wref__heap_release_held(void);
bool wref__heap_is_guarded(const void *ob);
void wref__heap_set_guard_rec(const void *ob, wref__rec *rec);   /* for the fault handler */
/* Signal-safe: the record of the guarded object whose pages hold addr, or NULL. */
wref__rec *wref__heap_guarded_find(uintptr_t addr, uintptr_t *obj_addr);

void wref__heap_fork(enum wref__fork_phase phase);

#endif /* WREF_CHECK_ENGINE_HEAP_H */
