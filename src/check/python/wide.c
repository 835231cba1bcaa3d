/* wide.c: python_watch=all, the wider use-after-free mode. Every object freed through the
 * object allocator (not only the borrowed or weakly referenced ones objects.c watches) is
 * recognized at its free, quarantined and turned into a tombstone, so a later use through any
 * stale pointer reaches a tombstone slot and is reported as use-after-free.
 *
 * Recognition. The object domain also holds blocks that are no objects (dict keys, ...), and
 * the free hook gets a block, not an object. A GC object's block starts before the object by
 * its pre-header (capi.c wref__py_preheader: 16, 32), a non-GC object's at the object. At free
 * time the header is still there: ob_refcnt is 0 and ob_type is its type; an untracked GC head
 * is (0, 0 or 1). A candidate offset is accepted only when
 *   - its count is 0 (a block freed with a count is no dead object: left alone),
 *   - its type word is a type: a plausible aligned user address whose own type (the metatype)
 *     has Py_TPFLAGS_TYPE_SUBCLASS and which is Py_TPFLAGS_READY, and
 *   - wref__py_preheader(type) equals the offset.
 * A type word may be garbage, so nothing is dereferenced before it is validated: validated
 * types are kept in a set (a freed type is forgotten at its own free), and a type word not in
 * the set is read with process_vm_readv on this process, which fails with EFAULT instead of
 * faulting. Words found not to be types are remembered for a while (BAD_TTL frees) so that the
 * same non-object blocks do not cost a system call at each free; a type that is not ready yet
 * (its objects freed while the interpreter readies it) is not remembered so, or its later frees
 * would go unrecognized for that while. Header words that lie on the
 * block's own page are read directly (the block is live memory); words on the next page are
 * read through the probe too.
 *
 * Destroy stacks. Unwinding the C stack at each free costs tens of microseconds; the mode
 * captures the C and Python stacks once per destroy site in each thread: (innermost Python
 * code object, its position, the object's type). A later free of an object of the same type
 * at the same Python position reuses them (the cached code object is pinned by the Python
 * stack depot, as in objects.c's borrow site cache). So the destroy stack of a use-after-free
 * is exactly right for the first object of its type freed there, and otherwise the first one's
 * (docs/python.md says so).
 *
 * Locking: the free hook runs with the GIL held (object domain); the type set and the counters
 * are written only there, under `lock` (another interpreter thread may run between GIL
 * switches, never concurrently). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "frontend.h"
#include "pystack.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

bool wref__py_wide;

/* PyTypeObject's tp_itemsize, the same offset in 3.9-3.13 on 64-bit (tests/python/victim_uaf.c
 * checks it against each tested interpreter's headers). */
#define PY_TP_ITEMSIZE_OFFSET 40

#define TYPES 8192        /* open addressing, at most half full */
#define BAD 1024          /* direct-mapped: words that are no type */
#define BAD_TTL 100000    /* frees a "not a type" verdict is trusted */
#define SITES 1024        /* per thread: destroy sites */

static struct {
    pthread_mutex_t lock;
    uintptr_t types[TYPES];   /* 0 empty, 1 deleted */
    size_t n_types, n_used;
    struct {
        uintptr_t word;
        uint64_t until;
    } bad[BAD];
    uint64_t frees, recognized, serial;
} w = {.lock = PTHREAD_MUTEX_INITIALIZER};

typedef struct site {
    uintptr_t code, type;
    uintptr_t where;   /* the instruction (pystack.h wref__py_innermost) */
    wref__stack_id st;
    uint32_t py;
} site;
static __thread __attribute__((tls_model("initial-exec"))) site *sites;
static pthread_key_t sites_key;   /* frees a thread's table when the thread ends */
static pthread_once_t sites_once = PTHREAD_ONCE_INIT;

static void sites_free(void *table)   /* runs in the ending thread: its own `sites` */
{
    free(table);
    sites = NULL;
}

