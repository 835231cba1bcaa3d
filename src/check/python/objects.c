/* objects.c: the watched Python objects and the chained object-domain allocator.
 *
 * The allocator hook wraps the one installed before it (pymalloc, the debug hooks of
 * PYTHONMALLOC=debug, tracemalloc's...) exactly as tracemalloc does: every call is forwarded
 * to the saved allocator, except the free of a watched block, which is kept and turned into a
 * tombstone. The block waits in the engine heap's quarantine (engine/heap.h: adopted, so
 * without header, redzone or poison; FIFO, bounded by quarantine_mb and MAX_QUARANTINED
 * blocks). When it leaves (evicted), its record leaves the tables and the block is freed
 * through the saved allocator, unless its count shows that someone took a reference after
 * the free (reported) or weakrefs still point into it (pinned): that memory is never reused.
 *
 * Locking: one mutex (tab.lock) for the tables, taken by every change. Nothing that can call
 * back into the allocator (stack capture, reports) runs with it held; a per-thread flag makes
 * the hook a plain forwarder while the frontend itself allocates. The order: tab.lock before
 * the engine heap's lock. A block is adopted with tab.lock not held, and the heap calls
 * evicted() without its own lock held, which then takes tab.lock.
 *
 * Lock-free reads: a borrow of an object that is watched already and holds this borrow's
 * stacks, and a free or malloc of a block that is not watched, change nothing and take no
 * lock. They walk the hash chains with atomic loads and trust what they read only when
 * wref__py_seq.generation is even and the same before and after (a sequence lock: it is odd while
 * a record is unlinked or leaves the watched state). A borrow known to each thread's last site
 * (known.h) also needs wref__py_seq.borrows unchanged: it is bumped after a
 * watched record's borrow facts change. That needs type-stable records: they are
 * never returned to malloc but kept on a free list (pool), so a reader that still holds a
 * record that was unlinked and reused reads a record, never freed memory; the walk is
 * bounded, and anything the reader cannot trust goes to the locked path. Nothing here relies
 * on the GIL: an extension may reach PyObject_Free without it. The lock is held across fork
 * (wref__py_objects_fork): a thread that holds it without the GIL (a free from an extension
 * that dropped the GIL) or while another forks with the GIL released leaves the child a lock
 * nobody would release. */
#include "frontend.h"
#include "../engine/heap.h"
#include "origins.h"
#include "pystack.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS WREF__PY_BUCKETS
#define MAX_WATCHED 200000
#define MAX_QUARANTINED 65536   /* the engine quarantine's count bound (wide.c's table holds as many) */
#define POOL_CHUNK 512    /* records per allocation of the pool */
#define MAX_WALK WREF__PY_MAX_WALK

static struct {
    pthread_mutex_t lock;
    py_mem_allocator saved;           /* the allocator we wrap */
    wref__py_rec *by_block[BUCKETS];   /* by_obj: wref__py_by_obj (frontend.h reads it inline) */
    size_t watched;                   /* atomic reads on the fast path */
    size_t tombstones_total, dropped;
    uint64_t next_serial;
    wref__py_rec *pool;               /* free records (linked by pool_next), never freed */
} tab = {.lock = PTHREAD_MUTEX_INITIALIZER};

wref__py_seq_t wref__py_seq;   /* written under tab.lock (frontend.h) */
wref__py_rec *wref__py_by_obj[BUCKETS];
#define by_obj wref__py_by_obj

/* What lock-free readers read is loaded with acquire and stored with release (no fences:
 * ThreadSanitizer does not support them; on x86 these are plain moves): a reader that sees a
 * store made after gen_begin then sees the odd generation too. */
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

/* The sequence lock's writer side (tab.lock held): around an unlink, or a record leaving the
 * watched state. */
static void gen_begin(void)
{
    __atomic_store_n(&wref__py_seq.generation, wref__py_seq.generation + 1, __ATOMIC_RELAXED);
}

static void gen_end(void)
{
    __atomic_store_n(&wref__py_seq.generation, wref__py_seq.generation + 1, __ATOMIC_RELEASE);
}

/* The reader's check after its reads: nothing it read was being changed. */
static inline __attribute__((always_inline)) bool gen_still(uint64_t g)
{
    return !(g & 1) && __atomic_load_n(&wref__py_seq.generation, __ATOMIC_RELAXED) == g;
}

