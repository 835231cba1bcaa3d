/* hooks.c: the checker's side of the seam (hooks.h): what each runtime event means, and
 * which events are findings. The policy lives here; the mechanisms are in registry.c, heap.c,
 * borrow.c and report.c. */
#include "checker.h"
#include "stats.h"

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
        r->state = WREF__FREED;
    *(wref__rec **)arg = r;
    return 0;
}

void wref__hook_object_free(wref_object *ob, size_t size)
{
    wref__rec *rec = NULL;
    wref__registry_with(ob, mark_freed, &rec);
    wref__heap_free(ob, size, rec);
}

/* ---- life events ----------------------------------------------------------------------- */

void wref__hook_created(wref_object *ob)
{
    wref__rec *r = wref__registry_add(ob);
    wref__stat_add(WREF__STAT_OBJECTS, 1);
    if (r && wref__heap_is_guarded(ob)) {
        r->guarded = 1;
        wref__heap_set_guard_rec(ob, r);
    }
    if (wref__borrow_any())
        wref__borrow_end((uintptr_t)ob);   /* this thread now holds a new object here */
}

struct event {
    enum wref__state state;
    wref__stack_id stack;
    int which;   /* 0: destroyed site, 1: cleared site, 2: none */
};

static int set_state(wref__rec *r, void *arg)
{
    struct event *e = arg;
    if (!r)
        return 0;
    r->state = (uint8_t)e->state;
    if (e->which == 0) {
        r->st_destroyed = e->stack;
        r->tno_destroyed = (uint16_t)wref__thread_no();
    } else if (e->which == 1) {
        r->st_cleared = e->stack;
    }
    return 0;
}

void wref__hook_dying(wref_object *ob)
{
    struct event e = {WREF__FINALIZING, wref__capture(), 0};
    wref__registry_with(ob, set_state, &e);
}

void wref__hook_resurrected(wref_object *ob)
{
    struct event e = {WREF__ALIVE, 0, 0};
    wref__registry_with(ob, set_state, &e);
}

/* During destruction the "destroyed" stack already shows where the weakrefs were cleared;
 * a separate "weakrefs cleared" stack is kept only for wref_clear_weakrefs_no_callbacks. */
void wref__hook_clearing(wref_object *ob)
{
    struct event e = {WREF__CLEARING, 0, 2};
    wref__registry_with(ob, set_state, &e);
}

static int set_cleared(wref__rec *r, void *arg)
{
    if (r)
        r->st_cleared = *(wref__stack_id *)arg;
    return 0;
}

