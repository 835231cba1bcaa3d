/* hooks.c: the checker's side of the seam (hooks.h): what each wref runtime event means, and
 * which events are findings. The policy lives here; the mechanisms are the engine's
 * (../engine/: registry.c, heap.c, borrow.c, report.c). */
#include "hooks.h"
#include "../engine/borrow.h"
#include "../engine/checker.h"
#include "../engine/core.h"
#include "../engine/finding.h"
#include "../engine/heap.h"
#include "../engine/registry.h"
#include "../engine/report.h"
#include "../engine/stack.h"
#include "../engine/stats.h"
#include "../engine/symbolize.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* ---- memory ------------------------------------------------------------------------------ */

void *wref__hook_object_alloc(size_t size)
{
    wref__checker_init();
    return wref__heap_alloc(size);
}

static int mark_freed(wref__rec *r, void *arg)
{
    if (r)
        __atomic_store_n(&r->state, WREF__FREED, __ATOMIC_RELEASE);
    *(wref__rec **)arg = r;
    return 0;
}

/* A change of the state alone: an atomic store through the lock-free lookup (registry.h), the
 * bucket lock only when the index does not name the record (then registry_with decides). The
 * object is the caller's, being destroyed, so its record cannot leave the index meanwhile. */
static wref__rec *store_state(const wref_object *ob, enum wref__state state)
{
    wref__rec *r = wref__registry_peek_inline(ob);
    if (r)
        __atomic_store_n(&r->state, (uint8_t)state, __ATOMIC_RELEASE);
    return r;
}

void wref__hook_object_free(wref_object *ob, size_t size)
{
    (void)size;   /* the heap knows it */
    wref__rec *rec = store_state(ob, WREF__FREED);
    if (!rec)
        wref__registry_with(ob, mark_freed, &rec);
    wref__heap_free(ob, rec);
}

size_t wref__hook_allocator_held(void)
{
    return wref__heap_held_chunks();
}

void wref__hook_allocator_release(void)
{
    wref__heap_release_held();
}

/* ---- life events ----------------------------------------------------------------------- */

void wref__hook_created(wref_object *ob)
{
    wref__rec *r = wref__registry_add((uintptr_t)ob, ob->ob_type_, (uint32_t)ob->ob_type_->size);
    wref__stat_add(WREF__STAT_OBJECTS, 1);
    if (r && wref__heap_is_guarded(ob)) {
        r->guarded = 1;
        wref__heap_set_guard_rec(ob, r);
    }
}

struct event {
    enum wref__state state;
    wref__stack_id stack;
};

static int set_state(wref__rec *r, void *arg)
{
    if (r)
        __atomic_store_n(&r->state, (uint8_t)((struct event *)arg)->state, __ATOMIC_RELEASE);
    return 0;
}

/* The count reached 0: where (and on which thread) the last reference was dropped. */
static int set_dying(wref__rec *r, void *arg)
{
    if (r) {
        __atomic_store_n(&r->st_destroyed, ((struct event *)arg)->stack, __ATOMIC_RELAXED);
        __atomic_store_n(&r->tno_destroyed, (uint16_t)wref__thread_no(), __ATOMIC_RELAXED);
        __atomic_store_n(&r->state, WREF__FINALIZING, __ATOMIC_RELEASE);
    }
    return 0;
}

/* Without the lock when the index names the record: this thread is the only writer of the
 * "destroyed" fields (registry.h), and the state goes last, with release. */
void wref__hook_dying(wref_object *ob)
{
    struct event e = {WREF__FINALIZING, wref__capture()};
    wref__rec *r = wref__registry_peek_inline(ob);
    if (!r) {
        wref__registry_with(ob, set_dying, &e);
        return;
    }
    __atomic_store_n(&r->st_destroyed, e.stack, __ATOMIC_RELAXED);
    __atomic_store_n(&r->tno_destroyed, (uint16_t)wref__thread_no(), __ATOMIC_RELAXED);
    __atomic_store_n(&r->state, WREF__FINALIZING, __ATOMIC_RELEASE);
}

