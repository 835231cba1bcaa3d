/* callbacks.c: weakref callbacks that extension code registers (PyWeakref_NewRef and
 * PyWeakref_NewProxy with a callback), and the findings about them: callback-error,
 * callback-suppressed, callback-never-ran.
 *
 * Mechanism: the interposed NewRef/NewProxy (intercept.c) hands the real function a wrapper
 * instead of the extension's callback: an object of the type "wref_check.callback" (made
 * once with PyType_FromSpec, a GC type) that holds the real callback and its registration
 * record. The wrapper
 *   - forwards a call to the real callback and, when it raises, reports callback-error and
 *     leaves the exception as it was, so CPython prints its own "Exception ignored" lines
 *     (the wrapper's repr is the callback's repr, so they read the same);
 *   - marks its record "called"; its dealloc ends the record (the weakref died, or it was
 *     cleared: with or without calling it);
 *   - visits the real callback in tp_traverse, so reference cycles through a callback are
 *     collected exactly as without the checker.
 * This works whoever calls PyObject_ClearWeakRefs (on Debian's python3.11 the interpreter's
 * own calls are never interposed) and also when the garbage collector calls the callback.
 * Seen from Python, the only difference is the weakref's __callback__ attribute (the
 * wrapper) and the object sys.unraisablehook receives for a failing callback.
 *
 * Only registrations from extension code are wrapped: a caller inside the interpreter itself
 * (libpython or the executable: _abc, typeobject.c...) registers callbacks on objects the
 * interpreter keeps alive at exit, which are no finding.
 *
 * Locking: the GIL is held in every function here; the list of records also has a mutex,
 * because the at-exit scan may run on a thread without the GIL. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "../engine/census.h"
#include "frontend.h"
#include "origins.h"
#include "pystack.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cb_rec {
    struct cb_rec *prev, *next;   /* the live registrations (their wrapper exists) */
    uintptr_t referent;
    const char *api;              /* "PyWeakref_NewRef" or "PyWeakref_NewProxy" */
    char type_name[64];           /* the referent's type */
    wref__stack_id st_reg;
    uint32_t py_reg;
    unsigned tno_reg;
    uint8_t called;               /* the wrapper was called: the referent died */
    uint8_t exempt;               /* a type object or an immortal: kept alive by the interpreter */
    uint32_t hidden;              /* references the garbage collector could not explain at exit */
    py_object *wrapper;           /* borrowed: the wrapper owning this record */
    /* read at Python exit for a record with hidden references (name_pending), for the leak
     * graph: the callback's repr and the weakref that holds the wrapper ("" / 0: unknown) */
    char callback[160];
    char wr_type[64];
    uintptr_t wr_addr;
} cb_rec;

typedef struct wrapper {
    py_object head;
    py_object *callback;          /* strong; NULL after tp_clear */
    cb_rec *rec;                  /* owned; NULL once ended */
} wrapper;

static struct {
    pthread_mutex_t lock;
    cb_rec *head;
    size_t registered, errors, suppressed;
} cbs = {.lock = PTHREAD_MUTEX_INITIALIZER};

static py_object *cb_type;
static uintptr_t interp_base;     /* load base of the object defining the C API */

static void register_python_exit(void);

static void add_history(wref__finding *f, const char *label, wref__stack_id st, unsigned tno, uint32_t py)
{
    f->lang_history[f->n_history] = py;
    f->history[f->n_history++] = (wref__labelled){label, st, tno};
}

static void end_rec(cb_rec *r)
{
    pthread_mutex_lock(&cbs.lock);
    if (r->prev)
        r->prev->next = r->next;
    else
        cbs.head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    pthread_mutex_unlock(&cbs.lock);
    free(r);
}

/* The referent's header for a report: its watched record (serial, size), or just the address. */
static bool referent_copy(uintptr_t referent, wref__rec_copy *out, enum wref__state state)
{
    wref__py_rec r;
    if (!wref__py_rec_find(referent, &r, false, NULL))
        return false;
    *out = (wref__rec_copy){.addr = r.obj, .serial = r.serial, .size = r.size, .state = state};
    return true;
}

/* ---- the wrapper type ------------------------------------------------------------------- */

