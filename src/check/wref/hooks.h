/* hooks.h: the one seam between the runtime and the checker.
 *
 * The runtime calls these at every event the checker needs. In the release build
 * (WREF_CHECKED undefined) each is an empty or trivial static inline and compiles to nothing;
 * in the checked build (libwref-check) they are implemented by the checker's wref frontend
 * (src/check/wref/hooks.c, over the object-model-free engine of src/check/engine/). The
 * runtime includes no other checker file.
 *
 * Contracts (both builds):
 * - object_alloc/object_free own the memory of every object (user objects, weakrefs,
 *   callback objects). object_alloc returns zeroed-or-not memory of `size` bytes or NULL;
 *   object_free receives the size passed to object_alloc.
 * - use() is called at the top of every API entry point that receives an object pointer,
 *   before the runtime reads it. It returns 1 when the runtime may go on, 0 when the checker
 *   reported a finding and the pointer must not be touched (the entry point then fails as for
 *   a bad argument). It never runs a callback.
 * - The life events are called in this order for an object that dies:
 *   created -> dying -> [resurrected -> ...] -> clearing -> cleared -> destroyed -> object_free.
 *   dying/clearing/cleared/destroyed run on the thread that dropped the last reference, with
 *   no runtime lock held. callback_suppressed runs under the referent's stripe lock: it only
 *   notes the weakref (no allocation, no report, no file work, no call into the runtime);
 *   suppressed_flush(referent), called on the same thread once that lock is released, reports
 *   what was noted.
 * - borrow(ob, ref) runs when wref_get_object lends ob; strong(ob) when wref_get_ref hands this
 *   thread a new strong reference to ob (no build needs it now: a borrow lives in the borrowed
 *   object's record, which no newer object at the address shares, so nothing ends there).
 */
#ifndef WREF_CHECK_HOOKS_H
#define WREF_CHECK_HOOKS_H

#include "../../runtime/internal.h"

/* What an API entry point is about to do with an object pointer. */
enum wref__use {
    WREF__USE_QUERY,    /* read-only: refcount, type_of, is_*, weakref_count */
    WREF__USE_INCREF,   /* a new strong reference */
    WREF__USE_DECREF,   /* a strong reference dropped */
    WREF__USE_REFERENT, /* becomes the referent of a new weakref or proxy without callback */
    WREF__USE_REFERENT_CB, /* becomes the referent of a new weakref or proxy with a callback */
    WREF__USE_CALLBACK, /* becomes the callback of a new weakref or proxy */
    WREF__USE_WEAKREF,  /* read through as a weakref after a type check: get_ref, get_object */
    WREF__USE_WEAKREF_UNCHECKED, /* read as a weakref with no type check: WREF_GET_OBJECT */
    WREF__USE_CALL,     /* called */
    WREF__USE_CLEAR,    /* wref_clear_weakrefs: only for a dead object */
    WREF__USE_CLEAR_NO_CALLBACKS /* wref_clear_weakrefs_no_callbacks: any object */
};

#ifdef WREF_CHECKED

void *wref__hook_object_alloc(size_t size);
void wref__hook_object_free(wref_object *ob, size_t size);
int wref__hook_use(const wref_object *ob, enum wref__use use);
void wref__hook_created(wref_object *ob);
void wref__hook_borrow(wref_object *ob, wref_object *ref);
void wref__hook_dying(wref_object *ob);
void wref__hook_resurrected(wref_object *ob);
void wref__hook_clearing(wref_object *ob);
void wref__hook_cleared(wref_object *ob);
/* A callback failed; returns 1 when the checker handled it (reported it, reported this
 * callback's earlier failure: one finding per callback, or a suppression matched), so that
 * the runtime prints no default line of its own. */
int wref__hook_callback_error(wref_object *weakref, wref_object *callback, wref_object *referent,
                              wref_error kind, const char *message);
void wref__hook_callback_suppressed(wref_object *weakref, wref_object *referent);
void wref__hook_suppressed_flush(wref_object *referent);
void wref__hook_destroyed(wref_object *ob);
/* wref_set_allocator: the chunks of the current allocator that the program freed but the
 * checker still holds (quarantine), not counted as alive; and their hand-back to the current
 * allocator before it is replaced. */
size_t wref__hook_allocator_held(void);
void wref__hook_allocator_release(void);

#else /* release build: nothing to see */

static inline void *wref__hook_object_alloc(size_t size) { return wref__mem_alloc(size); }
static inline void wref__hook_object_free(wref_object *ob, size_t size) { wref__mem_free(ob, size); }
static inline int wref__hook_use(const wref_object *ob, enum wref__use use) { (void)ob; (void)use; return 1; }
static inline void wref__hook_created(wref_object *ob) { (void)ob; }
static inline void wref__hook_borrow(wref_object *ob, wref_object *ref) { (void)ob; (void)ref; }
static inline void wref__hook_dying(wref_object *ob) { (void)ob; }
static inline void wref__hook_resurrected(wref_object *ob) { (void)ob; }
static inline void wref__hook_clearing(wref_object *ob) { (void)ob; }
static inline void wref__hook_cleared(wref_object *ob) { (void)ob; }
static inline int wref__hook_callback_error(wref_object *weakref, wref_object *callback,
                                            wref_object *referent, wref_error kind, const char *message)
{ (void)weakref; (void)callback; (void)referent; (void)kind; (void)message; return 0; }
static inline void wref__hook_callback_suppressed(wref_object *weakref, wref_object *referent)
{ (void)weakref; (void)referent; }
static inline void wref__hook_suppressed_flush(wref_object *referent) { (void)referent; }
static inline void wref__hook_destroyed(wref_object *ob) { (void)ob; }
static inline size_t wref__hook_allocator_held(void) { return 0; }
static inline void wref__hook_allocator_release(void) {}

#endif /* WREF_CHECKED */

static inline void wref__hook_strong(wref_object *ob) { (void)ob; }

#endif /* WREF_CHECK_HOOKS_H */