/* finalize stored a new reference: alive again. Only the state changes (the "destroyed"
 * history stays that of the last drop to 0), and only if no other thread has since taken the
 * resurrected object to 0 again and gone on destroying it: the runtime calls this after its
 * count decrement, so that thread's events may already be recorded. */
static int set_resurrected(wref__rec *r, void *arg)
{
    (void)arg;
    if (r && __atomic_load_n(&r->state, __ATOMIC_ACQUIRE) == WREF__FINALIZING)
        __atomic_store_n(&r->state, WREF__ALIVE, __ATOMIC_RELEASE);
    return 0;
}

void wref__hook_resurrected(wref_object *ob)
{
    wref__registry_with(ob, set_resurrected, NULL);
}

/* During destruction the "destroyed" stack already shows where the weakrefs were cleared;
 * a separate "weakrefs cleared" stack is kept only for wref_clear_weakrefs_no_callbacks. */
void wref__hook_clearing(wref_object *ob)
{
    struct event e = {WREF__CLEARING, 0};
    if (!store_state(ob, WREF__CLEARING))
        wref__registry_with(ob, set_state, &e);
}

static int set_cleared(wref__rec *r, void *arg)
{
    if (r) {
        r->st_cleared = *(wref__stack_id *)arg;
        r->tno_cleared = (uint16_t)wref__thread_no();
    }
    return 0;
}

void wref__hook_cleared(wref_object *ob)
{
    struct event e = {WREF__DESTROYING, 0};
    if (!store_state(ob, WREF__DESTROYING))
        wref__registry_with(ob, set_state, &e);
}

static int copy_rec(wref__rec *r, void *arg)
{
    if (!r)
        return 0;
    *(wref__rec_copy *)arg = wref__rec_snapshot(r);
    return 1;
}

void wref__hook_destroyed(wref_object *ob)
{
    long off = wref__heap_check_redzone(ob);
    if (off < 0)
        return;
    wref__rec_copy c;
    if (!wref__registry_with(ob, copy_rec, &c))
        return;
    char what[256];
    snprintf(what, sizeof what, "memory past the end of a %u-byte object was written: the first changed "
             "byte is at offset %ld, %ld byte(s) past the end (detected when it was destroyed)",
             c.size, (long)c.size + off, off);
    wref__finding f = {.kind = WREF__K_HEAP_OVERFLOW, .what = what, .object = &c,
                       .address = c.addr + c.size + (uintptr_t)off, .where = wref__capture()};
    f.history[f.n_history++] = (wref__labelled){"created", c.st_created, c.tno_created};
    wref__report(&f);
}

/* ---- borrows ------------------------------------------------------------------------------- */

struct borrow_event {
    unsigned tno;
    wref__stack_id stack;
};

static int add_borrower(wref__rec *r, void *arg)
{
    struct borrow_event *e = arg;
    if (r)
        wref__borrow_add(r, e->tno, e->stack);
    return 0;
}

static __attribute__((noinline)) void borrow_locked(wref_object *ob, unsigned tno, wref__stack_id stack)
{
    struct borrow_event e = {tno, stack};
    wref__registry_with(ob, add_borrower, &e);
}

/* ob was alive when the runtime looked; if it died since, the borrow is recorded on its
 * (quarantined) record all the same: the program holds a dangling pointer from the start. */
void wref__hook_borrow(wref_object *ob, wref_object *ref)
{
    (void)ref;
    unsigned tno = wref__thread_no();
    wref__stack_id stack = wref__capture();
    /* a borrow repeated by this thread from the same place changes nothing: no lock */
    const wref__rec *r = wref__registry_peek_inline(ob);
    if (!r || !wref__borrow_unchanged(r, tno, stack))
        borrow_locked(ob, tno, stack);
    wref__stat_add(WREF__STAT_BORROWS, 1);   /* also borrow.c's "N recorded" (WREF__BSTAT_BORROWS) */
}

/* ---- uses ------------------------------------------------------------------------------------ */