static void sites_key_make(void)
{
    (void)pthread_key_create(&sites_key, sites_free);
}

static uint64_t probes;   /* atomic: weaklists.c probes without w.lock */

bool wref__py_probe(uintptr_t addr, void *out, size_t n)
{
    struct iovec local = {out, n}, remote = {(void *)addr, n};
    __atomic_fetch_add(&probes, 1, __ATOMIC_RELAXED);
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)n;
}
#define probe wref__py_probe

bool wref__py_read_block(uintptr_t p, uintptr_t at, void *out, size_t n)
{
    if ((p >> 12) == ((at + n - 1) >> 12)) {
        memcpy(out, (const void *)at, n);
        return true;
    }
    return probe(at, out, n);
}
#define read_block wref__py_read_block

static size_t hslot(uintptr_t a)
{
    return (size_t)((a >> 3) * 0x9E3779B97F4A7C15ull >> 40);
}

static bool type_known(uintptr_t t)
{
    for (size_t i = hslot(t) % TYPES, k = 0; k < TYPES; i = (i + 1) % TYPES, k++) {
        if (w.types[i] == t)
            return true;
        if (w.types[i] == 0)
            return false;
    }
    return false;
}

static void type_add(uintptr_t t)
{
    if (w.n_used >= TYPES / 2) {   /* too many deleted or live entries: start over */
        memset(w.types, 0, sizeof w.types);
        w.n_types = w.n_used = 0;
    }
    size_t i = hslot(t) % TYPES;
    while (w.types[i] > 1)
        i = (i + 1) % TYPES;
    if (w.types[i] == 0)
        w.n_used++;
    w.types[i] = t;
    w.n_types++;
}

static void type_forget(uintptr_t t)
{
    for (size_t i = hslot(t) % TYPES, k = 0; k < TYPES && w.types[i]; i = (i + 1) % TYPES, k++)
        if (w.types[i] == t) {
            w.types[i] = 1;
            w.n_types--;
            return;
        }
}

#define plausible wref__py_plausible

bool wref__py_type_valid(uintptr_t t, bool *not_ready)
{
    unsigned char head[PY_TP_FLAGS_OFFSET + 8];
    unsigned long meta_flags = 0;
    *not_ready = false;
    if (!plausible(t) || !probe(t, head, sizeof head))
        return false;
    uintptr_t meta;
    unsigned long flags;
    ssize_t basic;
    memcpy(&meta, head + 8, sizeof meta);
    memcpy(&flags, head + PY_TP_FLAGS_OFFSET, sizeof flags);
    memcpy(&basic, head + PY_TP_BASICSIZE_OFFSET, sizeof basic);
    bool shaped = plausible(meta) && basic >= (ssize_t)sizeof(py_object) && basic < (1 << 20) &&
                  probe(meta + PY_TP_FLAGS_OFFSET, &meta_flags, sizeof meta_flags) &&
                  (meta_flags & PY_TPFLAGS_TYPE_SUBCLASS);
    /* a type but for Py_TPFLAGS_READY: one being readied (the interpreter's static types during
     * _PyTypes_InitTypes, when a shared libpython's own weakref calls started the frontend) */
    *not_ready = shaped && !(flags & PY_TPFLAGS_READY);
    return shaped && (flags & PY_TPFLAGS_READY);
}

/* t is the address of a ready type object (validated without ever faulting). */
static bool is_type(uintptr_t t)
{
    if (!plausible(t))
        return false;
    if (type_known(t))
        return true;
    size_t b = hslot(t) % BAD;
    if (w.bad[b].word == t && w.bad[b].until > w.frees)
        return false;
    bool not_ready;
    if (wref__py_type_valid(t, &not_ready)) {
        type_add(t);
        return true;
    }
    if (not_ready)
        return false;   /* no verdict kept: it is a type once ready (str, early in the start) */
    w.bad[b].word = t;
    w.bad[b].until = w.frees + BAD_TTL;
    return false;
}

