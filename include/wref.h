/* wref: reference-counted C objects with CPython-style weak references.
 *
 * The contract is docs/api.md; behaviour follows CPython 3.13's weakref C API, as
 * docs/semantics.md describes it.
 * Every function is safe to call from any thread. Ownership words used below:
 *   "new reference"  the caller owns one count and must wref_decref() it;
 *   "borrowed"       the caller owns nothing; the pointer is valid only while someone else
 *                    keeps the object alive (this is how use-after-free gets in: prefer
 *                    wref_get_ref(), and run tests under wref-check).
 */
#ifndef WREF_H
#define WREF_H

/* ---- version ----------------------------------------------------------------------- */
#define WREF_VERSION_MAJOR 0
#define WREF_VERSION_MINOR 1
#define WREF_VERSION_PATCH 0

/* ---- export macro -------------------------------------------------------------------- */
#if defined(WREF_BUILDING_LIBRARY)
#define WREF_API __attribute__((visibility("default")))
#else
#define WREF_API
#endif
#define WREF_DEPRECATED(msg) __attribute__((deprecated(msg)))
#define WREF_PRINTF(f, a) __attribute__((format(printf, f, a)))

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- objects and types ----------------------------------------------------------------- */

typedef struct wref_object wref_object;
typedef struct wref_type wref_type;

/* The header every object starts with: user structs embed it as their first member.
 * Fields are private to the runtime; use the functions below. 24 bytes on LP64. */
struct wref_object {
    intptr_t ob_refcnt_;           /* atomic; 0 means dead or dying */
    const wref_type *ob_type_;     /* never changes */
    uintptr_t ob_weaklist_;        /* head of the weakref list | flag bits; under a stripe lock */
};

typedef int (*wref_visit_fn)(wref_object *child, void *arg);

/* Instances may be weakly referenced. Without it wref_ref_new() fails with WREF_ERR_TYPE. */
#define WREF_TYPE_WEAKREFABLE 0x1u

struct wref_type {
    const char *name;    /* shown in errors and reports */
    size_t size;         /* size of the user struct, >= sizeof(wref_object) */
    unsigned flags;      /* WREF_TYPE_* */
    /* Optional. Runs once, before weakrefs are cleared, with the object temporarily alive
     * (weakrefs still return it); if it stores a new reference the object is resurrected. */
    void (*finalize)(wref_object *self);
    /* Optional. Releases what self owns; runs after weakrefs were cleared. */
    void (*destroy)(wref_object *self);
    /* Optional. Calls visit(child, arg) for each strong reference self holds; a non-zero
     * return from visit stops the walk and is returned. Used by the checker's leak census. */
    int (*traverse)(wref_object *self, wref_visit_fn visit, void *arg);
    /* Optional. Makes instances callable: returns a new reference, or NULL with an error set. */
    wref_object *(*call)(wref_object *self, wref_object *arg);
};

/* A zeroed object (all bytes after the header are 0) with count 1: a new reference.
 * NULL with WREF_ERR_MEMORY, or WREF_ERR_SYSTEM when type is NULL or type->size is too small. */
WREF_API wref_object *wref_new(const wref_type *type);

/* Counts are atomic. When the count reaches 0 the destruction protocol runs on this thread:
 * finalize (may resurrect), clear weakrefs and run their callbacks newest first, destroy,
 * clear weakrefs created meanwhile without callbacks, free. Deep ownership chains are
 * destroyed iteratively, never by unbounded recursion. */
WREF_API void wref_incref(wref_object *ob);
WREF_API void wref_decref(wref_object *ob);
WREF_API void wref_xincref(wref_object *ob);   /* accepts NULL */
WREF_API void wref_xdecref(wref_object *ob);   /* accepts NULL */
WREF_API intptr_t wref_refcount(const wref_object *ob);   /* 0 for NULL */
WREF_API const wref_type *wref_type_of(const wref_object *ob);   /* NULL for NULL */

/* The immortal None singleton. Borrowed; incref/decref on it do nothing. Not weakrefable. */
WREF_API wref_object *wref_none(void);

/* ---- calling ------------------------------------------------------------------------------ */

