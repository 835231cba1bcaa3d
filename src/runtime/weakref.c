/* weakref.c: refs and proxies, get-ref/get-object, clearing. Semantics: CPython 3.13's, as
 * docs/semantics.md states them ("spec N" below is its section N); locking: the free-threaded
 * design (a striped lock per referent).
 *
 * List invariant (spec 2, "List order"), per referent, under its stripe lock:
 *   head -> [basic ref]? -> [basic proxy]? -> the others, newest first -> NULL
 * A weakref is linked iff its referent field is non-NULL. */
#include "internal.h"
#include "check/wref/hooks.h"

static void weakref_destroy(wref_object *self);
static int weakref_traverse(wref_object *self, wref_visit_fn visit, void *arg);
static wref_object *ref_call(wref_object *self, wref_object *arg);
static wref_object *proxy_call(wref_object *self, wref_object *arg);

const wref_type wref__weakref_types[3] = {
    {"weakref", sizeof(wref__weakref), 0, NULL, weakref_destroy, weakref_traverse, ref_call},
    {"weakproxy", sizeof(wref__weakref), 0, NULL, weakref_destroy, weakref_traverse, NULL},
    {"weakcallableproxy", sizeof(wref__weakref), 0, NULL, weakref_destroy, weakref_traverse, proxy_call}};

static inline wref__weakref *as_weakref(wref_object *ob)
{
    return (wref__weakref *)ob;
}

static inline wref_object *referent_load(const wref__weakref *w)
{
    return __atomic_load_n(&w->referent, __ATOMIC_ACQUIRE);
}

static inline void referent_store(wref__weakref *w, wref_object *ob)
{
    __atomic_store_n(&w->referent, ob, __ATOMIC_RELEASE);
}

/* ---- the list (caller holds the referent's stripe lock) ------------------------------------ */

static inline wref__weakref *head_of(const wref_object *ob)
{
    return (wref__weakref *)(wref__weaklist_load(ob) & ~WREF__FLAG_MASK);
}

static inline void set_head(wref_object *ob, wref__weakref *w)
{
    wref__weaklist_store(ob, (uintptr_t)w | (wref__weaklist_load(ob) & WREF__FLAG_MASK));
}

static inline bool is_proxy_type(const wref_type *t)
{
    return (uintptr_t)t - (uintptr_t)&wref__proxy_type < 2 * sizeof(wref_type);
}

#ifdef WREF__LOCKFREE_READS
/* A callback read without the lock (the lock-free canonical reuse); see wref__weakref. */
static inline wref_object *callback_load(const wref__weakref *w)
{
    return __atomic_load_n(&w->callback, __ATOMIC_ACQUIRE);
}
#endif

static inline void callback_clear(wref__weakref *w)
{
    __atomic_store_n(&w->callback, NULL, __ATOMIC_RELEASE);
}

static inline bool is_basic_ref(const wref__weakref *w)
{
    return w->base.ob_type_ == &wref__ref_type && w->callback == NULL;
}

static inline bool is_basic_proxy(const wref__weakref *w)
{
    return is_proxy_type(w->base.ob_type_) && w->callback == NULL;
}

/* Only the first two nodes can be basic (spec 2, "List order"). */
static void get_basic_refs(wref__weakref *head, wref__weakref **ref, wref__weakref **proxy)
{
    *ref = *proxy = NULL;
    if (head && is_basic_ref(head)) {
        *ref = head;
        head = head->u.link.next;
    }
    if (head && is_basic_proxy(head))
        *proxy = head;
}

static void insert_after(wref_object *ob, wref__weakref *w, wref__weakref *prev)
{
    wref__weakref *next = prev ? prev->u.link.next : head_of(ob);
    w->u.link.prev = prev;
    w->u.link.next = next;
    if (next)
        next->u.link.prev = w;
    if (prev)
        prev->u.link.next = w;
    else
        set_head(ob, w);
}

static void unlink_ref(wref_object *ob, wref__weakref *w)
{
    if (w->u.link.prev)
        w->u.link.prev->u.link.next = w->u.link.next;
    else
        set_head(ob, w->u.link.next);
    if (w->u.link.next)
        w->u.link.next->u.link.prev = w->u.link.prev;
    w->u.link.prev = w->u.link.next = NULL;
}