static void report_error(py_object *callback, const cb_rec *rec)
{
    py_object *et, *ev, *etb;
    wref__py.err_fetch(&et, &ev, &etb);
    if (!et)
        return;   /* NULL without an exception: CPython reports that itself (SystemError) */
    wref__py.err_normalize(&et, &ev, &etb);
    char exc_type[96], msg[300], cb_text[160], what[800];
    wref__py_type_name(et, exc_type, sizeof exc_type);
    wref__py_text(ev, false, msg, sizeof msg);
    wref__py_text(callback, true, cb_text, sizeof cb_text);
    wref__stack_id where = wref__capture();
    uint32_t py_where = wref__py_stack_capture(wref__opt.stack_depth);
    snprintf(what, sizeof what,
             "the weakref callback %s, registered from C with %s, raised %s: %s while its referent (a %s) was "
             "being destroyed here",
             cb_text, rec->api, exc_type, msg, rec->type_name);
    wref__rec_copy obj;
    bool have = referent_copy(rec->referent, &obj, WREF__CLEARING);
    wref__finding f = {.kind = WREF__K_CALLBACK_ERROR, .what = what, .object = have ? &obj : NULL,
                       .address = rec->referent, .where = where, .lang_where = py_where,
                       .type_name = rec->type_name, .test_name = getenv("PYTEST_CURRENT_TEST")};
    add_history(&f, "callback registered (weakref created)", rec->st_reg, rec->tno_reg, rec->py_reg);
    __atomic_add_fetch(&cbs.errors, 1, __ATOMIC_RELAXED);
    wref__report(&f);
    wref__py.err_restore(et, ev, etb);   /* CPython's own "Exception ignored" output follows */
}

/* Gains noted by cb_call, taken by the free of their referent (objects.c), newest kept. */
#define GAINS 16
static struct {
    uintptr_t referent;   /* 0: free slot */
    wref__py_gain g;
} gains[GAINS];
static unsigned gains_next;

static void note_gain(py_object *callback, const cb_rec *rec)
{
    wref__py_gain g = {.api = rec->api, .st_reg = rec->st_reg, .py_reg = rec->py_reg, .tno_reg = rec->tno_reg};
    wref__py_text(callback, true, g.callback, sizeof g.callback);
    pthread_mutex_lock(&cbs.lock);
    gains[gains_next % GAINS].referent = rec->referent;
    gains[gains_next++ % GAINS].g = g;
    pthread_mutex_unlock(&cbs.lock);
}

bool wref__py_callbacks_gain_take(uintptr_t referent, wref__py_gain *out)
{
    bool found = false;
    pthread_mutex_lock(&cbs.lock);
    for (unsigned i = 0; i < GAINS && !found; i++)
        if (gains[i].referent == referent) {
            *out = gains[i].g;
            gains[i].referent = 0;
            found = true;
        }
    pthread_mutex_unlock(&cbs.lock);
    return found;
}

static py_object *cb_call(py_object *self, py_object *args, py_object *kwargs)
{
    wrapper *w = (wrapper *)self;
    py_object *callback = w->callback;
    if (!callback) {   /* cleared by the garbage collector: nothing left to call */
        wref__py.incref(wref__py.none);
        return wref__py.none;
    }
    cb_rec *rec = w->rec;
    /* The referent's count before the call, when it is known alive (watched): 0 while
     * PyObject_ClearWeakRefs runs; a gain then is a resurrection in its dying window. */
    ssize_t before = -1;
    wref__py_rec o;
    if (rec && wref__py_rec_find(rec->referent, &o, false, NULL) && o.state == WREF__PY_WATCHED)
        before = ((py_object *)rec->referent)->ob_refcnt;
    if (rec)
        rec->called = 1;
    wref__py.incref(callback);   /* the call may clear the wrapper */
    py_object *r = wref__py.object_call(callback, args, kwargs);
    if (rec && before == 0 && ((py_object *)rec->referent)->ob_refcnt > 0)
        note_gain(callback, rec);
    if (!r && rec)
        report_error(callback, rec);
    wref__py.decref(callback);
    return r;
}

static py_object *cb_repr(py_object *self)
{
    wrapper *w = (wrapper *)self;
    if (w->callback)
        return wref__py.object_repr(w->callback);
    return wref__py.object_repr(wref__py.none);
}