/* 1 when wref_call() can call ob: its type has a call slot, or it is a callable proxy, or a
 * callback object. Weakrefs are callable too (like CPython's ref()). 0 for NULL. */
WREF_API int wref_is_callable(const wref_object *ob);

/* Calls callable with one argument (arg may be NULL for "no argument").
 * Returns a new reference, or NULL with an error:
 *   WREF_ERR_TYPE       not callable ("'T' object is not callable");
 *   WREF_ERR_REFERENCE  a proxy whose referent is dead ("weakly-referenced object no longer exists");
 *   whatever the call slot set.
 * Calling a weakref with arg NULL returns its referent (new reference) or wref_none(). */
WREF_API wref_object *wref_call(wref_object *callable, wref_object *arg);

/* fn returns 0, or -1 with an error set (wref_err_set). */
typedef int (*wref_callback_fn)(wref_object *weakref, void *data);

/* A callable object wrapping fn: calling it with arg calls fn(arg, data) and returns
 * wref_none(). release(data), when non-NULL, runs when the callback object is destroyed.
 * New reference, or NULL with WREF_ERR_MEMORY (release is not called then) or
 * WREF_ERR_SYSTEM (fn is NULL). */
WREF_API wref_object *wref_callback_new(wref_callback_fn fn, void *data, void (*release)(void *data));

/* ---- weak references ------------------------------------------------------------------------ */

/* Type checks: never fail, never set an error; NULL gives 0. */
WREF_API int wref_is_weakref(const wref_object *ob);   /* ref or proxy */
WREF_API int wref_is_ref(const wref_object *ob);
WREF_API int wref_is_proxy(const wref_object *ob);     /* plain or callable proxy */

/* A weak reference to ob. New reference, or NULL with an error.
 * callback NULL or wref_none() means "no callback": the object's canonical ref is then
 * reused when it exists (no allocation). With a callback, every call makes a new ref; the ref
 * holds a strong reference to callback, and when ob dies the runtime calls callback(ref).
 * Errors: WREF_ERR_SYSTEM (ob NULL), WREF_ERR_TYPE ("cannot create weak reference to 'T'
 * object", or a callback that is not callable), WREF_ERR_MEMORY. ob's count is unchanged. */
WREF_API wref_object *wref_ref_new(wref_object *ob, wref_object *callback);

/* Like wref_ref_new() but a proxy: wref_call() through it calls the referent (a callable
 * proxy when ob is callable). The canonical proxy is reused when callback is NULL/None. */
WREF_API wref_object *wref_proxy_new(wref_object *ob, wref_object *callback);

/* The referent of a ref or proxy, as a strong reference.
 *   1 and *pobj = new reference      the referent is alive;
 *   0 and *pobj = NULL               the referent is dead or dying (no error);
 *  -1 and *pobj = NULL               WREF_ERR_SYSTEM (ref NULL) or WREF_ERR_TYPE
 *                                    ("expected a weakref, not 'T'").
 * Cost on a live object: one CAS, no lock (release library); on a dead one no atomic RMW. */
WREF_API int wref_get_ref(wref_object *ref, wref_object **pobj);

/* The referent as a BORROWED pointer, or wref_none() when dead or dying; NULL with
 * WREF_ERR_SYSTEM when ref is NULL or not a weakref. The count is unchanged. Nothing keeps the
 * result alive: another thread, or any code this thread runs, may destroy it. Use
 * wref_get_ref(). */
WREF_API wref_object *wref_get_object(wref_object *ref)
    WREF_DEPRECATED("borrowed reference; use wref_get_ref()");

/* What WREF_GET_OBJECT expands to: wref_get_object without argument checks (ref must be a
 * weakref). Borrowed, like wref_get_object. */
WREF_API wref_object *wref_get_object_unchecked(wref_object *ref);
#define WREF_GET_OBJECT(ref) wref_get_object_unchecked((wref_object *)(ref))

/* Clears every weakref to ob, then runs their callbacks, newest first, each with its weakref;
 * a callback that fails goes to the unraisable hook and the others still run; the error
 * pending before the call is restored afterwards. Only for an object whose count is 0 (its
 * type's destroy/dealloc path): otherwise, or for NULL or a non-weakrefable object, it sets
 * WREF_ERR_SYSTEM and changes nothing. Allocates nothing. */