/* ---- the weakref object itself ---------------------------------------------------------------- */

/* Runs when the weakref dies: unlink it if still linked, drop its callback (never call it). */
static void weakref_destroy(wref_object *self)
{
    wref__weakref *w = as_weakref(self);
    wref__lock(w->stripe);
    wref_object *cb = w->callback;
    callback_clear(w);
    wref_object *ob = w->referent;
    if (ob) {
        unlink_ref(ob, w);
        referent_store(w, NULL);
    }
    wref__unlock(w->stripe);
    wref__xdecref(cb);
}

static int weakref_traverse(wref_object *self, wref_visit_fn visit, void *arg)
{
    wref__weakref *w = as_weakref(self);
    wref__lock(w->stripe);
    wref_object *cb = w->callback;
    wref__unlock(w->stripe);
    return cb ? visit(cb, arg) : 0;
}

/* The referent as a new reference, or NULL when dead or dying, under the stripe lock:
 * clearing, which precedes freeing, holds this lock, so a non-NULL referent here is still
 * allocated; its count says whether it is alive. */
static inline wref_object *strong_referent_locked(wref__weakref *w)
{
    uint32_t stripe = w->stripe;   /* immutable: read once, not again after the acquire */
    wref__lock(stripe);
    wref_object *ob = w->referent;
    if (ob && !wref__try_incref(ob))
        ob = NULL;
    wref__unlock(stripe);
    return ob;
}

#ifdef WREF__LOCKFREE_READS
/* Inside a read section: a non-NULL referent is allocated until the section ends (clearing
 * NULLs it before the free, which waits for the section); its count says whether it is
 * alive. A cleared ref costs the section's two plain stores and a load: no atomic RMW. */
static inline __attribute__((always_inline)) wref_object *strong_referent_fast(struct wref__reader *r, wref__weakref *w)
{
    wref__read_begin(r);
    wref_object *ob = referent_load(w);
    if (ob && !wref__try_incref(ob))
        ob = NULL;
    wref__read_end(r);
    return ob;
}

/* This thread's first read (it gets a reader slot), no slot could be made (the lock), or read
 * sections need a fence (no membarrier). Out of line, so that the hot paths call nothing. */
static __attribute__((noinline, cold)) wref_object *strong_referent_slow(wref__weakref *w)
{
    struct wref__reader *r = wref__reader_get();
    if (!r)
        return strong_referent_locked(w);
    wref__read_begin_any(r);
    wref_object *ob = referent_load(w);
    if (ob && !wref__try_incref(ob))
        ob = NULL;
    wref__read_end(r);
    return ob;
}
#endif

/* The referent as a new reference, or NULL when dead or dying. Release build: lock-free,
 * one CAS (smr.c). Checked build: under the stripe lock. */
static inline __attribute__((always_inline)) wref_object *strong_referent(wref__weakref *w)
{
#ifdef WREF__LOCKFREE_READS
    struct wref__reader *r = wref__reader_fast;
    if (WREF__LIKELY(r != NULL))
        return strong_referent_fast(r, w);
    return strong_referent_slow(w);
#else
    if (!referent_load(w))
        return NULL;   /* cleared: no atomic read-modify-write at all */
    return strong_referent_locked(w);
#endif
}

static wref_object *ref_call(wref_object *self, wref_object *arg)
{
    if (arg) {
        wref_err_set(WREF_ERR_TYPE, "weakref expected 0 arguments, got 1");
        return NULL;
    }
    wref_object *ob = strong_referent(as_weakref(self));
    return ob ? ob : &wref__none;
}

static wref_object *proxy_call(wref_object *self, wref_object *arg)
{
    wref_object *ob = strong_referent(as_weakref(self));
    if (!ob) {
        wref_err_set(WREF_ERR_REFERENCE, "weakly-referenced object no longer exists");
        return NULL;
    }
    wref_object *res = wref__call(ob, arg);
    wref__decref(ob);
    return res;
}

/* ---- creation ----------------------------------------------------------------------------- */