static int cb_traverse(py_object *self, int (*visit)(py_object *, void *), void *arg)
{
    wrapper *w = (wrapper *)self;
    int rc = w->callback ? visit(w->callback, arg) : 0;
    return rc ? rc : visit(self->ob_type, arg);   /* a heap type's instances visit their type (3.9+) */
}

static int cb_clear(py_object *self)
{
    wrapper *w = (wrapper *)self;
    py_object *c = w->callback;
    w->callback = NULL;
    if (c)
        wref__py.decref(c);
    return 0;
}

static void cb_dealloc(py_object *self)
{
    wrapper *w = (wrapper *)self;
    py_object *type = self->ob_type;
    wref__py.gc_untrack(self);
    cb_rec *r = w->rec;
    w->rec = NULL;
    if (r)
        end_rec(r);
    cb_clear(self);
    wref__py.gc_del(self);
    wref__py.decref(type);
}

bool wref__py_callbacks_init(void)
{
    static py_type_slot slots[] = {
        {PY_tp_call, (void *)cb_call},         {PY_tp_repr, (void *)cb_repr},
        {PY_tp_traverse, (void *)cb_traverse}, {PY_tp_clear, (void *)cb_clear},
        {PY_tp_dealloc, (void *)cb_dealloc},
        {PY_tp_doc, (void *)"wref-check: a weakref callback registered from C, watched for errors"},
        {0, NULL}};
    static py_type_spec spec = {"wref_check.callback", (int)sizeof(wrapper), 0,
                                PY_TPFLAGS_HAVE_VERSION_TAG | PY_TPFLAGS_HAVE_GC, slots};
    py_object *et, *ev, *etb;
    wref__py.err_fetch(&et, &ev, &etb);
    cb_type = wref__py.type_from_spec(&spec);   /* kept forever */
    if (!cb_type) {
        py_object *t2, *v2, *tb2;
        wref__py.err_fetch(&t2, &v2, &tb2);
    }
    wref__py.err_restore(et, ev, etb);
    Dl_info info;
    void *api = dlsym(RTLD_DEFAULT, "Py_GetVersion");
    if (api && dladdr(api, &info))
        interp_base = (uintptr_t)info.dli_fbase;
    return cb_type != NULL;
}

static bool from_interpreter(uintptr_t pc)
{
    Dl_info info;
    return interp_base && dladdr((void *)pc, &info) && (uintptr_t)info.dli_fbase == interp_base;
}

static bool is_wrapper(py_object *o)
{
    return o && cb_type && o->ob_type == cb_type;
}

py_object *wref__py_callback_wrap(py_object *ob, py_object *callback, uintptr_t caller_pc, const char *api)
{
    if (!cb_type || !ob || !callback || callback == wref__py.none || is_wrapper(callback) ||
        from_interpreter(caller_pc))
        return NULL;
    static bool exit_registered;   /* at the first registration: extension code runs, imports work */
    if (!exit_registered) {
        exit_registered = true;
        register_python_exit();
    }
    cb_rec *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    py_object *et, *ev, *etb;
    wref__py.err_fetch(&et, &ev, &etb);
    wrapper *w = (wrapper *)wref__py.type_generic_alloc(cb_type, 0);
    if (!w) {
        py_object *t2, *v2, *tb2;   /* our failure: the registration goes on unwatched */
        wref__py.err_fetch(&t2, &v2, &tb2);
        wref__py.err_restore(et, ev, etb);
        free(r);
        return NULL;
    }
    wref__py.err_restore(et, ev, etb);
    py_object *type = ob->ob_type;
    unsigned long tflags = wref__py_type_flags(type);
    bool is_type = (tflags & PY_TPFLAGS_TYPE_SUBCLASS) != 0;
    bool immortal = wref__py.minor >= 12 && (int32_t)(uint32_t)ob->ob_refcnt < 0;
    r->referent = (uintptr_t)ob;
    r->api = api;
    r->exempt = is_type || immortal;
    wref__py_type_name(type, r->type_name, sizeof r->type_name);
    wref__py_site_stacks(caller_pc, &r->st_reg, &r->py_reg);   /* cached per call site, as borrows */
    r->tno_reg = wref__thread_no();
    wref__py.incref(callback);
    w->callback = callback;
    w->rec = r;
    r->wrapper = (py_object *)w;
    pthread_mutex_lock(&cbs.lock);
    r->next = cbs.head;
    if (cbs.head)
        cbs.head->prev = r;
    cbs.head = r;
    cbs.registered++;
    pthread_mutex_unlock(&cbs.lock);
    return (py_object *)w;
}