/* The object in the freed block p, or NULL when p holds no dead object of a validated type. */
static py_object *recognize(uintptr_t p, py_object **type_out)
{
    static const size_t offsets[] = {0, 16, 32};
    for (size_t k = 0; k < sizeof offsets / sizeof offsets[0]; k++) {
        size_t off = offsets[k];
        uintptr_t gc[2], head[2];
        if (off && (!read_block(p, p + off - 16, gc, sizeof gc) || gc[0] != 0 || gc[1] > 1))
            continue;   /* no untracked GC head right before this candidate */
        if (!read_block(p, p + off, head, sizeof head) || head[0] != 0)
            continue;
        if (!is_type(head[1]) || wref__py_preheader((py_object *)head[1]) != off)
            continue;
        *type_out = (py_object *)head[1];
        return (py_object *)(p + off);
    }
    return NULL;
}

/* The destroy stacks of a free of an object of `type` here, cached per site (see the top). */
static void destroy_stacks(uintptr_t type, wref__stack_id *st, uint32_t *py)
{
    uintptr_t code = 0;
    uintptr_t where = 0;
    bool have = wref__py_innermost(&code, &where);
    if (!have)
        code = 0, where = 0;
    site *e = NULL;
    if (!sites && (sites = calloc(SITES, sizeof *sites))) {
        pthread_once(&sites_once, sites_key_make);
        (void)pthread_setspecific(sites_key, sites);
    }
    if (sites) {
        uint64_t h = (code * 31 ^ type ^ where * 0x9E3779B97F4A7C15ull) * 0x9E3779B97F4A7C15ull;
        e = &sites[h >> 54 & (SITES - 1)];
        if (e->st && e->code == code && e->type == type && e->where == where) {
            *st = e->st;
            *py = e->py;
            return;
        }
    }
    *st = wref__capture();
    *py = wref__py_stack_capture(wref__opt.stack_depth);
    if (e && (*py || !code))   /* a stored Python stack pins the code object */
        *e = (site){code, type, where, *st, *py};
}

wref__py_rec *wref__py_wide_record(void *block)
{
    uintptr_t p = (uintptr_t)block;
    py_object *type = NULL;
    pthread_mutex_lock(&w.lock);
    w.frees++;
    py_object *o = recognize(p, &type);
    if (o) {
        w.recognized++;
        if (wref__py_type_flags(type) & PY_TPFLAGS_TYPE_SUBCLASS)
            type_forget((uintptr_t)o);   /* the freed object is itself a type (a heap type dies) */
    } else {
        /* not recognized; it may still be the block of a type we validated (a type freed with
         * a count, or through a path we do not recognize): never trust that address again */
        type_forget(p + 16);
        type_forget(p + 32);
    }
    uint64_t serial = o ? ++w.serial : 0;
    pthread_mutex_unlock(&w.lock);
    if (!o)
        return NULL;
    wref__py_rec *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->obj = (uintptr_t)o;
    r->block = p;
    r->serial = serial;
    ssize_t basic = *(const ssize_t *)((const char *)type + PY_TP_BASICSIZE_OFFSET);
    ssize_t item = *(const ssize_t *)((const char *)type + PY_TP_ITEMSIZE_OFFSET);
    size_t size = (size_t)basic + (size_t)(r->obj - p);
    if (item > 0) {   /* a variable-size object: ob_size (its sign is the int's) follows the head */
        ssize_t n = *(const ssize_t *)(r->obj + sizeof(py_object));
        n = n < 0 ? -n : n;
        /* 3.12+ ints keep a tag there (digits << 3): an overestimate, bounded; a word that is no
         * length must not make one block look big enough to flush the quarantine */
        if (n > 0 && n < (1 << 20) && (size_t)n * (size_t)item < (1u << 20))
            size += (size_t)n * (size_t)item;
    }
    r->size = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
    r->state = WREF__PY_TOMBSTONE;
    r->how = WREF__PY_FREED;
    r->weaklist = 0;   /* a non-empty weakref list was seen before (weaklists.c): it is empty here */
    const char *name = *(const char *const *)((const char *)type + PY_TP_NAME_OFFSET);   /* no snprintf: hot */
    size_t len = name ? strnlen(name, sizeof r->type_name - 1) : 0;
    memcpy(r->type_name, name ? name : "?", name ? len : 2);   /* r is zeroed: terminated */
    destroy_stacks((uintptr_t)type, &r->st_destroy, &r->py_destroy);
    r->tno_destroy = wref__thread_no();
    return r;
}