/* Returns the canonical ref/proxy of ob as a new reference, or NULL. Caller holds the lock. */
static wref__weakref *reuse_basic(wref_object *ob, bool proxy)
{
    wref__weakref *ref, *prx;
    get_basic_refs(head_of(ob), &ref, &prx);
    wref__weakref *cand = proxy ? prx : ref;
    return cand && wref__try_incref(&cand->base) ? cand : NULL;
}

/* The full creation path: every check, the locked reuse, allocation and linking. Release
 * build: out of line, behind wref_ref_new's lock-free reuse. */
#ifdef WREF_CHECKED
static inline __attribute__((always_inline))
#else
static __attribute__((noinline))
#endif
wref_object *new_weakref(wref_object *ob, wref_object *callback, bool proxy)
{
    const char *fn = proxy ? "wref_proxy_new" : "wref_ref_new";
    if (!ob) {
        wref_err_set(WREF_ERR_SYSTEM, "%s: NULL object", fn);
        return NULL;
    }
    if (callback == &wref__none)
        callback = NULL;
    if (!wref__hook_use(ob, callback ? WREF__USE_REFERENT_CB : WREF__USE_REFERENT) || (callback && !wref__hook_use(callback, WREF__USE_CALLBACK))) {
        wref_err_set(WREF_ERR_SYSTEM, "%s: invalid object", fn);
        return NULL;
    }
    if (!wref__is_weakrefable(ob)) {
        wref_err_set(WREF_ERR_TYPE, "cannot create weak reference to '%s' object", ob->ob_type_->name);
        return NULL;
    }
    if (callback && !callback->ob_type_->call) {
        wref_err_set(WREF_ERR_TYPE, "callback must be callable, not '%s'", callback->ob_type_->name);
        return NULL;
    }

    const wref_type *type = !proxy ? &wref__ref_type
                            : ob->ob_type_->call ? &wref__callable_proxy_type
                                                 : &wref__proxy_type;
    uint32_t stripe = wref__stripe_of(ob);
    wref__weakref *w;
    if (!callback) {   /* no callback: share the canonical one, allocation-free */
        wref__lock(stripe);
        w = reuse_basic(ob, proxy);
        wref__unlock(stripe);
        if (w)
            return &w->base;
    }

    w = as_weakref(wref__object_new(type));   /* outside the lock: may call user code */
    if (!w)
        return NULL;
    w->stripe = stripe;
    if (callback)
        wref__incref(callback);
    w->callback = callback;

    wref__lock(stripe);
    if (!callback) {
        /* another thread may have made the canonical one meanwhile */
        wref__weakref *won = reuse_basic(ob, proxy);
        if (won) {
            wref__unlock(stripe);
            wref__decref(&w->base);   /* never linked: its destroy only takes the lock */
            return &won->base;
        }
    }
    wref__weakref *ref, *prx, *prev;
    get_basic_refs(head_of(ob), &ref, &prx);
    if (!callback)
        prev = proxy ? ref : NULL;
    else
        prev = prx ? prx : ref;
    /* both may now be read by lock-free readers: their frees will wait for them. The
     * referent is set before the link publishes w (release), so a lock-free reuse that finds
     * w at the head also reads its referent. */
    wref__weaklist_store(ob, wref__weaklist_load(ob) | WREF__FLAG_SMR);
    wref__weaklist_store(&w->base, WREF__FLAG_SMR);
    referent_store(w, ob);
    insert_after(ob, w, prev);
    wref__unlock(stripe);
    return &w->base;
}

#ifdef WREF__LOCKFREE_READS
/* A reference to the head of ob's list if it is ob's canonical ref, taken without the lock;
 * NULL when there is none or it is dying. Inside the read section the head weakref stays
 * allocated (it was linked: its free waits); after a successful try-incref our reference keeps
 * it. The caller then checks that its referent is still ob: that it was still linked, so
 * still ob's canonical ref, after the incref. */
static inline __attribute__((always_inline)) wref__weakref *reuse_ref_fast(struct wref__reader *r, wref_object *ob)
{
    wref__read_begin(r);
    uintptr_t wl = wref__weaklist_load(ob);
    wref__weakref *w = (wref__weakref *)(wl & ~WREF__FLAG_MASK);
    if (!w || (wl & WREF__FLAG_DEFERRED) || w->base.ob_type_ != &wref__ref_type || callback_load(w) ||
        !wref__try_incref(&w->base))
        w = NULL;
    wref__read_end(r);
    return w;
}