/* ---- callback-suppressed ------------------------------------------------------------------ */

#define SUPPRESSED_MAX 16

void wref__py_callbacks_suppressed(py_object *ob, void (*clear)(py_object *))
{
    struct {
        uintptr_t referent;
        const char *api;
        wref__stack_id st;
        uint32_t py;
        unsigned tno;
    } e[SUPPRESSED_MAX];
    unsigned n = 0, more = 0;
    char type_name[64] = "?";
    intptr_t off = ob ? wref__py_weaklist_offset(ob->ob_type) : 0;
    if (off) {
        wref__py_type_name(ob->ob_type, type_name, sizeof type_name);
        for (py_object *wr = *(py_object **)((char *)ob + off); wr;
             wr = *(py_object **)((char *)wr + PY_WR_NEXT_OFFSET)) {
            py_object *cb = *(py_object **)((char *)wr + PY_WR_CALLBACK_OFFSET);
            if (!is_wrapper(cb) || !((wrapper *)cb)->rec)
                continue;
            const cb_rec *r = ((wrapper *)cb)->rec;
            if (n == SUPPRESSED_MAX) {
                more++;
                continue;
            }
            e[n].referent = r->referent, e[n].api = r->api, e[n].st = r->st_reg, e[n].py = r->py_reg;
            e[n++].tno = r->tno_reg;
        }
    }
    clear(ob);   /* the real call: drops the callbacks, which ends their records */
    if (!n)
        return;
    wref__stack_id where = wref__capture();
    uint32_t py_where = wref__py_stack_capture(wref__opt.stack_depth);
    char what[400], extra[120];
    for (unsigned i = 0; i < n; i++) {
        snprintf(what, sizeof what,
                 "PyUnstable_Object_ClearWeakRefsNoCallbacks cleared a weakref to a %s whose callback was "
                 "registered from C with %s: the callback never runs",
                 type_name, e[i].api);
        wref__rec_copy obj;
        bool have = referent_copy(e[i].referent, &obj, WREF__CLEARING);
        wref__finding f = {.kind = WREF__K_CALLBACK_SUPPRESSED, .what = what, .object = have ? &obj : NULL,
                           .address = e[i].referent, .where = where, .lang_where = py_where,
                           .type_name = type_name, .test_name = getenv("PYTEST_CURRENT_TEST")};
        add_history(&f, "callback registered (weakref created)", e[i].st, e[i].tno, e[i].py);
        if (i == n - 1 && more) {
            snprintf(extra, sizeof extra, "  (and %u more weakref(s) with a callback cleared by the same call)\n", more);
            f.extra = extra;
        }
        __atomic_add_fetch(&cbs.suppressed, 1, __ATOMIC_RELAXED);
        wref__report(&f);
    }
}

/* ---- callback-never-ran ------------------------------------------------------------------- */

/* Objects alive when the interpreter finalizes are not leaks by themselves: CPython keeps
 * many alive (module globals reachable from a C static, classes, the objects of a __main__
 * that is never cleared) and never runs their callbacks, with or without the checker. A
 * leaked object is one that holds references nobody the garbage collector knows owns. At
 * Python exit (an atexit function registered at the first registration, so the program's own
 * atexit functions registered later have run) every referent whose callback has not run is
 * counted, in one pass over the objects the garbage collector tracks (gc.get_objects, each
 * visited with its own tp_traverse, as gc.get_referents does): its count less the references
 * those objects hold is the number of hidden references (a C Py_INCREF never released, a C
 * static). A referent that a running frame of any thread holds in a local variable is
 * explained too (on 3.11+ frames are not GC objects: a daemon thread still running at exit
 * holds such references). Only referents with hidden references whose callback still has not
 * run after finalization are reported. The cost is linear: the referents are in a hash set,
 * each tracked object is traversed once. */

/* Addresses to their index in the scan: open addressing, linear probing; 0 is no key. */
typedef struct addr_set {
    uintptr_t *keys;
    size_t *idx;
    size_t mask;
} addr_set;