/* What a use of a pointer is, decided under the record's bucket lock (classify). */
enum verdict {
    V_OK,            /* go on, nothing to say */
    V_UNKNOWN,       /* no record at this address */
    V_NOT_WEAKREF,   /* WREF_GET_OBJECT on an object that is not a weakref */
    V_FREED,         /* destroyed, memory still the checker's (quarantine or pin) */
    V_DYING,         /* CLEARING or DESTROYING, and the use would touch it */
    V_CLEAR_LIVE     /* wref_clear_weakrefs on an ALIVE object */
};

struct use_ctx {
    enum wref__use use;
    enum verdict verdict;
    bool report;          /* the first finding of this kind on this object */
    wref__rec_copy rec;   /* filled only when report */
};

/* The uses that touch a dying object's count or keep a pointer to it past its destruction. */
static bool touches_dying(enum wref__use u)
{
    return u == WREF__USE_INCREF || u == WREF__USE_DECREF || u == WREF__USE_REFERENT ||
           u == WREF__USE_CALL || u == WREF__USE_CALLBACK;
}

/* Sets the verdict; the first time a kind is found on a record, marks it reported. */
static void classify_state(wref__rec *r, struct use_ctx *c)
{
    uint8_t bit = 0;
    switch ((enum wref__state)__atomic_load_n(&r->state, __ATOMIC_ACQUIRE)) {
    case WREF__ALIVE:
        if (c->use == WREF__USE_CLEAR) {
            c->verdict = V_CLEAR_LIVE;
            bit = WREF__REPORTED(WREF__K_CLEAR_LIVE);
        } else if (c->use == WREF__USE_WEAKREF_UNCHECKED && !wref__is_weakref_type((const wref_type *)r->type)) {
            c->verdict = V_NOT_WEAKREF;   /* reported once per address, as invalid-object */
            return;
        }
        break;
    case WREF__FINALIZING:   /* temporarily alive: finalize may resurrect it */
        break;
    case WREF__CLEARING:
    case WREF__DESTROYING:
        if (touches_dying(c->use)) {
            c->verdict = V_DYING;
            bit = WREF__REPORTED(WREF__K_USE_AFTER_CLEAR);
        }
        break;
    case WREF__FREED:
    case WREF__GONE:
        c->verdict = V_FREED;
        bit = WREF__REPORTED(WREF__K_USE_AFTER_FREE) | WREF__REPORTED(WREF__K_DANGLING_BORROW);   /* one of the two, once */
        break;
    }
    if (bit && !(r->reported & bit)) {
        r->reported |= c->verdict == V_FREED ? (wref__borrowed(r) ? WREF__REPORTED(WREF__K_DANGLING_BORROW) : WREF__REPORTED(WREF__K_USE_AFTER_FREE))
                                             : bit;
        c->report = true;
    }
}

/* Under the record's bucket lock: the verdict, and a copy of the record when there is
 * something to report (the common, fine case copies nothing). */
static int classify(wref__rec *r, void *arg)
{
    struct use_ctx *c = arg;
    if (!r) {
        c->verdict = V_UNKNOWN;
        return 0;
    }
    classify_state(r, c);
    if (c->report || c->verdict == V_NOT_WEAKREF)
        c->rec = wref__rec_snapshot(r);
    return 0;
}

static const char *use_text(enum wref__use u)
{
    switch (u) {
    case WREF__USE_QUERY: return "read";
    case WREF__USE_INCREF: return "given a new reference (incref)";
    case WREF__USE_DECREF: return "released (decref)";
    case WREF__USE_REFERENT: return "given a new weakref";
    case WREF__USE_REFERENT_CB: return "given a new weakref with a callback";
    case WREF__USE_CALLBACK: return "registered as a weakref callback";
    case WREF__USE_WEAKREF: return "read as a weakref";
    case WREF__USE_WEAKREF_UNCHECKED: return "read as a weakref (WREF_GET_OBJECT)";
    case WREF__USE_CALL: return "called";
    case WREF__USE_CLEAR: return "passed to wref_clear_weakrefs";
    case WREF__USE_CLEAR_NO_CALLBACKS: return "passed to wref_clear_weakrefs_no_callbacks";
    }
    return "used";
}