/* The canonical ref found lock-free was unlinked before our incref: drop it, take the locked
 * path. */
static __attribute__((noinline, cold)) wref_object *reuse_lost(wref__weakref *w, wref_object *ob)
{
    wref__decref(&w->base);
    return new_weakref(ob, NULL, false);
}
#endif

/* Release build: a well-formed request for the canonical ref that already exists is served
 * lock-free, inline (reuse_ref_fast); anything else goes to new_weakref. */
wref_object *wref_ref_new(wref_object *ob, wref_object *callback)
{
#ifdef WREF__LOCKFREE_READS
    struct wref__reader *r = wref__reader_fast;
    if (WREF__LIKELY(r != NULL && ob != NULL && (callback == NULL || callback == &wref__none) &&
                     wref__is_weakrefable(ob))) {
        wref__weakref *w = reuse_ref_fast(r, ob);
        if (WREF__LIKELY(w != NULL)) {
            if (WREF__LIKELY(referent_load(w) == ob))
                return &w->base;
            return reuse_lost(w, ob);
        }
    }
#endif
    return new_weakref(ob, callback, false);
}

wref_object *wref_proxy_new(wref_object *ob, wref_object *callback)
{
    return new_weakref(ob, callback, true);
}

/* ---- type checks -------------------------------------------------------------------------- */

int wref_is_weakref(const wref_object *ob)
{
    return ob && wref__hook_use(ob, WREF__USE_QUERY) && wref__is_weakref_type(ob->ob_type_);
}

int wref_is_ref(const wref_object *ob)
{
    return ob && wref__hook_use(ob, WREF__USE_QUERY) && ob->ob_type_ == &wref__ref_type;
}

int wref_is_proxy(const wref_object *ob)
{
    return ob && wref__hook_use(ob, WREF__USE_QUERY) && is_proxy_type(ob->ob_type_);
}

/* ---- reading ----------------------------------------------------------------------------- */

/* Validates a weakref argument: 1 when ref may be read as a weakref; else an error is set. */
static int check_weakref_arg(wref_object *ref, const char *fn, wref_error not_weakref_kind)
{
    if (!ref) {
        wref_err_set(WREF_ERR_SYSTEM, "%s: NULL weakref", fn);
        return 0;
    }
    if (!wref__hook_use(ref, WREF__USE_WEAKREF)) {
        wref_err_set(WREF_ERR_SYSTEM, "%s: invalid object", fn);
        return 0;
    }
    if (!wref__is_weakref_type(ref->ob_type_)) {
        if (not_weakref_kind == WREF_ERR_TYPE)
            wref_err_set(WREF_ERR_TYPE, "expected a weakref, not '%s'", ref->ob_type_->name);
        else
            wref_err_set(not_weakref_kind, "%s: expected a weakref, not '%s'", fn, ref->ob_type_->name);
        return 0;
    }
    return 1;
}

/* wref_get_ref with every check, and the checker's hooks (the only path of the checked build). */
static WREF__SLOW_IN_RELEASE int get_ref_checked(wref_object *ref, wref_object **pobj)
{
    if (!pobj) {
        wref_err_set(WREF_ERR_SYSTEM, "wref_get_ref: NULL result pointer");
        return -1;
    }
    *pobj = NULL;
    if (!check_weakref_arg(ref, "wref_get_ref", WREF_ERR_TYPE))
        return -1;
    wref_object *ob = strong_referent(as_weakref(ref));
    if (!ob)
        return 0;
    wref__hook_strong(ob);
    *pobj = ob;
    return 1;
}

/* Release build: when this thread's reads are plain-store sections and the arguments are
 * well-formed (a ref: proxies, read this way far less often, take the full path), the whole
 * read inline, with no call and no stack frame; anything else (a first read, an error to set)
 * goes to get_ref_checked. */