static bool set_init(addr_set *s, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    s->keys = calloc(cap, sizeof *s->keys);
    s->idx = calloc(cap, sizeof *s->idx);
    s->mask = cap - 1;
    return s->keys && s->idx;
}

static size_t set_slot(const addr_set *s, uintptr_t a)
{
    size_t i = (size_t)(((uint64_t)a >> 4) * 0x9e3779b97f4a7c15ull >> 20) & s->mask;
    while (s->keys[i] && s->keys[i] != a)
        i = (i + 1) & s->mask;
    return i;
}

static size_t set_find(const addr_set *s, uintptr_t a)   /* its index, or SIZE_MAX */
{
    size_t i = set_slot(s, a);
    return s->keys[i] ? s->idx[i] : SIZE_MAX;
}

typedef struct exit_scan {
    addr_set set;
    uintptr_t *cand;   /* the referents still alive */
    ssize_t *count;    /* their counts, less each reference the tracked objects explain */
    uint8_t *local;    /* a running frame holds it in a local variable */
    size_t n;
} exit_scan;

static py_object *call1(py_object *fn, py_object *arg)
{
    py_object *t = wref__py.tuple_new(1);
    if (!t)
        return NULL;
    wref__py.incref(arg);
    wref__py.tuple_set_item(t, 0, arg);
    py_object *r = wref__py.object_call(fn, t, NULL);
    wref__py.decref(t);
    return r;
}

static py_object *call0(py_object *fn)
{
    py_object *t = wref__py.tuple_new(0);
    py_object *r = t ? wref__py.object_call(fn, t, NULL) : NULL;
    if (t)
        wref__py.decref(t);
    return r;
}

static void xdecref(py_object *o)
{
    if (o)
        wref__py.decref(o);
}

static void drop_error(void)   /* a failure here is the checker's, never the program's */
{
    py_object *et, *ev, *etb;
    wref__py.err_fetch(&et, &ev, &etb);
    xdecref(et);
    xdecref(ev);
    xdecref(etb);
}

static py_object *module_attr(const char *module, const char *name)
{
    py_object *m = wref__py.import_module(module);
    py_object *a = m ? wref__py.object_get_attr_string(m, name) : NULL;
    xdecref(m);
    return a;
}

static int explain_visit(py_object *o, void *arg)
{
    exit_scan *x = arg;
    size_t i = set_find(&x->set, (uintptr_t)o);
    if (i != SIZE_MAX)
        x->count[i]--;
    return 0;
}

/* The referents' counts less the references held by the objects in objs (gc.get_objects()'s
 * list, itself one holder of each tracked referent). Runs no Python code and allocates no
 * Python object, so no collection runs between reading the counts and the traversal. */
static void count_hidden(exit_scan *x, py_object *objs)
{
    typedef int (*traverseproc)(py_object *, int (*)(py_object *, void *), void *);
    for (size_t i = 0; i < x->n; i++)
        x->count[i] = ((py_object *)x->cand[i])->ob_refcnt;
    for (ssize_t k = 0, nk = wref__py.list_size(objs); k < nk; k++) {
        py_object *o = wref__py.list_get_item(objs, k);
        explain_visit(o, x);   /* the list's own reference */
        traverseproc tr = *(traverseproc *)((char *)o->ob_type + PY_TP_TRAVERSE_OFFSET);
        if (tr)
            tr(o, explain_visit, x);
    }
}

/* Marks the referents that a running frame (every thread's stack, sys._current_frames) holds
 * in a local variable of a function (CO_OPTIMIZED code: its co_varnames). Reading f_locals
 * makes a snapshot on 3.11/3.12, so this runs after the count. */