void wref__hook_cleared(wref_object *ob)
{
    struct event e = {WREF__DESTROYING, 0, 2};
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
    long off = wref__heap_check_redzone(ob, ob->ob_type_->size);
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

static int serial_of(wref__rec *r, void *arg)
{
    *(uint64_t *)arg = r ? r->serial : 0;
    return 0;
}

void wref__hook_borrow(wref_object *ob, wref_object *ref)
{
    uint64_t serial = 0, ref_serial = 0;
    wref__registry_with(ob, serial_of, &serial);
    wref__registry_with(ref, serial_of, &ref_serial);
    if (serial) {
        wref__borrow_record((uintptr_t)ob, serial, ref_serial, wref__capture());
        wref__stat_add(WREF__STAT_BORROWS, 1);
    }
}

/* A new strong reference to a *newer* object at a borrowed address: that borrow is over (its
 * object died, and this thread now legitimately holds what lives there). A strong reference
 * to the borrowed object itself ends nothing: the borrowed pointer may outlive it. */
void wref__hook_strong(wref_object *ob)
{
    wref__borrow b;
    if (!wref__borrow_any() || !wref__borrow_find((uintptr_t)ob, &b))
        return;
    uint64_t serial = 0;
    wref__registry_with(ob, serial_of, &serial);
    if (serial != b.serial)
        wref__borrow_end((uintptr_t)ob);
}

/* ---- uses ------------------------------------------------------------------------------------ */

enum verdict { V_OK, V_UNKNOWN, V_FREED, V_RECYCLED, V_DYING, V_CLEAR_LIVE, V_SILENT_BLOCK };

struct use_ctx {
    enum wref__use use;
    bool have_borrow;
    wref__borrow borrow;
    enum verdict verdict;
    wref__rec_copy rec;
};

static bool touches_dying(enum wref__use u)
{
    return u == WREF__USE_INCREF || u == WREF__USE_DECREF || u == WREF__USE_REFERENT || u == WREF__USE_CALL;
}

/* Under the record's bucket lock: classify the use; mark what will be reported. */
static int classify_state(wref__rec *r, struct use_ctx *c);

/* Under the record's bucket lock: the verdict, and a copy of the record when there is
 * something to report (the common, fine case copies nothing). */
static int classify(wref__rec *r, void *arg)
{
    struct use_ctx *c = arg;
    classify_state(r, c);
    if (r && c->verdict != V_OK && c->verdict != V_SILENT_BLOCK)
        c->rec = wref__rec_snapshot(r);
    return 0;
}

static int classify_state(wref__rec *r, struct use_ctx *c)
{
    if (!r) {
        c->verdict = V_UNKNOWN;
        memset(&c->rec, 0, sizeof c->rec);
        return 0;
    }
    switch ((enum wref__state)r->state) {
    case WREF__ALIVE:
        if (c->have_borrow && c->borrow.serial != r->serial) {
            c->verdict = V_RECYCLED;   /* the address now holds a newer object */
        } else if (c->use == WREF__USE_CLEAR) {
            c->verdict = V_CLEAR_LIVE;
        }
        return 0;
    case WREF__FINALIZING:
        return 0;
    case WREF__CLEARING:
    case WREF__DESTROYING:
        if (touches_dying(c->use)) {
            if (r->reported & WREF__REPORTED_UAC) {
                c->verdict = V_SILENT_BLOCK;
            } else {
                r->reported |= WREF__REPORTED_UAC;
                c->verdict = V_DYING;
            }
        }
        return 0;
    case WREF__FREED:
    case WREF__GONE:
        if (r->reported & (WREF__REPORTED_UAF | WREF__REPORTED_DANGLING)) {
            c->verdict = V_SILENT_BLOCK;
        } else {
            r->reported |= c->have_borrow && c->borrow.serial == r->serial ? WREF__REPORTED_DANGLING
                                                                              : WREF__REPORTED_UAF;
            c->verdict = V_FREED;
        }
        return 0;
    }
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
    add_history(f, "weakrefs cleared", r->st_cleared, r->tno_destroyed);
    add_history(f, "destroyed (the last reference dropped)", r->st_destroyed, r->tno_destroyed);
    add_history(f, "created", r->st_created, r->tno_created);
}

/* A dangling borrow whose object's record may already be recycled: name it from the borrow. */
static void report_dangling(struct use_ctx *c, const void *ob, bool recycled)
{
    wref__rec_copy old;
    bool have = wref__graveyard_find(c->borrow.serial, &old);
    if (!have && !recycled && c->rec.serial == c->borrow.serial) {
        old = c->rec;
        have = true;
    }
    char what[200];
    snprintf(what, sizeof what,
             "object %s: a borrowed pointer (from wref_get_object) used after its object was destroyed%s",
             use_text(c->use), recycled ? "; its address now holds a newer object" : "");
    wref__finding f = {.kind = WREF__K_DANGLING_BORROW, .what = what, .object = have ? &old : NULL,
                       .address = (uintptr_t)ob, .where = wref__capture()};
    add_history(&f, "borrowed", c->borrow.st_borrow, wref__thread_no());
    if (have) {
        add_object_history(&f, &old);
    } else {
        static char extra[96];
        snprintf(extra, sizeof extra, "  (object serial #%llu: its history left the graveyard)\n",
                 (unsigned long long)c->borrow.serial);
        f.extra = extra;
    }
    wref__report(&f);
}

int wref__hook_use(const wref_object *ob, enum wref__use use)
{
    if (ob == &wref__none || !wref__checker_ready)
        return 1;
    struct use_ctx c;   /* not zeroed whole: rec (64 bytes) is filled only to be reported */
    c.use = use;
    c.verdict = V_OK;
    c.have_borrow = wref__borrow_any() && wref__borrow_find((uintptr_t)ob, &c.borrow);
    wref__registry_with(ob, classify, &c);

    switch (c.verdict) {
    case V_OK:
        if (use == WREF__USE_CLEAR_NO_CALLBACKS && (wref__weaklist_load(ob) & ~WREF__FLAG_MASK)) {
            wref__stack_id st = wref__capture();
            wref__registry_with(ob, set_cleared, &st);
        }
        return 1;   /* includes a live borrowed object: fine while it lives */
    case V_SILENT_BLOCK:
        return 0;
    case V_CLEAR_LIVE: {
        wref__finding f = {.kind = WREF__K_CLEAR_LIVE,
                           .what = "wref_clear_weakrefs called on a live object (count > 0); only its destruction may clear its weakrefs with callbacks",
                           .object = &c.rec, .address = (uintptr_t)ob, .where = wref__capture()};
        add_history(&f, "created", c.rec.st_created, c.rec.tno_created);
        wref__report(&f);
        return 1;   /* memory is fine: the runtime refuses with WREF_ERR_SYSTEM */
    }
    case V_DYING: {
        char what[200];
        snprintf(what, sizeof what, "object %s while it is being destroyed (its weakrefs were already cleared)",
                 use_text(use));
        wref__finding f = {.kind = WREF__K_USE_AFTER_CLEAR, .what = what, .object = &c.rec,
                           .address = (uintptr_t)ob, .where = wref__capture()};
        add_object_history(&f, &c.rec);
        wref__report(&f);
        return use == WREF__USE_REFERENT;   /* a canonical weakref is harmless; the rest is refused */
    }
    case V_RECYCLED:
        /* The address holds a live, newer object: the operation is memory-safe, so it goes on
         * (refusing it would change what the program does, e.g. leak the new object). */
        report_dangling(&c, ob, true);
        wref__borrow_end((uintptr_t)ob);
        return 1;
    case V_FREED:
        if (c.have_borrow && c.borrow.serial == c.rec.serial) {
            report_dangling(&c, ob, false);
            wref__borrow_end((uintptr_t)ob);   /* reported once; the address may hold a new object later */
        } else {
            char what[160];
            snprintf(what, sizeof what, "object %s after it was destroyed", use_text(use));
            wref__finding f = {.kind = WREF__K_USE_AFTER_FREE, .what = what, .object = &c.rec,
                               .address = (uintptr_t)ob, .where = wref__capture()};
            add_object_history(&f, &c.rec);
            wref__report(&f);
        }
        return 0;
    case V_UNKNOWN:
        if (c.have_borrow) {
            report_dangling(&c, ob, false);
            wref__borrow_end((uintptr_t)ob);
            return 0;
        }
        if (wref__registry_degraded())
            return 1;   /* cannot tell: stay quiet rather than cry wolf */
        {
            wref__finding f = {.kind = WREF__K_INVALID_OBJECT,
                               .what = "a pointer that wref never allocated (or that left the quarantine long ago) was passed as an object",
                               .object = NULL, .address = (uintptr_t)ob, .where = wref__capture()};
            wref__report(&f);
        }
        return 0;
    }
    return 1;
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

/* true when the key was seen before; records it otherwise (when there is room) */
static bool cb_seen_before(uint64_t key)
{
    key |= 1;   /* never 0 */
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

void wref__hook_callback_suppressed(wref_object *weakref, wref_object *referent)
{
    wref__rec_copy w, ob;
    bool have_w = wref__registry_with(weakref, copy_rec, &w);
    bool have_ob = wref__registry_with(referent, copy_rec, &ob);
    bool dying = have_ob && ob.state != WREF__ALIVE;
    wref__finding f = {.kind = WREF__K_CALLBACK_SUPPRESSED,
                       .what = dying ? "a weakref with a callback was created while its referent was being destroyed; "
                                       "it is cleared without callbacks, so the callback never runs"
                                     : "a weakref's callback will never run: wref_clear_weakrefs_no_callbacks cleared it",
                       .object = have_ob ? &ob : NULL, .address = (uintptr_t)referent, .where = wref__capture()};
    if (have_w)
        add_history(&f, "callback registered (weakref created)", w.st_created, w.tno_created);
    if (have_ob)
        add_history(&f, "referent created", ob.st_created, ob.tno_created);
    wref__report(&f);
}