static __thread __attribute__((tls_model("initial-exec"))) int in_frontend;
/* Set by the malloc hook: wref__py_alloc_ensure's probe allocation reached it. */
static __thread __attribute__((tls_model("initial-exec"))) int hook_seen;

static size_t slot(uintptr_t a)
{
    return wref__py_slot(a);
}

static wref__py_rec *find_block(uintptr_t block)
{
    for (wref__py_rec *r = tab.by_block[slot(block)]; r; r = r->next_block)
        if (r->block == block)
            return r;
    return NULL;
}

static wref__py_rec *find_obj(uintptr_t obj)
{
    for (wref__py_rec *r = by_obj[slot(obj)]; r; r = r->next_obj)
        if (r->obj == obj)
            return r;
    return NULL;
}

/* Lock-free: whether block is in the table; false only when it surely is not (then the
 * generation was g before and after; g is read by the caller with acquire). */
static bool block_absent(uintptr_t block, uint64_t g)
{
    const wref__py_rec *r = LOAD(tab.by_block[slot(block)]);
    for (int n = 0; r; r = LOAD(r->next_block))
        if (LOAD(r->block) == block || ++n == MAX_WALK)
            return false;
    return gen_still(g);
}

/* A record from the pool (tab.lock held), zeroed; NULL when out of memory. */
static wref__py_rec *rec_new(void)
{
    if (!tab.pool) {
        wref__py_rec *c = calloc(POOL_CHUNK, sizeof *c);   /* never freed: type-stable */
        if (!c)
            return NULL;
        for (size_t i = 0; i < POOL_CHUNK; i++) {
            c[i].pool_next = tab.pool;
            tab.pool = &c[i];
        }
    }
    wref__py_rec *r = tab.pool;
    tab.pool = r->pool_next;
    /* field by field: a lock-free reader may still be reading it (it will not trust it) */
    STORE(r->next_block, NULL);
    STORE(r->next_obj, NULL);
    r->pool_next = NULL;
    STORE(r->obj, 0);
    STORE(r->block, 0);
    r->serial = 0;
    r->size = 0;
    STORE(r->state, WREF__PY_WATCHED);
    r->reported = r->pinned = 0;
    STORE(r->how, 0);
    r->weaklist = 0;
    r->type_name[0] = 0;
    STORE(r->borrow_stacks, 0);
    r->st_destroy = 0;
    r->py_destroy = 0;
    STORE(r->tno_borrow, 0);
    r->tno_destroy = 0;
    r->st_create = 0;
    r->py_create = 0;
    r->tno_create = 0;
    r->why_create = 0;
    return r;
}

/* Records back to the pool (tab.lock held): unlinked ones of this file's tables; python_watch=all's
 * own (wide.c's, never in these tables) are freed. */
static void rec_put(wref__py_rec *r)
{
    if (r->how == WREF__PY_FREED) {
        free(r);
        return;
    }
    r->pool_next = tab.pool;
    tab.pool = r;
}

static void unlink_rec(wref__py_rec *r)
{
    if (r->how == WREF__PY_FREED) {   /* python_watch=all: in wide.c's table only */
        wref__py_wide_remove(r);
        return;
    }
    gen_begin();
    for (wref__py_rec **p = &tab.by_block[slot(r->block)]; *p; p = &(*p)->next_block)
        if (*p == r) {
            STORE(*p, r->next_block);
            break;
        }
    for (wref__py_rec **p = &by_obj[slot(r->obj)]; *p; p = &(*p)->next_obj)
        if (*p == r) {
            STORE(*p, r->next_obj);
            break;
        }
    if (r->state == WREF__PY_WATCHED)
        STORE(tab.watched, tab.watched - 1);
    gen_end();
}

/* A watched block came back from the allocator, or was resized: it was freed in a way we did
 * not see (another domain, a custom tp_free), so its record is stale. */
static void forget_block(void *p)
{
    if (!p || !LOAD(tab.watched) || in_frontend)
        return;
    if (block_absent((uintptr_t)p, __atomic_load_n(&wref__py_seq.generation, __ATOMIC_ACQUIRE)))
        return;
    pthread_mutex_lock(&tab.lock);
    wref__py_rec *r = find_block((uintptr_t)p);
    if (r && r->state == WREF__PY_WATCHED) {
        unlink_rec(r);
        rec_put(r);
    }
    pthread_mutex_unlock(&tab.lock);
}