static void mark_frame_locals(exit_scan *x)
{
    py_object *current = module_attr("sys", "_current_frames");
    py_object *frames = current ? call0(current) : NULL;
    py_object *list = frames ? wref__py.dict_values(frames) : NULL;
    for (ssize_t k = 0, nk = list ? wref__py.list_size(list) : 0; k < nk; k++) {
        py_object *f = wref__py.list_get_item(list, k);
        wref__py.incref(f);
        for (int depth = 0; f && f != wref__py.none && depth < 10000; depth++) {
            py_object *code = wref__py.object_get_attr_string(f, "f_code");
            py_object *flags = code ? wref__py.object_get_attr_string(code, "co_flags") : NULL;
            long fl = flags ? wref__py.long_as_long(flags) : 0;
            py_object *names = (fl & 0x1 /* CO_OPTIMIZED */) ? wref__py.object_get_attr_string(code, "co_varnames") : NULL;
            py_object *locals = names ? wref__py.object_get_attr_string(f, "f_locals") : NULL;
            for (ssize_t j = 0, nj = locals ? wref__py.tuple_size(names) : 0; j < nj; j++) {
                py_object *v = wref__py.object_get_item(locals, wref__py.tuple_get_item(names, j));
                if (!v) {   /* an unbound local: KeyError */
                    drop_error();
                    continue;
                }
                size_t i = set_find(&x->set, (uintptr_t)v);
                if (i != SIZE_MAX)
                    x->local[i] = 1;
                wref__py.decref(v);
            }
            xdecref(locals);
            xdecref(names);
            xdecref(flags);
            xdecref(code);
            py_object *back = wref__py.object_get_attr_string(f, "f_back");
            wref__py.decref(f);
            f = back;
        }
        xdecref(f);
        drop_error();
    }
    xdecref(list);
    xdecref(frames);
    xdecref(current);
    drop_error();
}

/* For the leak graph: the callback's repr and its weakref (found in the referent's weakref
 * list, by the wrapper it holds as callback) of each record with hidden references, read
 * while Python still runs (at_python_exit). A repr may run Python code, so no lock is held
 * then and each wrapper is kept alive by a reference (its record lives as long as it does). */
static void name_pending(void)
{
    pthread_mutex_lock(&cbs.lock);
    size_t n = 0;
    for (cb_rec *r = cbs.head; r; r = r->next)
        n += r->hidden != 0;
    py_object **ws = n ? malloc(n * sizeof *ws) : NULL;
    size_t k = 0;
    for (cb_rec *r = cbs.head; r && ws; r = r->next)
        if (r->hidden) {
            wref__py.incref(r->wrapper);
            ws[k++] = r->wrapper;
        }
    pthread_mutex_unlock(&cbs.lock);
    for (size_t i = 0; i < k; i++) {
        wrapper *w = (wrapper *)ws[i];
        cb_rec *r = w->rec;
        if (r && w->callback) {
            char text[sizeof r->callback], wr_type[sizeof r->wr_type] = "";
            uintptr_t wr_addr = 0;
            wref__py_text(w->callback, true, text, sizeof text);
            py_object *ob = (py_object *)r->referent;
            wref__py_rec o;
            /* still alive and watched (the repr ran code: it may have died, then the callback ran) */
            intptr_t off = !r->called && wref__py_rec_find(r->referent, &o, false, NULL) && o.state == WREF__PY_WATCHED
                               ? wref__py_weaklist_offset(ob->ob_type)
                               : 0;
            for (py_object *wr = off ? *(py_object **)((char *)ob + off) : NULL; wr;
                 wr = *(py_object **)((char *)wr + PY_WR_NEXT_OFFSET))
                if (*(py_object **)((char *)wr + PY_WR_CALLBACK_OFFSET) == ws[i]) {
                    wr_addr = (uintptr_t)wr;
                    wref__py_type_name(wr->ob_type, wr_type, sizeof wr_type);
                    break;
                }
            pthread_mutex_lock(&cbs.lock);
            memcpy(r->callback, text, sizeof text);
            memcpy(r->wr_type, wr_type, sizeof wr_type);
            r->wr_addr = wr_addr;
            pthread_mutex_unlock(&cbs.lock);
        }
        wref__py.decref(ws[i]);
    }
    free(ws);
}