/* ---- the tombstones by object: linear probing, backward-shift deletion, at most half full
 * (the engine heap's quarantine holds at most 65536 blocks: objects.c's count bound; a few
 * more are in the table while they are being adopted or evicted). Guarded by objects.c's lock. */
#define RECS (1u << 17)
static struct {
    uintptr_t obj;
    wref__py_rec *rec;
} *recs;

static size_t rslot(uintptr_t obj)
{
    return (size_t)((obj >> 4) * 0x9E3779B97F4A7C15ull >> (64 - 17));
}

void wref__py_wide_insert(wref__py_rec *r)
{
    if (!recs && !(recs = calloc(RECS, sizeof *recs)))
        return;   /* out of memory: the tombstone is kept, a use of it is not named */
    size_t i = rslot(r->obj);
    while (recs[i].obj)
        i = (i + 1) & (RECS - 1);
    recs[i].obj = r->obj;
    recs[i].rec = r;
}

wref__py_rec *wref__py_wide_find(uintptr_t obj)
{
    if (!recs)
        return NULL;
    for (size_t i = rslot(obj); recs[i].obj; i = (i + 1) & (RECS - 1))
        if (recs[i].obj == obj)
            return recs[i].rec;
    return NULL;
}

void wref__py_wide_remove(wref__py_rec *r)
{
    if (!recs)
        return;
    size_t i = rslot(r->obj);
    while (recs[i].obj && recs[i].rec != r)
        i = (i + 1) & (RECS - 1);
    if (!recs[i].obj)
        return;
    for (size_t j = (i + 1) & (RECS - 1); recs[j].obj; j = (j + 1) & (RECS - 1)) {
        size_t home = rslot(recs[j].obj);
        /* move j into the hole i unless its home lies cyclically in (i, j] */
        if (((j - home) & (RECS - 1)) >= ((j - i) & (RECS - 1))) {
            recs[i] = recs[j];
            i = j;
        }
    }
    recs[i].obj = 0;
    recs[i].rec = NULL;
}

static void add_destroy(wref__finding *f, const wref__py_rec *r)
{
    f->lang_history[f->n_history] = r->py_destroy;
    f->history[f->n_history++] = (wref__labelled){"destroyed (the last reference dropped)", r->st_destroy,
                                                  r->tno_destroy};
}

void wref__py_wide_report_use(const wref__py_rec *r, const char *op)
{
    wref__stack_id where = wref__capture();
    uint32_t py_where = wref__py_stack_capture(wref__opt.stack_depth);
    char what[400];
    snprintf(what, sizeof what,
             "%s of a %s that was freed: a pointer that held no reference was used after the last strong "
             "reference went away (python_watch=all)",
             op, r->type_name);
    wref__rec_copy obj = {.addr = r->obj, .serial = r->serial, .size = r->size, .state = WREF__FREED};
    wref__finding f = {.kind = WREF__K_USE_AFTER_FREE, .what = what, .object = &obj, .address = r->obj,
                       .where = where, .lang_where = py_where, .type_name = r->type_name,
                       .test_name = getenv("PYTEST_CURRENT_TEST")};
    add_destroy(&f, r);
    wref__report(&f);
}