int wref_get_ref(wref_object *ref, wref_object **pobj)
{
#ifdef WREF__LOCKFREE_READS
    struct wref__reader *r = wref__reader_fast;
    if (WREF__UNLIKELY(r == NULL))
        return get_ref_checked(ref, pobj);
    if (WREF__UNLIKELY(pobj == NULL))
        return get_ref_checked(ref, pobj);
    if (WREF__LIKELY(ref != NULL) && WREF__LIKELY(ref->ob_type_ == &wref__ref_type)) {
        wref_object *ob = strong_referent_fast(r, as_weakref(ref));
        *pobj = ob;
        if (!ob)
            return 0;
        wref__hook_strong(ob);
        return 1;
    }
#endif
    return get_ref_checked(ref, pobj);
}

/* Whether ob (a referent just read from w) is alive: under the lock, or (release) inside a
 * read section, which keeps its memory valid while its count is read. */
static inline wref_object *alive_referent_locked(wref__weakref *w)
{
    uint32_t stripe = w->stripe;   /* immutable: read once */
    wref__lock(stripe);
    wref_object *ob = w->referent;
    bool alive = ob && wref__load_count(ob) > 0;
    wref__unlock(stripe);
    return alive ? ob : NULL;
}

#ifdef WREF__LOCKFREE_READS
static inline __attribute__((always_inline)) wref_object *alive_referent_fast(struct wref__reader *r, wref__weakref *w)
{
    wref__read_begin(r);
    wref_object *ob = referent_load(w);
    bool alive = ob && wref__load_count(ob) > 0;
    wref__read_end(r);
    return alive ? ob : NULL;
}

static __attribute__((noinline, cold)) wref_object *alive_referent_slow(wref__weakref *w)
{
    struct wref__reader *r = wref__reader_get();
    if (!r)
        return alive_referent_locked(w);
    wref__read_begin_any(r);
    wref_object *ob = referent_load(w);
    bool alive = ob && wref__load_count(ob) > 0;
    wref__read_end(r);
    return alive ? ob : NULL;
}
#endif

/* The referent if alive, else None; no count change. After the section (or the lock) ends
 * the result is only borrowed. */
static inline __attribute__((always_inline)) wref_object *borrow_referent(wref_object *ref)
{
    wref__weakref *w = as_weakref(ref);
#ifdef WREF__LOCKFREE_READS
    struct wref__reader *r = wref__reader_fast;
    wref_object *ob = WREF__LIKELY(r != NULL) ? alive_referent_fast(r, w) : alive_referent_slow(w);
#else
    if (!referent_load(w))
        return &wref__none;
    wref_object *ob = alive_referent_locked(w);
#endif
    if (!ob)
        return &wref__none;
    wref__hook_borrow(ob, ref);
    return ob;
}

static WREF__SLOW_IN_RELEASE wref_object *get_object_checked(wref_object *ref)
{
    if (!check_weakref_arg(ref, "wref_get_object", WREF_ERR_SYSTEM))
        return NULL;
    return borrow_referent(ref);
}

wref_object *wref_get_object(wref_object *ref)
{
#ifdef WREF__LOCKFREE_READS
    if (WREF__LIKELY(ref != NULL) && WREF__LIKELY(ref->ob_type_ == &wref__ref_type))
        return borrow_referent(ref);   /* a ref; a proxy takes the full path */
#endif
    return get_object_checked(ref);
}

wref_object *wref_get_object_unchecked(wref_object *ref)
{
    if (!wref__hook_use(ref, WREF__USE_WEAKREF_UNCHECKED))
        return &wref__none;
    return borrow_referent(ref);
}

wref_object *wref_ref_callback(wref_object *ref)
{
    if (!ref || !wref__hook_use(ref, WREF__USE_QUERY) || !wref__is_weakref_type(ref->ob_type_))
        return NULL;
    wref__weakref *w = as_weakref(ref);
    wref__lock(w->stripe);
    wref_object *cb = w->callback;
    wref__unlock(w->stripe);
    return cb;
}