static py_object *at_python_exit(py_object *self, py_object *unused)
{
    (void)self;
    (void)unused;
    exit_scan x = {0};
    size_t m = 0;
    pthread_mutex_lock(&cbs.lock);
    for (cb_rec *r = cbs.head; r; r = r->next)
        m += !r->called && !r->exempt;
    uintptr_t *all = m ? malloc(m * sizeof *all) : NULL;
    size_t k = 0;
    for (cb_rec *r = cbs.head; r && all; r = r->next)
        if (!r->called && !r->exempt)
            all[k++] = r->referent;
    pthread_mutex_unlock(&cbs.lock);
    py_object *get_objects = NULL, *objs = NULL;
    if (!k || !set_init(&x.set, k) || !(x.cand = malloc(k * sizeof *x.cand)) ||
        !(x.count = malloc(k * sizeof *x.count)) || !(x.local = calloc(k, 1)))
        goto out;
    if (!(get_objects = module_attr("gc", "get_objects")) || !(objs = call0(get_objects)))
        goto out;
    /* after gc.get_objects (which may have collected): only referents still alive, once each */
    for (size_t j = 0; j < k; j++) {
        wref__py_rec o;
        size_t s = set_slot(&x.set, all[j]);
        if (x.set.keys[s] || !wref__py_rec_find(all[j], &o, false, NULL) || o.state != WREF__PY_WATCHED)
            continue;
        x.set.keys[s] = all[j];
        x.set.idx[s] = x.n;
        x.cand[x.n++] = all[j];
    }
    count_hidden(&x, objs);
    mark_frame_locals(&x);
    pthread_mutex_lock(&cbs.lock);
    for (cb_rec *r = cbs.head; r; r = r->next) {
        size_t i = r->called || r->exempt ? SIZE_MAX : set_find(&x.set, r->referent);
        if (i != SIZE_MAX && x.count[i] > 0 && !x.local[i])
            r->hidden = (uint32_t)x.count[i];
    }
    pthread_mutex_unlock(&cbs.lock);
    name_pending();
out:
    xdecref(objs);
    xdecref(get_objects);
    drop_error();
    free(all);
    free(x.set.keys);
    free(x.set.idx);
    free(x.cand);
    free(x.count);
    free(x.local);
    wref__py.incref(wref__py.none);
    return wref__py.none;
}

static void register_python_exit(void)
{
    static py_method_def def = {"wref_check_at_exit", (void *)at_python_exit, PY_METH_NOARGS, NULL};
    py_object *et, *ev, *etb;
    wref__py.err_fetch(&et, &ev, &etb);
    py_object *atexit = wref__py.import_module("atexit");
    py_object *reg = atexit ? wref__py.object_get_attr_string(atexit, "register") : NULL;
    py_object *fn = reg ? wref__py.cfunction_new_ex(&def, NULL, NULL) : NULL;
    py_object *r = fn ? call1(reg, fn) : NULL;
    xdecref(r);
    xdecref(fn);
    xdecref(reg);
    xdecref(atexit);
    drop_error();
    wref__py.err_restore(et, ev, etb);
}

/* A reported referent's part of the leak graph (exit_graph). */
typedef struct never_ran {
    const cb_rec *rec;     /* its registration (a copy) */
    wref__py_rec obj;      /* its referent's record */
    size_t finding;        /* the finding's id; 0: suppressed */
    size_t age;            /* position in registration order (0: oldest) */
} never_ran;

static int never_ran_cmp(const void *a, const void *b)
{
    const never_ran *x = a, *y = b;
    if (x->obj.serial != y->obj.serial)
        return x->obj.serial < y->obj.serial ? -1 : 1;
    return x->age < y->age ? -1 : x->age > y->age;
}

/* The referents of callback-never-ran in the leak graph (census.h, wref__census_add_graph),
 * which the engine's census cannot find (these records are not the registry's): one object
 * per referent (its type, address, size and where it was created: the innermost Python frame
 * of its create stack), with each weakref whose callback never ran (the weakref's type and
 * address, the callback's repr), so that `wref-check report --format=dot` draws them as it
 * draws the wref frontend's leaked objects and pending weakrefs.
 * No edges: the referent's children could be listed at Python exit (tp_traverse with the GIL
 * held runs no Python code, as count_hidden does), but they are objects no record describes
 * (no serial, no history), many are freed by finalization before this runs, and what keeps
 * the referent alive is a reference from C that no traversal shows; after finalization (here)
 * there is no interpreter to traverse under at all. */