void wref__py_wide_report_late_incref(const wref__py_rec *r, ssize_t count)
{
    char what[400];
    snprintf(what, sizeof what,
             "%zd reference(s) to a %s were taken after it was freed (a Py_INCREF through a pointer that held no "
             "reference, python_watch=all); its memory is never reused",
             count - 1, r->type_name);
    wref__rec_copy obj = {.addr = r->obj, .serial = r->serial, .size = r->size, .state = WREF__FREED};
    wref__finding f = {.kind = WREF__K_USE_AFTER_FREE, .what = what, .object = &obj, .address = r->obj,
                       .type_name = r->type_name, .test_name = getenv("PYTEST_CURRENT_TEST")};
    add_destroy(&f, r);
    wref__report(&f);
}

void wref__py_wide_init(void)
{
    if (wref__opt.python_watch != WREF__PYTHON_WATCH_ALL)
        return;
    uintptr_t x = 42, y = 0;
    if (!probe((uintptr_t)&x, &y, sizeof y) || y != 42) {
        wref__checker_warn(NULL, "python_watch=all needs process_vm_readv on this process, which failed; "
                                 "watching borrowed objects only");
        return;
    }
    wref__py_wide = true;
}

void wref__py_wide_stats(void)
{
    if (!wref__py_wide || wref__opt.verbosity < 1)
        return;
    pthread_mutex_lock(&w.lock);
    wref__checker_warn(NULL, "python frontend: python_watch=all: %llu frees seen, %llu objects tombstoned, "
                       "%llu memory probes, %zu types known",
                       (unsigned long long)w.frees, (unsigned long long)w.recognized,
                       (unsigned long long)__atomic_load_n(&probes, __ATOMIC_RELAXED),
                       w.n_types);
    pthread_mutex_unlock(&w.lock);
}

/* ---- the start in a process that never calls the weakref API from C ----------------------
 * python_watch=all must see frees from the first extension module on, also in a program whose
 * extensions never call PyWeakref_*: every extension module's init calls PyModule_Create2
 * (single-phase) or PyModuleDef_Init (multi-phase), interposed here (and redirected by
 * libwref-audit.so like the others). They start the frontend once the interpreter is
 * initialized, with python_watch=all only; otherwise they only forward. */
static void maybe_start(void)
{
    static int (*is_initialized)(void);
    if (wref__py_active)
        return;
    wref__checker_init();
    if (wref__opt.python_watch != WREF__PYTHON_WATCH_ALL && !wref__opt.python_create)
        return;   /* python_create: the create stacks of objects made before the first weakref call */
    if (!is_initialized)
        *(void **)&is_initialized = dlsym(RTLD_DEFAULT, "Py_IsInitialized");
    if (is_initialized && is_initialized())
        wref__py_start();
}

static py_object *module_create2(void *def, int api_version);
static py_object *moduledef_init(void *def);

__attribute__((no_sanitize("thread"))) static py_object *module_create2(void *def, int api_version)
{
    static py_object *(*real)(void *, int);
    if (!real)
        *(void **)&real = wref__py_real("PyModule_Create2", (void *)module_create2);
    if (!real)
        abort();
    maybe_start();
    return real(def, api_version);
}

__attribute__((no_sanitize("thread"))) static py_object *moduledef_init(void *def)
{
    static py_object *(*real)(void *);
    if (!real)
        *(void **)&real = wref__py_real("PyModuleDef_Init", (void *)moduledef_init);
    if (!real)
        abort();
    maybe_start();
    return real(def);
}

__attribute__((visibility("default"), no_sanitize("thread"))) py_object *PyModule_Create2(void *def, int api_version)
    __attribute__((alias("module_create2")));
__attribute__((visibility("default"), no_sanitize("thread"))) py_object *PyModuleDef_Init(void *def)
    __attribute__((alias("moduledef_init")));

void wref__py_wide_fork(enum wref__fork_phase phase)
{
    wref__fork_mutex(&w.lock, phase);
}