static void add_history(wref__finding *f, const char *label, wref__stack_id st, unsigned tno)
{
    if (st && f->n_history < WREF__MAX_STACKS)
        f->history[f->n_history++] = (wref__labelled){label, st, tno};
}

static void add_object_history(wref__finding *f, const wref__rec_copy *r)
{
    add_history(f, "weakrefs cleared", r->st_cleared, r->tno_cleared);
    add_history(f, "destroyed (the last reference dropped)", r->st_destroyed, r->tno_destroyed);
    add_history(f, "created", r->st_created, r->tno_created);
}

/* A destroyed object used through a pointer it lent (wref_get_object): its record still holds
 * the borrow, whichever thread uses it. */
static void report_dangling(const struct use_ctx *c, const void *ob)
{
    unsigned me = wref__thread_no();
    int other, b = wref__borrow_pick(&c->rec, me, &other);
    unsigned by = c->rec.tno_borrow[b];
    const char *kept = (c->rec.borrow & WREF__BORROW_PINNED)
                           ? "; its memory was kept past the quarantine for this open borrow" : "";
    char what[300];
    if (by == me)
        snprintf(what, sizeof what,
                 "object %s: a borrowed pointer (from wref_get_object) used after its object was destroyed%s",
                 use_text(c->use), kept);
    else
        snprintf(what, sizeof what,
                 "object %s: a pointer borrowed by thread T%u (from wref_get_object) used by thread T%u after its "
                 "object was destroyed%s",
                 use_text(c->use), by, me, kept);
    wref__finding f = {.kind = WREF__K_DANGLING_BORROW, .what = what, .object = &c->rec,
                       .address = (uintptr_t)ob, .where = wref__capture()};
    add_history(&f, "borrowed", c->rec.st_borrow[b], by);
    if (other >= 0)
        add_history(&f, "also borrowed", c->rec.st_borrow[other], c->rec.tno_borrow[other]);
    add_object_history(&f, &c->rec);
    wref__report(&f);
}

/* invalid-object: once per address. A small lock-free set of the addresses reported; when it
 * is crowded around an address, that address is reported again (docs/checker.md). */
#define INVALID_SEEN 1024u
#define INVALID_PROBES 8u
static uintptr_t invalid_seen[INVALID_SEEN];   /* atomic; address + 1, 0 = empty */