static void exit_graph(never_ran *e, size_t n)
{
    if (!n)
        return;
    qsort(e, n, sizeof *e, never_ran_cmp);
    wref__graph_weak *weak = calloc(n, sizeof *weak);
    if (!weak)
        return;
    for (size_t i = 0, j; i < n; i = j) {
        const wref__py_rec *o = &e[i].obj;
        for (j = i; j < n && e[j].obj.serial == o->serial; j++) {
            const cb_rec *r = e[j].rec;
            weak[j - i] = (wref__graph_weak){.type = r->wr_type[0] ? r->wr_type : NULL, .addr = r->wr_addr,
                                             .callback = r->callback[0] ? r->callback : NULL, .api = r->api,
                                             .finding = e[j].finding};
        }
        const wref__lang_frame *frames;
        size_t nf = o->py_create && wref__lang_stack_get ? wref__lang_stack_get(o->py_create, &frames) : 0;
        char created[300];
        if (nf)
            snprintf(created, sizeof created, "%s:%d in %s", frames[0].file, frames[0].line, frames[0].function);
        else if (o->why_create != WREF__PY_ORIGIN_NONE)   /* "created: not recorded (why)" */
            snprintf(created, sizeof created, "%s", wref__py_origin_label(o->why_create) + strlen("created: "));
        wref__graph_obj g = {.frontend = "python", .serial = o->serial, .type = e[i].rec->type_name,
                             .size = o->size, .addr = o->obj, .role = WREF__LEAK_DIRECT,
                             .finding = e[i].finding, .created = nf || o->why_create != WREF__PY_ORIGIN_NONE ? created : NULL,
                             .weak = weak, .n_weak = j - i};
        wref__census_add_graph(&g);
    }
    free(weak);
}

/* At exit, after the interpreter finalized: a registration whose wrapper is still alive (its
 * weakref is alive and was never cleared) and was never called, whose referent was never
 * freed (it is still watched, not a tombstone) and held hidden references at Python exit:
 * the referent leaked, the callback never ran. The referents then go into the leak graph. */
void wref__py_callbacks_exit(void)
{
    pthread_mutex_lock(&cbs.lock);
    size_t n = 0;
    for (cb_rec *r = cbs.head; r; r = r->next)
        n += !r->called && !r->exempt && r->hidden;
    cb_rec *copies = n ? calloc(n, sizeof *copies) : NULL;
    size_t k = 0;
    for (cb_rec *r = cbs.head; r && copies; r = r->next)
        if (!r->called && !r->exempt && r->hidden)
            copies[k++] = *r;
    pthread_mutex_unlock(&cbs.lock);
    never_ran *graph = k ? calloc(k, sizeof *graph) : NULL;
    size_t n_graph = 0;
    /* oldest registration first (the list is newest first) */
    for (size_t i = k; i-- > 0;) {
        const cb_rec *r = &copies[i];
        wref__py_rec o;
        if (!wref__py_rec_find(r->referent, &o, false, NULL) || o.state != WREF__PY_WATCHED)
            continue;   /* freed (a tombstone: reported as such if at all) or never watched */
        char what[700], cb[200] = "";
        if (r->callback[0])
            snprintf(cb, sizeof cb, "; the callback is %s", r->callback);
        snprintf(what, sizeof what,
                 "a weakref callback registered from C with %s never ran: its referent, a %s, is still alive "
                 "at exit; it leaked: at Python exit %u reference(s) to it were held by nothing the garbage "
                 "collector knows (a Py_INCREF in C never released)%s",
                 r->api, r->type_name, r->hidden, cb);
        wref__rec_copy obj = {.addr = o.obj, .serial = o.serial, .size = o.size, .state = WREF__ALIVE};
        wref__finding f = {.kind = WREF__K_CALLBACK_NEVER_RAN, .what = what, .object = &obj,
                           .address = r->referent, .type_name = r->type_name};
        add_history(&f, "callback registered (weakref created)", r->st_reg, r->tno_reg, r->py_reg);
        size_t id = wref__report(&f);
        if (graph)
            graph[n_graph++] = (never_ran){.rec = r, .obj = o, .finding = id, .age = k - 1 - i};
    }
    exit_graph(graph, n_graph);
    free(graph);
    free(copies);
}

void wref__py_callbacks_stats(size_t *registered, size_t *errors, size_t *suppressed)
{
    pthread_mutex_lock(&cbs.lock);
    *registered = cbs.registered;
    pthread_mutex_unlock(&cbs.lock);
    *errors = __atomic_load_n(&cbs.errors, __ATOMIC_RELAXED);
    *suppressed = __atomic_load_n(&cbs.suppressed, __ATOMIC_RELAXED);
}

void wref__py_callbacks_fork(enum wref__fork_phase phase)
{
    wref__fork_mutex(&cbs.lock, phase);
}