/* ---- the hook -------------------------------------------------------------------------- */

static void *py_object_malloc_hook(void *ctx, size_t size)
{
    (void)ctx;
    hook_seen = 1;
    void *p = tab.saved.malloc(tab.saved.ctx, size);
    forget_block(p);
    wref__py_origin_alloc(p, size, (uintptr_t)__builtin_return_address(0));
    return p;
}

static void *py_object_calloc_hook(void *ctx, size_t n, size_t size)
{
    (void)ctx;
    void *p = tab.saved.calloc(tab.saved.ctx, n, size);
    forget_block(p);
    wref__py_origin_alloc(p, n * size, (uintptr_t)__builtin_return_address(0));
    return p;
}

static void *py_object_realloc_hook(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    forget_block(ptr);
    void *p = tab.saved.realloc(tab.saved.ctx, ptr, size);
    if (p != ptr)
        forget_block(p);
    wref__py_origin_realloc(ptr, p, size, (uintptr_t)__builtin_return_address(0));
    return p;
}

/* The engine heap's release callback (heap.h; heap.lock not held): the tombstone r of `block`
 * left the quarantine. Its record leaves the tables and goes back to the pool, and the memory
 * goes back to the saved allocator unless it is still pointed into: weakrefs (pinned,
 * dangling-weakref, reported), or references taken after the free (a count above the
 * tombstone's 1: a late Py_INCREF, reported here unless a finding named the object before).
 * That memory is never reused. */
static void evicted(void *owner, void *block, size_t size)
{
    (void)size;
    wref__py_rec *r = owner, late;
    in_frontend++;
    pthread_mutex_lock(&tab.lock);
    unlink_rec(r);
    ssize_t count = ((py_object *)r->obj)->ob_refcnt;
    bool keep = r->pinned || count != 1;
    bool report = !r->pinned && count != 1 && !r->reported;
    if (report)
        late = *r;   /* the record goes back to the pool now */
    rec_put(r);
    pthread_mutex_unlock(&tab.lock);
    if (report)
        wref__py_report_late_incref(&late, count);
    if (!keep)
        tab.saved.free(tab.saved.ctx, block);
    in_frontend--;
}

/* The block of a watched object is freed: its dealloc ran and the last reference is gone. */
static void tombstone(wref__py_rec *r)
{
    in_frontend++;
    bool wide = r->how == WREF__PY_FREED;   /* python_watch=all: stacks set, not in the tables yet */
    wref__stack_id st = wide ? r->st_destroy : wref__capture();
    uint32_t py = wide ? r->py_destroy : wref__py_stack_capture(wref__opt.stack_depth);
    /* A dealloc runs at count 0 and frees at count 0. References taken after the count had
     * reached 0 (in the dying window: a weakref callback that resurrected the object through
     * a pointer that held no reference) are still held now, and point at freed memory. */
    ssize_t held = ((py_object *)r->obj)->ob_refcnt;
    bool reported_before = r->reported;   /* under the lock of the finding that set it */
    if (r->weaklist && *(void **)(r->obj + r->weaklist) != NULL) {
        /* Its dealloc never cleared its weakrefs (gh-108295's bug class), or a weakref was made
         * after they were cleared: they point into this block. Reported now, kept forever; a
         * use through such a weakref reaches the tombstone and raises ReferenceError without
         * a second finding. */
        r->pinned = 1;
        r->reported = 1;
        wref__py_rec copy = *r;
        copy.st_destroy = st, copy.py_destroy = py, copy.tno_destroy = wref__thread_no();
        if (!reported_before && held == 0)
            wref__py_report_dangling_weakref(&copy, st, py);
    }
    if (held > 0 && !reported_before) {
        r->reported = 1;
        wref__py_rec copy = *r;
        copy.st_destroy = st, copy.py_destroy = py, copy.tno_destroy = wref__thread_no();
        wref__py_gain gain;
        bool have_gain = wref__py_callbacks_gain_take(r->obj, &gain);
        wref__py_report_use_after_clear(&copy, held, NULL, st, py, have_gain ? &gain : NULL);
    }
    wref__py_tombstone_make((py_object *)r->obj);
    if (held > 0)   /* the holders' Py_DECREFs bring it back to the tombstone's count */
        ((py_object *)r->obj)->ob_refcnt += held;
    pthread_mutex_lock(&tab.lock);
    if (wide)
        wref__py_wide_insert(r);
    r->st_destroy = st;
    r->py_destroy = py;
    r->tno_destroy = wref__thread_no();
    tab.tombstones_total++;
    void *block = (void *)r->block;
    size_t size = r->size;
    pthread_mutex_unlock(&tab.lock);
    /* r is the quarantine's from here: evicted() may return it to the pool at once */
    wref__heap_adopt(block, size, r, evicted);
    in_frontend--;
}

