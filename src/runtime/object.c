/* object.c: objects, counts, None, calling, and the destruction protocol. */
#include "internal.h"
#include "check/wref/hooks.h"

#include <string.h>

/* ---- None --------------------------------------------------------------------------------- */

static const wref_type none_type = {"NoneType", sizeof(wref_object), 0, NULL, NULL, NULL, NULL};

/* Immortal: incref/decref skip it by address, so its count never moves. */
wref_object wref__none = {1, &none_type, 0};

wref_object *wref_none(void)
{
    return &wref__none;
}

/* ---- creation and counts --------------------------------------------------------------------- */

wref_object *wref__object_new(const wref_type *type)
{
    wref_object *ob = wref__hook_object_alloc(type->size);
    if (WREF__UNLIKELY(!ob)) {
        wref_err_set(WREF_ERR_MEMORY, "out of memory allocating a '%s' object (%zu bytes)",
                     type->name, type->size);
        return NULL;
    }
    memset(ob, 0, type->size);
    ob->ob_refcnt_ = 1;
    ob->ob_type_ = type;
    wref__hook_created(ob);
    return ob;
}

wref_object *wref_new(const wref_type *type)
{
    if (!type || !type->name || type->size < sizeof(wref_object)) {
        wref_err_set(WREF_ERR_SYSTEM, "wref_new: bad type (%s)",
                     !type ? "NULL" : !type->name ? "no name" : "size smaller than wref_object");
        return NULL;
    }
    return wref__object_new(type);
}

void wref_incref(wref_object *ob)
{
    if (wref__hook_use(ob, WREF__USE_INCREF))
        wref__incref(ob);
}

void wref_decref(wref_object *ob)
{
    if (wref__hook_use(ob, WREF__USE_DECREF))
        wref__decref(ob);
}

void wref_xincref(wref_object *ob)
{
    if (ob)
        wref_incref(ob);
}

void wref_xdecref(wref_object *ob)
{
    if (ob)
        wref_decref(ob);
}

intptr_t wref_refcount(const wref_object *ob)
{
    if (!ob || !wref__hook_use(ob, WREF__USE_QUERY))
        return 0;
    return wref__load_count(ob);
}

const wref_type *wref_type_of(const wref_object *ob)
{
    if (!ob || !wref__hook_use(ob, WREF__USE_QUERY))
        return NULL;
    return ob->ob_type_;
}

/* ---- calling -------------------------------------------------------------------------------- */

int wref_is_callable(const wref_object *ob)
{
    if (!ob || !wref__hook_use(ob, WREF__USE_QUERY))
        return 0;
    return ob->ob_type_->call != NULL;
}

wref_object *wref__call(wref_object *callable, wref_object *arg)
{
    const wref_type *t = callable->ob_type_;
    if (!t->call) {
        wref_err_set(WREF_ERR_TYPE, "'%s' object is not callable", t->name);
        return NULL;
    }
    wref_object *res = t->call(callable, arg);
    if (!res && wref_err_occurred() == WREF_OK)
        wref_err_set(WREF_ERR_SYSTEM, "'%s' call returned NULL without setting an error", t->name);
    return res;
}

wref_object *wref_call(wref_object *callable, wref_object *arg)
{
    if (!callable) {
        wref_err_set(WREF_ERR_SYSTEM, "wref_call: NULL callable");
        return NULL;
    }
    if (!wref__hook_use(callable, WREF__USE_CALL) || (arg && !wref__hook_use(arg, WREF__USE_QUERY))) {
        wref_err_set(WREF_ERR_SYSTEM, "wref_call: invalid object");
        return NULL;
    }
    return wref__call(callable, arg);
}

/* ---- destruction ------------------------------------------------------------------------------
 * The trashcan: deallocations nest (destroy drops children, whose destroy drops theirs...).
 * Beyond TRASH_DEPTH nested deallocations on a thread, the object is deferred instead, and the
 * outermost deallocation drains the deferred ones, so the C stack stays bounded for chains of
 * any length. A deferred object keeps count 0 and its weakref list, so to every accessor it is
 * dying, exactly as while its protocol runs.
 * Storage for the deferred, allocation-free in the common case: an object with no weakrefs is
 * linked through its own ob_weaklist_ (WREF__FLAG_DEFERRED; nobody else may read the list of
 * a dead object without weakrefs). Objects with weakrefs go to a thread-local array, then to
 * chunks from the allocator; only if that allocation fails does the deallocation recurse. */

#define TRASH_DEPTH 64
#define TRASH_INLINE 32
#define TRASH_CHUNK 254

struct trash_chunk {
    struct trash_chunk *prev;
    size_t n;
    wref_object *items[TRASH_CHUNK];
};

/* What every deallocation reads, in the static TLS block (initial-exec: no __tls_get_addr
 * call, which cost 4 calls and 44 of create + destroy's 356 instructions; 8 bytes, so a
 * dlopen of libwref still finds room in glibc's static TLS surplus). */
static __thread struct {
    unsigned depth;     /* nested wref__dealloc frames on this thread */
    unsigned pending;   /* objects in trash below; 0: the outermost frame has nothing to drain */
} trash_hot __attribute__((tls_model("initial-exec")));