static bool first_invalid(uintptr_t a)
{
    uintptr_t key = a + 1;
    if (!key)
        return true;
    size_t h = (size_t)(((uint64_t)a * 0x9E3779B97F4A7C15ull) >> 32) % INVALID_SEEN;
    for (unsigned i = 0; i < INVALID_PROBES; i++) {
        uintptr_t *slot = &invalid_seen[(h + i) % INVALID_SEEN];
        uintptr_t v = __atomic_load_n(slot, __ATOMIC_RELAXED);
        if (!v && __atomic_compare_exchange_n(slot, &v, key, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return true;
        if (v == key)
            return false;
    }
    return true;
}

static void report_invalid(const void *ob, const char *what, const wref__rec_copy *rec)
{
    wref__finding f = {.kind = WREF__K_INVALID_OBJECT, .what = what, .object = rec,
                       .address = (uintptr_t)ob, .where = wref__capture()};
    if (rec)
        add_history(&f, "created", rec->st_created, rec->tno_created);
    wref__report(&f);
}

/* The common case, decided without the bucket lock from the state alone (one atomic load):
 * true when classify would say V_OK with nothing to do. Any other case (a finding, an unknown
 * pointer, wref_clear_weakrefs_no_callbacks' stack) goes to classify under the lock. */
static inline bool fine_at_a_glance(const wref__rec *r, enum wref__use use)
{
    if (use == WREF__USE_CLEAR_NO_CALLBACKS)
        return false;
    switch ((enum wref__state)__atomic_load_n(&r->state, __ATOMIC_ACQUIRE)) {
    case WREF__ALIVE:
        return use != WREF__USE_CLEAR && (use != WREF__USE_WEAKREF_UNCHECKED || wref__is_weakref_type((const wref_type *)r->type));
    case WREF__FINALIZING:
        return true;
    case WREF__CLEARING:
    case WREF__DESTROYING:
        return !touches_dying(use);
    default:
        return false;
    }
}

/* The use of ob under its record's lock: the verdict, and the finding it makes. */
static __attribute__((noinline)) int use_locked(const wref_object *ob, enum wref__use use)
{
    struct use_ctx c;   /* not zeroed whole: rec (80 bytes) is filled only to be reported */
    c.use = use;
    c.verdict = V_OK;
    c.report = false;
    wref__registry_with(ob, classify, &c);

    switch (c.verdict) {
    case V_OK:
        if (use == WREF__USE_CLEAR_NO_CALLBACKS && (wref__weaklist_load(ob) & ~WREF__FLAG_MASK)) {
            wref__stack_id st = wref__capture();
            wref__registry_with(ob, set_cleared, &st);
        }
        return 1;   /* includes a live borrowed object: fine while it lives */
    case V_CLEAR_LIVE:
        if (c.report) {
            wref__finding f = {.kind = WREF__K_CLEAR_LIVE,
                               .what = "wref_clear_weakrefs called on a live object (count > 0); only its destruction may clear its weakrefs with callbacks",
                               .object = &c.rec, .address = (uintptr_t)ob, .where = wref__capture()};
            add_history(&f, "created", c.rec.st_created, c.rec.tno_created);
            wref__report(&f);
        }
        return 1;   /* memory is fine: the runtime refuses with WREF_ERR_SYSTEM, as in the release build */
    case V_DYING:
        if (c.report) {
            char what[200];
            snprintf(what, sizeof what, "object %s while it is being destroyed (its weakrefs were already cleared)",
                     use_text(use));
            wref__finding f = {.kind = WREF__K_USE_AFTER_CLEAR, .what = what, .object = &c.rec,
                               .address = (uintptr_t)ob, .where = wref__capture()};
            add_object_history(&f, &c.rec);
            wref__report(&f);
        }
        /* a canonical weakref is harmless (it dies with the object, without callbacks); the
         * rest would keep or move a count the destruction no longer looks at: refused */
        return use == WREF__USE_REFERENT;
    case V_FREED:
        if (c.report) {
            if (wref__borrowed(&c.rec)) {
                report_dangling(&c, ob);
            } else {
                char what[160];
                snprintf(what, sizeof what, "object %s after it was destroyed", use_text(use));
                wref__finding f = {.kind = WREF__K_USE_AFTER_FREE, .what = what, .object = &c.rec,
                                   .address = (uintptr_t)ob, .where = wref__capture()};
                add_object_history(&f, &c.rec);
                wref__report(&f);
            }
        }
        return 0;   /* the memory is the dead object's (quarantine or pin): never touched */
    case V_NOT_WEAKREF: {
        if (!first_invalid((uintptr_t)ob))
            return 0;
        char what[200];
        snprintf(what, sizeof what, "WREF_GET_OBJECT (wref_get_object_unchecked) was given a '%s' object, not a weakref; "
                 "the call returns None", wref__type_name(&c.rec));
        report_invalid(ob, what, &c.rec);
        return 0;
    }
    case V_UNKNOWN:
        if (wref__registry_degraded())
            return 1;   /* cannot tell: stay quiet rather than cry wolf */
        if (first_invalid((uintptr_t)ob))
            report_invalid(ob, "a pointer that wref never allocated (or that left the quarantine long ago) was passed as an object",
                           NULL);
        return 0;
    }
    return 1;
}

/* Every API entry point's check: the common, fine case is one lock-free record lookup and one
 * atomic load; the rest is use_locked's. */
int wref__hook_use(const wref_object *ob, enum wref__use use)
{
    if (ob == &wref__none || !wref__checker_ready)
        return 1;
    const wref__rec *peek = wref__registry_peek_inline(ob);
    if (__builtin_expect(peek && fine_at_a_glance(peek, use), 1))
        return 1;
    return use_locked(ob, use);
}

/* ---- callbacks ----------------------------------------------------------------------------- */

/* callback-error: named after the failing callback. Its first stack is the callback's function
 * (frame #0) followed by where the callback object was created, so that the fingerprint and
 * --gen-suppressions name the callback, not the wref_decref that happened to trigger it. One
 * finding per callback (function and creation stack): the same broken callback registered on
 * many objects fails once per object, and is reported once. */
#define CB_SEEN_MAX 1024
static struct {
    pthread_mutex_t lock;
    uint64_t keys[CB_SEEN_MAX];   /* 0: empty */
    size_t n;
} cb_seen = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* fork: the table's lock is held across fork() and released in both processes (registered
 * at the first use, before the lock can be held). A leaf lock: any order against the others. */
static void cb_seen_fork_prepare(void) { pthread_mutex_lock(&cb_seen.lock); }
static void cb_seen_fork_release(void) { pthread_mutex_unlock(&cb_seen.lock); }
static void cb_seen_register_fork(void) { pthread_atfork(cb_seen_fork_prepare, cb_seen_fork_release, cb_seen_fork_release); }
static pthread_once_t cb_seen_fork_once = PTHREAD_ONCE_INIT;

/* true when the key was seen before; records it otherwise (when there is room) */
static bool cb_seen_before(uint64_t key)
{
    key |= 1;   /* never 0 */
    pthread_once(&cb_seen_fork_once, cb_seen_register_fork);
    pthread_mutex_lock(&cb_seen.lock);
    size_t i = (size_t)(key * 0x9E3779B97F4A7C15ull >> 54) % CB_SEEN_MAX;
    bool seen = false;
    for (size_t probes = 0; probes < CB_SEEN_MAX; probes++, i = (i + 1) % CB_SEEN_MAX) {
        if (cb_seen.keys[i] == key) {
            seen = true;
            break;
        }
        if (!cb_seen.keys[i]) {
            if (cb_seen.n < CB_SEEN_MAX / 2) {   /* full: every later failure is reported */
                cb_seen.keys[i] = key;
                cb_seen.n++;
            }
            break;
        }
    }
    pthread_mutex_unlock(&cb_seen.lock);
    return seen;
}

int wref__hook_callback_error(wref_object *weakref, wref_object *callback, wref_object *referent,
                              wref_error kind, const char *message)
{
    wref__rec_copy w, ob, cbr;
    bool have_w = wref__registry_with(weakref, copy_rec, &w);
    bool have_ob = wref__registry_with(referent, copy_rec, &ob);
    bool have_cb = callback && wref__registry_with(callback, copy_rec, &cbr);
    /* the callback's function: a callback object's fn, or the call slot of its type */
    uintptr_t fn = (uintptr_t)wref__callback_fn(callback);
    if (!fn && callback && callback->ob_type_ && callback->ob_type_->call)
        fn = (uintptr_t)callback->ob_type_->call;
    wref__stack_id created = have_cb ? cbr.st_created : 0;
    uint64_t key = ((uint64_t)fn * 0xC2B2AE3D27D4EB4Full) ^ ((uint64_t)created << 1);
    if (cb_seen_before(key))
        return 1;   /* reported already: one finding per callback */

    struct wref__frame_info fi = {0};
    const char *name = fn && wref__symbolize(fn + 1, &fi) && fi.function ? fi.function : NULL;
    char type_desc[160] = "", what[600];
    if (callback)
        snprintf(type_desc, sizeof type_desc, " (a %s object)",
                 callback->ob_type_ && callback->ob_type_->name ? callback->ob_type_->name : "?");
    snprintf(what, sizeof what, "the weakref callback %s%s failed while its referent was destroyed: %s: %s",
             name ? name : "<unknown function>", type_desc, wref_err_name(kind), message ? message : "");

    /* frame #0: the callback's function (a return address one past its entry, as the
     * symbolizer expects); then the callback object's creation */
    uintptr_t pcs[WREF__STACK_MAX_DEPTH];
    size_t n = 0;
    if (fn)
        pcs[n++] = fn + 1;
    const uintptr_t *cpcs;
    size_t cn = created ? wref__stack_get(created, &cpcs) : 0;
    for (size_t i = 0; i < cn && n < WREF__STACK_MAX_DEPTH; i++)
        pcs[n++] = cpcs[i];
    wref__stack_id cb_stack = wref__stack_store(pcs, n);

    wref__finding f = {.kind = WREF__K_CALLBACK_ERROR, .what = what, .object = have_ob ? &ob : NULL,
                       .address = (uintptr_t)referent, .where = 0};
    add_history(&f, "failing callback (#0) and where it was created", cb_stack, have_cb ? cbr.tno_created : ~0u);
    if (have_w)
        add_history(&f, "callback registered (weakref created)", w.st_created, w.tno_created);
    if (have_ob) {
        add_history(&f, "referent destroyed", ob.st_destroyed, ob.tno_destroyed);
        add_history(&f, "referent created", ob.st_created, ob.tno_created);
    }
    wref__report(&f);
    return 1;   /* reported, or suppressed on purpose: either way the checker's call */
}

/* callback-suppressed: noted under the referent's stripe lock, reported after it (hooks.h).
 * Noting takes the weakref's bucket lock (lock order: stripe, then bucket) and copies what
 * the report shows of it; the stack and the report wait for the flush. Per thread, because
 * note and flush run on one thread with no user code between them. */
#define SUPPRESSED_MAX 64u
static __thread struct {
    unsigned n, lost;   /* noted; beyond SUPPRESSED_MAX, counted only */
    struct {
        wref__stack_id st_created;   /* the weakref's creation: where the callback was registered */
        uint16_t tno_created;
        bool have;
    } e[SUPPRESSED_MAX];
} suppressed;

static int note_weakref(wref__rec *r, void *arg)
{
    unsigned i = *(unsigned *)arg;
    suppressed.e[i].have = r != NULL;
    if (r) {
        suppressed.e[i].st_created = r->st_created;
        suppressed.e[i].tno_created = r->tno_created;
    }
    return 0;
}

void wref__hook_callback_suppressed(wref_object *weakref, wref_object *referent)
{
    (void)referent;
    if (suppressed.n == SUPPRESSED_MAX) {
        suppressed.lost++;
        return;
    }
    unsigned i = suppressed.n++;
    wref__registry_with(weakref, note_weakref, &i);
}

void wref__hook_suppressed_flush(wref_object *referent)
{
    unsigned n = suppressed.n, lost = suppressed.lost;
    if (!n)
        return;
    wref__rec_copy ob;
    bool have_ob = wref__registry_with(referent, copy_rec, &ob);
    bool dying = have_ob && ob.state != WREF__ALIVE;
    wref__stack_id where = wref__capture();
    char extra[120];
    for (unsigned i = 0; i < n; i++) {
        wref__finding f = {.kind = WREF__K_CALLBACK_SUPPRESSED,
                           .what = dying ? "a weakref with a callback was created while its referent was being destroyed; "
                                           "it is cleared without callbacks, so the callback never runs"
                                         : "a weakref's callback will never run: wref_clear_weakrefs_no_callbacks cleared it",
                           .object = have_ob ? &ob : NULL, .address = (uintptr_t)referent, .where = where};
        if (suppressed.e[i].have)
            add_history(&f, "callback registered (weakref created)", suppressed.e[i].st_created,
                        suppressed.e[i].tno_created);
        if (have_ob)
            add_history(&f, "referent created", ob.st_created, ob.tno_created);
        if (i == n - 1 && lost) {
            snprintf(extra, sizeof extra, "  (and %u more weakref(s) with a callback cleared by the same call)\n", lost);
            f.extra = extra;
        }
        wref__report(&f);
    }
    suppressed.n = suppressed.lost = 0;
}