/* The record of o in the unwatched block p, freed with a non-empty weakref list
 * (weaklists.c), made now and put in the tables as a tombstone's (so that a use through those
 * weakrefs names it), with its create stack and, as its "weakref created" stack, where the
 * list's head was allocated; NULL when out of memory. */
static __attribute__((noinline)) wref__py_rec *weaklisted(uintptr_t p)
{
    wref__py_weaklist wls, *wl = &wls;
    py_object *o = wref__py_weaklisted(p, wl);
    if (!o)
        return NULL;
    in_frontend++;
    wref__py_rec c = {0};   /* the stacks, found before the lock: may allocate (forwarded) */
    c.why_create = (uint8_t)wref__py_origin_get(p, &c.st_create, &c.py_create, &c.tno_create);
    c.why_weakref = (uint8_t)wref__py_origin_get(wl->head_block, &c.st_borrow, &c.py_borrow, &c.tno_borrow);
    pthread_mutex_lock(&tab.lock);
    wref__py_rec *r = find_block(p) || find_obj((uintptr_t)o) ? NULL : rec_new();
    if (r) {
        STORE(r->obj, (uintptr_t)o);
        STORE(r->block, p);
        r->serial = ++tab.next_serial;
        ssize_t basic = *(ssize_t *)((char *)o->ob_type + PY_TP_BASICSIZE_OFFSET);
        r->size = (uint32_t)(basic + (ssize_t)((uintptr_t)o - p));
        STORE(r->state, WREF__PY_TOMBSTONE);   /* never counted as watched */
        STORE(r->how, WREF__PY_WEAKLISTED);
        r->weaklist = wl->wl;
        wref__py_type_name(o->ob_type, r->type_name, sizeof r->type_name);
        STORE(r->borrow_stacks, wref__py_stacks_pack(c.st_borrow, c.py_borrow));
        STORE(r->tno_borrow, c.tno_borrow);
        r->why_weakref = c.why_weakref;
        r->st_create = c.st_create, r->py_create = c.py_create, r->tno_create = c.tno_create;
        r->why_create = c.why_create;
        STORE(r->next_block, tab.by_block[slot(p)]);
        __atomic_store_n(&tab.by_block[slot(p)], r, __ATOMIC_RELEASE);
        STORE(r->next_obj, by_obj[slot(r->obj)]);
        __atomic_store_n(&by_obj[slot(r->obj)], r, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&tab.lock);
    in_frontend--;
    return r;
}

/* The free of a block that may be watched (some object is): its record, now a tombstone's. */
static __attribute__((noinline)) wref__py_rec *watched_free(void *p)
{
    if (block_absent((uintptr_t)p, __atomic_load_n(&wref__py_seq.generation, __ATOMIC_ACQUIRE)))
        return NULL;
    pthread_mutex_lock(&tab.lock);
    wref__py_rec *r = tab.watched ? find_block((uintptr_t)p) : NULL;
    if (r && r->state == WREF__PY_WATCHED) {
        gen_begin();
        STORE(r->state, WREF__PY_TOMBSTONE);
        STORE(tab.watched, tab.watched - 1);
        gen_end();
    } else {
        r = NULL;
    }
    pthread_mutex_unlock(&tab.lock);
    return r;
}

/* The frontend's own frees: only the type cache's bookkeeping (weaklists.c). */
static __attribute__((noinline)) void weaklisted_forget(uintptr_t p)
{
    wref__py_weaklist wl;
    (void)wref__py_weaklisted(p, &wl);
}

static void py_object_free_hook(void *ctx, void *p)
{
    (void)ctx;
    if (!p) {
    } else if (__builtin_expect(in_frontend, 0)) {
        if (wref__py_weaklists && wref__py_weaklisted_maybe((uintptr_t)p))
            weaklisted_forget((uintptr_t)p);
    } else {
        wref__py_rec *r = LOAD(tab.watched) ? watched_free(p) : NULL;
        if (!r && wref__py_weaklists && wref__py_weaklisted_maybe((uintptr_t)p))
            r = weaklisted((uintptr_t)p);   /* freed with weakrefs still pointing at it */
        if (!r && wref__py_wide) {   /* python_watch=all: any dead object (wide.c) */
            in_frontend++;
            r = wref__py_wide_record(p);
            in_frontend--;
        }
        if (r) {
            tombstone(r);
            wref__py_origin_free(p);
            return;
        }
    }
    wref__py_origin_free(p);
    tab.saved.free(tab.saved.ctx, p);
}

static void hook_set(void)
{
    py_mem_allocator a = {NULL, py_object_malloc_hook, py_object_calloc_hook, py_object_realloc_hook,
                          py_object_free_hook};
    wref__py.mem_get_allocator(PY_MEM_DOMAIN_OBJ, &tab.saved);
    wref__py.mem_set_allocator(PY_MEM_DOMAIN_OBJ, &a);
}

bool wref__py_alloc_install(void)
{
    wref__py_origins_init();
    wref__heap_set_max_blocks(MAX_QUARANTINED);
    hook_set();
    return true;
}

void wref__py_alloc_ensure(void)
{
    py_mem_allocator cur;
    wref__py.mem_get_allocator(PY_MEM_DOMAIN_OBJ, &cur);
    if (cur.malloc == py_object_malloc_hook)
        return;   /* ours is on top */
    /* Another hook is on top (tracemalloc started after us wraps ours and restores it when
     * stopped): does its chain still reach ours? One probe allocation through it says. */
    in_frontend++;
    hook_seen = 0;
    void *b = cur.malloc(cur.ctx, 1);
    bool reached = hook_seen || !b;
    if (b)
        cur.free(cur.ctx, b);
    in_frontend--;
    if (reached)
        return;
    /* Dropped: tracemalloc started before us (PYTHONTRACEMALLOC) wrapped by ours, then stopped
     * (it restores the allocator it saved, which predates ours). Wrap the current one again:
     * blocks allocated through the old chain are freed through the same underlying allocator. */
    hook_set();
    if (wref__opt.verbosity >= 1)
        wref__checker_warn(NULL, "python frontend: the object allocator hook was removed (tracemalloc.stop() after "
                       "PYTHONTRACEMALLOC or an earlier tracemalloc.start()); installed again");
}

/* ---- tracemalloc.stop() ------------------------------------------------------------------
 * When tracemalloc was tracing at the hook's installation, the hook wraps tracemalloc's, and
 * tracemalloc.stop() restores the allocator tracemalloc had saved, which drops the hook. The
 * module's stop is replaced by one that calls it and then installs the hook again at once (so
 * nothing freed or allocated after the stop is missed); a reference to the old function taken
 * before leaves only wref__py_alloc_ensure's check at the next watch. */
static py_object *tm_stop_real;   /* _tracemalloc.stop, kept forever */

static py_object *tm_stop(py_object *self, py_object *unused)
{
    (void)self, (void)unused;
    py_object *args = wref__py.tuple_new(0);
    py_object *r = args ? wref__py.object_call(tm_stop_real, args, NULL) : NULL;
    if (args)
        wref__py.decref(args);
    wref__py_alloc_ensure();
    return r;
}

/* Is tracemalloc tracing (started before the hook: PYTHONTRACEMALLOC, -X tracemalloc, or by the
 * program)? Asked only when its module is imported or one of those is set, so that no module is
 * imported for it otherwise. */
static py_object *tracemalloc_module_if_tracing(void)
{
    py_object *name = wref__py.unicode_from_string("_tracemalloc");
    py_object *m = name ? wref__py.import_get_module(name) : NULL;
    if (name)
        wref__py.decref(name);
    const char *env = getenv("PYTHONTRACEMALLOC");
    py_object *xopts = m ? NULL : wref__py.sys_get_xoptions();
    if (!m && ((env && *env) || (xopts && wref__py.dict_get_item_string(xopts, "tracemalloc"))))
        m = wref__py.import_module("_tracemalloc");
    py_object *is = m ? wref__py.object_get_attr_string(m, "is_tracing") : NULL;
    py_object *args = is ? wref__py.tuple_new(0) : NULL;
    py_object *r = args ? wref__py.object_call(is, args, NULL) : NULL;
    bool tracing = r && wref__py.long_as_long(r) == 1;
    py_object *drop[] = {is, args, r};
    for (size_t i = 0; i < 3; i++)
        if (drop[i])
            wref__py.decref(drop[i]);
    if (m && !tracing) {
        wref__py.decref(m);
        m = NULL;
    }
    return m;
}

void wref__py_tracemalloc_watch(void)
{
    static py_method_def def = {"stop", (void *)tm_stop, PY_METH_NOARGS,
                                "Stop tracing Python memory allocations.\n\n"
                                "Also clear traces of memory blocks allocated by Python."};
    int (*initialized)(void);
    *(void **)&initialized = dlsym(RTLD_DEFAULT, "Py_IsInitialized");
    if (!initialized || !initialized())
        return;   /* a start inside the interpreter's own initialisation: tracemalloc starts later */
    py_object *et, *ev, *etb;
    wref__py.err_fetch(&et, &ev, &etb);
    in_frontend++;
    py_object *m = tracemalloc_module_if_tracing();
    py_object *real = m ? wref__py.object_get_attr_string(m, "stop") : NULL;
    py_object *fn = real ? wref__py.cfunction_new_ex(&def, NULL, NULL) : NULL;
    if (fn && wref__py.object_set_attr_string(m, "stop", fn) == 0) {
        tm_stop_real = real;   /* kept */
        real = NULL;
        py_object *name = wref__py.unicode_from_string("tracemalloc");   /* its Python module, if imported */
        py_object *tm = name ? wref__py.import_get_module(name) : NULL;
        if (tm) {
            (void)wref__py.object_set_attr_string(tm, "stop", fn);
            wref__py.decref(tm);
        }
        if (name)
            wref__py.decref(name);
    }
    py_object *drop[] = {fn, real, m};
    for (size_t i = 0; i < 3; i++)
        if (drop[i])
            wref__py.decref(drop[i]);
    py_object *t2, *v2, *tb2;   /* a failure here is not the program's exception */
    wref__py.err_fetch(&t2, &v2, &tb2);
    py_object *drop2[] = {t2, v2, tb2};
    for (size_t i = 0; i < 3; i++)
        if (drop2[i])
            wref__py.decref(drop2[i]);
    in_frontend--;
    wref__py.err_restore(et, ev, etb);
}

/* ---- watching ------------------------------------------------------------------------- */

/* Borrow sites seen by this thread: (C caller, innermost Python code object and instruction)
 * -> the stacks captured the first time. A hit costs no unwinding and no frame walk; its
 * stacks are those of the first borrow from the same C call site and Python position. The
 * code object of a cached entry is pinned by the Python stack depot (an entry is made only
 * when it is the innermost frame of the stored stack), so its address is never another code
 * object's. */
#define SITE_CACHE 256
typedef struct site {
    uintptr_t pc, code, where;
    wref__stack_id st;
    uint32_t py;
} site;
static __thread __attribute__((tls_model("initial-exec"))) site *site_cache;   /* SITE_CACHE entries */

/* True when the stacks are the site's (cached, or now stored in the cache). */
static inline __attribute__((always_inline)) bool site_stacks(const wref__py_site_key *k, wref__stack_id *st, uint32_t *py)
{
    site *e = NULL;
    if (k->code && (site_cache || (site_cache = calloc(SITE_CACHE, sizeof *site_cache)))) {
        uint64_t h = (k->pc ^ (k->code * 31) ^ k->where * 0x9E3779B97F4A7C15ull) * 0x9E3779B97F4A7C15ull;
        e = &site_cache[h >> 56 & (SITE_CACHE - 1)];
        if (e->pc == k->pc && e->code == k->code && e->where == k->where && e->st) {
            *st = e->st;
            *py = e->py;
            return true;
        }
    }
    *st = wref__capture();
    *py = wref__py_stack_capture(wref__opt.stack_depth);
    if (e && *py && wref__py_stack_innermost_code(*py) == k->code) {   /* the stored stack pins the code object */
        *e = (site){k->pc, k->code, k->where, *st, *py};
        return true;
    }
    return false;
}

void wref__py_site_stacks(uintptr_t pc, wref__stack_id *st, uint32_t *py)
{
    wref__py_site_key k = wref__py_site_key_of(pc);
    site_stacks(&k, st, py);
}

static __thread __attribute__((tls_model("initial-exec"))) unsigned my_tno;   /* thread number + 1; 0: not yet */

static inline __attribute__((always_inline)) unsigned thread_no(void)
{
    if (__builtin_expect(!my_tno, 0))
        my_tno = wref__thread_no() + 1;
    return my_tno - 1;
}

/* After a recorded borrow of o at k (how) with stacks st/py (cacheable: the site's own), the
 * counters read under the lock right after it (gen, borrows): o known at this thread's last
 * site (known.h). Any other recorded borrow changed a record's facts (and bumped borrows) or
 * made a new record, which no entry can name (the object's earlier record, if any, was
 * unlinked: the generation moved). */
static void set_last(py_object *o, uintptr_t key, const wref__py_site_key *k, uint64_t gen, uint64_t borrows,
                     int how, bool cacheable, wref__stack_id st, uint32_t py, unsigned tno)
{
    wref__py_last *l = &wref__py_last_borrow;
    if (how == WREF__PY_BORROWED && cacheable &&
        wref__py_last_set(l, *k, wref__py_stacks_pack(st, py), tno, gen, borrows))
        wref__py_known_enter(l, key, (uintptr_t)o);
}

void wref__py_watch_borrow_at(py_object *o, uintptr_t key, uintptr_t caller_pc, uintptr_t code, uintptr_t where,
                              int how)
{
    wref__py_alloc_ensure();   /* a watch is worth nothing if the free will not be seen */
    in_frontend++;
    const wref__py_site_key k = {caller_pc, code, where};
    wref__stack_id st;
    uint32_t py;
    bool cacheable = site_stacks(&k, &st, &py);
    unsigned tno = thread_no();
    py_object *type = o->ob_type;
    uintptr_t block = (uintptr_t)o - wref__py_preheader(type);

    pthread_mutex_lock(&tab.lock);
    wref__py_rec *r = find_obj((uintptr_t)o);
    if (r && r->state == WREF__PY_WATCHED && r->block == block) {   /* borrowed again: the newest borrow */
        uint64_t stacks = wref__py_stacks_pack(st, py);
        if (r->borrow_stacks != stacks || r->tno_borrow != tno || r->how != (uint8_t)how) {
            STORE(r->borrow_stacks, stacks);
            STORE(r->tno_borrow, tno);
            STORE(r->how, (uint8_t)how);
            STORE(wref__py_seq.borrows, wref__py_seq.borrows + 1);   /* after: frontend.h */
        }
        uint64_t g = wref__py_seq.generation, b = wref__py_seq.borrows;
        pthread_mutex_unlock(&tab.lock);
        set_last(o, key, &k, g, b, how, cacheable, st, py, tno);
        in_frontend--;
        return;
    }
    if (r) {   /* a tombstone handed out again (a weakref that was never cleared) or a stale record */
        pthread_mutex_unlock(&tab.lock);
        in_frontend--;
        return;
    }
    if (tab.watched >= MAX_WATCHED || !(r = rec_new())) {
        tab.dropped++;
        pthread_mutex_unlock(&tab.lock);
        in_frontend--;
        return;
    }
    STORE(r->obj, (uintptr_t)o);
    STORE(r->block, block);
    r->serial = ++tab.next_serial;
    ssize_t basic = *(ssize_t *)((char *)type + PY_TP_BASICSIZE_OFFSET);
    r->size = (uint32_t)(basic + (ssize_t)((uintptr_t)o - block));
    STORE(r->state, WREF__PY_WATCHED);
    STORE(r->how, (uint8_t)how);
    r->weaklist = wref__py_weaklist_offset(type);
    wref__py_type_name(type, r->type_name, sizeof r->type_name);
    STORE(r->borrow_stacks, wref__py_stacks_pack(st, py));
    STORE(r->tno_borrow, tno);
    STORE(r->next_block, tab.by_block[slot(block)]);
    __atomic_store_n(&tab.by_block[slot(block)], r, __ATOMIC_RELEASE);   /* published filled in */
    STORE(r->next_obj, by_obj[slot(r->obj)]);
    __atomic_store_n(&by_obj[slot(r->obj)], r, __ATOMIC_RELEASE);
    STORE(tab.watched, tab.watched + 1);
    uint64_t g = wref__py_seq.generation, b = wref__py_seq.borrows;
    pthread_mutex_unlock(&tab.lock);
    wref__py_rec c = {0};   /* its create stacks (origins.c), found outside the lock: may allocate */
    c.why_create = (uint8_t)wref__py_origin_get(block, &c.st_create, &c.py_create, &c.tno_create);
    pthread_mutex_lock(&tab.lock);
    if (find_obj((uintptr_t)o) == r)   /* still the record (it cannot have been evicted meanwhile, but check) */
        r->st_create = c.st_create, r->py_create = c.py_create, r->tno_create = c.tno_create, r->why_create = c.why_create;
    pthread_mutex_unlock(&tab.lock);
    set_last(o, key, &k, g, b, how, cacheable, st, py, tno);
    in_frontend--;
}

void wref__py_watch_borrow(py_object *o, uintptr_t caller_pc, int how)
{
    wref__py_site_key k = wref__py_site_key_of(caller_pc);
    uint64_t gen = __atomic_load_n(&wref__py_seq.generation, __ATOMIC_ACQUIRE);
    if (how == WREF__PY_BORROWED && wref__py_borrow_known(o, (uintptr_t)o, k, gen))
        return;
    wref__py_watch_borrow_at(o, (uintptr_t)o, k.pc, k.code, k.where, how);
}

void wref__py_check_dying_slow(py_object *o, const char *api, uintptr_t caller_pc, int how)
{
    wref__py_rec r;
    bool first = false;
    bool had = wref__py_rec_find((uintptr_t)o, &r, true, &first);
    if (!had) {   /* first contact: watch it, then report without an earlier history */
        wref__py_watch_borrow(o, caller_pc, how);
        if (!wref__py_rec_find((uintptr_t)o, &r, true, &first))
            return;
    }
    if (!first)
        return;
    in_frontend++;
    wref__stack_id where = wref__capture();
    uint32_t py = wref__py_stack_capture(wref__opt.stack_depth);
    if (!had)
        r.st_borrow = 0;   /* no earlier borrow or weakref to show */
    wref__py_report_use_after_clear(&r, 0, api, where, py, NULL);
    in_frontend--;
}

bool wref__py_rec_find(uintptr_t obj, wref__py_rec *out, bool mark_reported, bool *first)
{
    pthread_mutex_lock(&tab.lock);
    wref__py_rec *r = find_obj(obj);
    if (!r && wref__py_wide)
        r = wref__py_wide_find(obj);
    if (r) {
        *out = *r;
        if (first)
            *first = !r->reported;
        if (mark_reported)
            r->reported = 1;
    }
    pthread_mutex_unlock(&tab.lock);
    return r != NULL;
}

void wref__py_objects_exit(void)
{
    /* The quarantined tombstones, oldest first; with tab.lock held none of them can leave
     * (evicted() takes it first), and more may come meanwhile (adopted without it). */
    pthread_mutex_lock(&tab.lock);
    void **q = NULL;
    size_t n = wref__heap_adopted(evicted, NULL, 0), cap = 0;
    while (n > cap) {
        free(q);
        cap = n + 64;
        if (!(q = calloc(cap, sizeof *q)))
            break;
        n = wref__heap_adopted(evicted, q, cap);
    }
    size_t k = 0;
    for (size_t i = 0; q && i < n; i++) {   /* the late ones to the front */
        wref__py_rec *r = q[i];
        if (((py_object *)r->obj)->ob_refcnt != 1 && !r->reported)
            q[k++] = r;
    }
    wref__py_rec *late = k ? calloc(k, sizeof *late) : NULL;
    ssize_t *counts = late ? calloc(k, sizeof *counts) : NULL;
    if (!counts)
        k = 0;
    for (size_t i = 0; i < k; i++) {
        wref__py_rec *r = q[i];
        r->reported = 1;
        counts[i] = ((py_object *)r->obj)->ob_refcnt;
        late[i] = *r;   /* a copy: the record may leave once the lock is dropped */
    }
    pthread_mutex_unlock(&tab.lock);
    for (size_t i = 0; i < k; i++)
        wref__py_report_late_incref(&late[i], counts[i]);
    free(q);
    free(late);
    free(counts);
}

void wref__py_objects_fork(enum wref__fork_phase phase)
{
    wref__fork_mutex(&tab.lock, phase);
}

void wref__py_objects_stats(size_t *watched, size_t *tombstones, size_t *dropped)
{
    pthread_mutex_lock(&tab.lock);
    *watched = (size_t)tab.next_serial;
    *tombstones = tab.tombstones_total;
    *dropped = tab.dropped;
    pthread_mutex_unlock(&tab.lock);
}