/* The deferred objects themselves: touched only when a chain nests beyond TRASH_DEPTH. */
static __thread struct {
    wref_object *linked;                   /* deferred objects without weakrefs, LIFO */
    unsigned n_inline;
    wref_object *inline_items[TRASH_INLINE];
    struct trash_chunk *chunk;             /* overflow, newest chunk first */
} trash;

static bool trash_store(wref_object *ob)
{
    uintptr_t wl = wref__weaklist_load(ob);
    if (!(wl & ~WREF__FLAG_MASK)) {
        wref__weaklist_store(ob, (uintptr_t)trash.linked | (wl & WREF__FLAG_MASK) | WREF__FLAG_DEFERRED);
        trash.linked = ob;
        return true;
    }
    if (trash.n_inline < TRASH_INLINE) {
        trash.inline_items[trash.n_inline++] = ob;
        return true;
    }
    struct trash_chunk *c = trash.chunk;
    if (!c || c->n == TRASH_CHUNK) {
        c = wref__mem_alloc(sizeof *c);
        if (!c)
            return false;
        c->prev = trash.chunk;
        c->n = 0;
        trash.chunk = c;
    }
    c->items[c->n++] = ob;
    return true;
}

/* Defers ob; false if it could not be stored (then the caller deallocates it at once). */
static bool trash_push(wref_object *ob)
{
    if (!trash_store(ob))
        return false;
    trash_hot.pending++;
    return true;
}

/* The next deferred object; only called while trash_hot.pending > 0. */
static wref_object *trash_take(void)
{
    wref_object *ob = trash.linked;
    if (ob) {
        uintptr_t wl = wref__weaklist_load(ob);
        trash.linked = (wref_object *)(wl & ~WREF__FLAG_MASK);
        wref__weaklist_store(ob, wl & (WREF__FLAG_MASK & ~WREF__FLAG_DEFERRED));
        return ob;
    }
    struct trash_chunk *c = trash.chunk;
    if (c) {
        ob = c->items[--c->n];
        if (c->n == 0) {
            trash.chunk = c->prev;
            wref__mem_free(c, sizeof *c);
        }
        return ob;
    }
    if (trash.n_inline)
        return trash.inline_items[--trash.n_inline];
    return NULL;
}

static wref_object *trash_pop(void)
{
    if (__builtin_expect(trash_hot.pending == 0, 1))
        return NULL;
    trash_hot.pending--;
    return trash_take();
}

static void set_finalized(wref_object *ob)
{
    uint32_t stripe = wref__stripe_of(ob);
    wref__lock(stripe);
    wref__weaklist_store(ob, wref__weaklist_load(ob) | WREF__FLAG_FINALIZED);
    wref__unlock(stripe);
}

/* The destruction protocol of docs/semantics.md section 4, for an object whose count just reached 0. */
static void dealloc_one(wref_object *ob)
{
    const wref_type *t = ob->ob_type_;
    wref__hook_dying(ob);

    /* 1. finalize, with the object temporarily alive; a new reference resurrects it */
    if (t->finalize && !(wref__weaklist_load(ob) & WREF__FLAG_FINALIZED)) {
        set_finalized(ob);
        __atomic_store_n(&ob->ob_refcnt_, 1, __ATOMIC_RELAXED);
        t->finalize(ob);
        if (__atomic_fetch_sub(&ob->ob_refcnt_, 1, __ATOMIC_ACQ_REL) != 1) {
            wref__hook_resurrected(ob);
            return;
        }
    }
    bool weakrefable = wref__is_weakrefable(ob);
    /* 2. every weakref dead, then callbacks newest first */
    wref__hook_clearing(ob);
    if (weakrefable)
        wref__clear_weakrefs(ob, true);
    wref__hook_cleared(ob);
    /* 3. release what the object owns */
    if (t->destroy)
        t->destroy(ob);
    /* 4. weakrefs created during 2-3 die without callbacks */
    if (weakrefable)
        wref__clear_weakrefs(ob, false);
    wref__hook_destroyed(ob);
    /* 5. memory back to the allocator; after a grace period if a lock-free reader may still
     * hold its address (it had a weakref, or it is a weakref that was linked) */
#ifdef WREF__LOCKFREE_READS
    if (wref__weaklist_load(ob) & WREF__FLAG_SMR) {
        wref__smr_free(ob, t->size);
        return;
    }
#endif
    wref__hook_object_free(ob, t->size);
}

void wref__dealloc(wref_object *ob)
{
    if (trash_hot.depth >= TRASH_DEPTH && trash_push(ob))
        return;
    trash_hot.depth++;
    dealloc_one(ob);
    if (trash_hot.depth == 1) {
        wref_object *next;
        while ((next = trash_pop()) != NULL)
            dealloc_one(next);
    }
    trash_hot.depth--;
}

/* ---- version ----------------------------------------------------------------------------- */

#define WREF__STR2(x) #x
#define WREF__STR(x) WREF__STR2(x)

const char *wref_version_string(void)
{
    return WREF__STR(WREF_VERSION_MAJOR) "." WREF__STR(WREF_VERSION_MINOR) "." WREF__STR(WREF_VERSION_PATCH);
}