WREF_API void wref_clear_weakrefs(wref_object *ob);

/* Clears every weakref to ob without running callbacks; the callbacks stay attached
 * (wref_ref_callback) and never run. Any count; a no-op for a non-weakrefable object;
 * WREF_ERR_SYSTEM for NULL. */
WREF_API void wref_clear_weakrefs_no_callbacks(wref_object *ob);

/* Number of weakrefs (refs and proxies) currently attached to ob; 0 for a non-weakrefable
 * object; 0 with WREF_ERR_SYSTEM for NULL. */
WREF_API size_t wref_weakref_count(wref_object *ob);

/* Writes up to cap weakrefs of ob into out, in list order (canonical ref, canonical proxy,
 * then the others newest first), each a NEW reference the caller must decref (an entry is
 * NULL if that weakref was being destroyed by another thread). Returns the total number of
 * weakrefs, which may exceed cap. 0 with WREF_ERR_SYSTEM for NULL. */
WREF_API size_t wref_weakrefs(wref_object *ob, wref_object **out, size_t cap);

/* The callback of a ref: borrowed, or NULL when it has none, when ref is not a weakref, or
 * after its referent died and the callback was taken to be run. */
WREF_API wref_object *wref_ref_callback(wref_object *ref);

/* ---- errors ----------------------------------------------------------------------------------- */

typedef enum wref_error {
    WREF_OK = 0,
    WREF_ERR_TYPE,      /* TypeError */
    WREF_ERR_REFERENCE, /* ReferenceError */
    WREF_ERR_MEMORY,    /* MemoryError */
    WREF_ERR_SYSTEM,    /* SystemError: bad internal call */
    WREF_ERR_RUNTIME    /* for errors raised by user code (callbacks, call slots) */
} wref_error;

/* A thread-local error indicator, like Python's. Setting replaces any pending error. */
WREF_API wref_error wref_err_occurred(void);
WREF_API const char *wref_err_message(void);           /* NULL when none; thread-local storage */
WREF_API const char *wref_err_name(wref_error kind);   /* "TypeError", ...; "OK" for WREF_OK */
WREF_API void wref_err_set(wref_error kind, const char *fmt, ...) WREF_PRINTF(2, 3);
WREF_API void wref_err_clear(void);

/* Receives errors that cannot be raised: callbacks failing while their referent is cleared.
 * obj is the failing callback (borrowed). The default prints one line on stderr. */
typedef void (*wref_unraisable_fn)(wref_error kind, const char *message, wref_object *obj, void *arg);
WREF_API void wref_set_unraisable_hook(wref_unraisable_fn fn, void *arg);   /* NULL restores the default */

/* ---- allocator -------------------------------------------------------------------------------- */

/* Every object, weakref and internal allocation of the runtime goes through this allocator.
 * alloc returns NULL on failure; free receives the size that was allocated.
 * Delayed frees (release library): wref_get_ref, wref_get_object and the canonical reuse of
 * wref_ref_new read without a lock, so the memory of a dead object that once had a weakref,
 * and of a dead weakref that was attached to its referent, goes back to the allocator only
 * when no other thread can still be reading it. While other threads use weakrefs, each thread
 * holds back at most 64 such dead objects and weakrefs and frees them in one batch; a thread's
 * batch is freed when it exits and when it calls wref_set_allocator. With a single thread
 * nothing is held back. Objects that never had a weakref are always freed at once. */
typedef struct wref_allocator {
    void *ctx;
    void *(*alloc)(void *ctx, size_t size);
    void (*free)(void *ctx, void *ptr, size_t size);
} wref_allocator;

/* 0 on success; -1 with WREF_ERR_SYSTEM while objects allocated by the current allocator are
 * alive, or when a has no alloc or free function. NULL restores malloc/free. The struct is copied. */
WREF_API int wref_set_allocator(const wref_allocator *a);

/* ---- version ---------------------------------------------------------------------------------- */

WREF_API const char *wref_version_string(void);   /* "0.1.0" */

#ifdef __cplusplus
}
#endif

#endif /* WREF_H */