/* Common argument checks of the functions taking a referent: 1 to go on. */
static int check_referent_arg(wref_object *ob, const char *fn, enum wref__use use)
{
    if (!ob) {
        wref_err_set(WREF_ERR_SYSTEM, "%s: NULL object", fn);
        return 0;
    }
    if (!wref__hook_use(ob, use)) {
        wref_err_set(WREF_ERR_SYSTEM, "%s: invalid object", fn);
        return 0;
    }
    return 1;
}

size_t wref_weakrefs(wref_object *ob, wref_object **out, size_t cap)
{
    if (!check_referent_arg(ob, "wref_weakrefs", WREF__USE_QUERY) || !wref__is_weakrefable(ob))
        return 0;
    uint32_t stripe = wref__stripe_of(ob);
    size_t n = 0;
    wref__lock(stripe);
    for (wref__weakref *w = head_of(ob); w; w = w->u.link.next, n++) {
        if (n < cap)
            out[n] = wref__try_incref(&w->base) ? &w->base : NULL;
    }
    wref__unlock(stripe);
    return n;
}

size_t wref_weakref_count(wref_object *ob)
{
    return wref_weakrefs(ob, NULL, 0);
}

/* ---- clearing ----------------------------------------------------------------------------- */

void wref__clear_weakrefs(wref_object *ob, bool run_callbacks)
{
    if (!head_of(ob))
        return;   /* the common case: never weakly referenced */

    /* Phase 1, under the lock: every weakref dead and unlinked. Refs with a callback that we
     * can take a reference to are queued, in list order, with their callback stolen (so
     * wref_ref_callback reads NULL from now on, as in CPython). A ref whose own count is 0
     * is dying on another thread: its callback stays with it and its destroy drops it. */
    wref__weakref *queue = NULL, **tail = &queue;
    uint32_t stripe = wref__stripe_of(ob);
    wref__lock(stripe);
    wref__weakref *w;
    while ((w = head_of(ob)) != NULL) {
        unlink_ref(ob, w);
        referent_store(w, NULL);
        if (!w->callback)
            continue;
        if (!run_callbacks) {
            wref__hook_callback_suppressed(&w->base, ob);
        } else if (wref__try_incref(&w->base)) {
            w->u.pending.callback = w->callback;
            w->u.pending.next = NULL;
            callback_clear(w);
            *tail = w;
            tail = &w->u.pending.next;
        }
    }
    wref__unlock(stripe);
    if (!run_callbacks)
        wref__hook_suppressed_flush(ob);   /* the checker reports outside the lock */
    if (!queue)
        return;

    /* Phase 2, no lock held: the callbacks, newest first; each failure is unraisable. */
    wref__saved_error saved;
    wref__err_save(&saved);
    while ((w = queue) != NULL) {
        queue = w->u.pending.next;
        wref_object *cb = w->u.pending.callback;
        wref_object *res = wref__call(cb, &w->base);
        if (res) {
            wref__decref(res);
        } else {
            wref_error kind = wref_err_occurred();
            const char *msg = wref_err_message();
            int reported = wref__hook_callback_error(&w->base, cb, ob, kind, msg);
            wref__unraisable(kind, msg, cb, reported);
            wref_err_clear();
        }
        wref__decref(cb);
        wref__decref(&w->base);
    }
    wref__err_restore(&saved);
}

void wref_clear_weakrefs(wref_object *ob)
{
    if (!check_referent_arg(ob, "wref_clear_weakrefs", WREF__USE_CLEAR))
        return;
    if (!wref__is_weakrefable(ob)) {
        wref_err_set(WREF_ERR_SYSTEM, "wref_clear_weakrefs: '%s' objects have no weakrefs",
                     ob->ob_type_->name);
        return;
    }
    intptr_t count = wref__load_count(ob);
    if (count != 0) {
        wref_err_set(WREF_ERR_SYSTEM, "wref_clear_weakrefs: '%s' object is alive (count %ld)",
                     ob->ob_type_->name, (long)count);
        return;
    }
    wref__clear_weakrefs(ob, true);
}

void wref_clear_weakrefs_no_callbacks(wref_object *ob)
{
    if (!check_referent_arg(ob, "wref_clear_weakrefs_no_callbacks", WREF__USE_CLEAR_NO_CALLBACKS))
        return;
    if (wref__is_weakrefable(ob))
        wref__clear_weakrefs(ob, false);
}
