/* fuzz_api.c: libFuzzer target for the public API (include/wref.h), checked against a model.
 *
 * The input is a program of API operations. Each operation runs twice, in two "worlds":
 *   real   the library (objects, weakrefs and callback objects made by wref_*);
 *   model  a small reference model of the semantics (docs/semantics.md, docs/api.md):
 *          counts, the weakref list in the order of semantics.md section 2, the destruction
 *          protocol of section 4, callbacks newest first.
 * Both worlds run the same interpreter (run_op) over the same bytes; it only calls the be_*
 * primitives, which dispatch on the world. Callbacks, finalizers and destroy functions carry a
 * small program of their own (an "action", 8 bytes stored when they are created) that the
 * interpreter runs when they are called, in whichever world called them: a callback can drop
 * references, create objects and weakrefs, clear weakrefs, resurrect, fail. Every observable
 * step (finalize, destroy, callback call, unraisable report, each operation's result and error)
 * goes to a per-world event log.
 *
 * After every top-level operation the two worlds must agree exactly: the event logs, which
 * things exist, every count, every weakref's referent (live or dead) and callback, every
 * weakref list in order, the pending error kind, and the number of live allocations. At the
 * end every reference the harness holds is dropped, ownership edges are broken, and nothing
 * may be left: every object destroyed and every block returned to the allocator
 * (wref_set_allocator). Any difference calls abort() after printing both worlds' view.
 *
 * Things are named by ids, 1.. in creation order (the same in both worlds while they agree);
 * id 0 is None. The harness holds strong references as counts per id (held[]), so operations
 * only touch objects it owns a reference to, plus "self" and "arg" inside an action (the
 * object being finalized or destroyed, the referent of a weakref whose callback runs, and
 * that weakref), and only in the ways the API allows for a dying object.
 *
 * Built two ways (tests/fuzz/CMakeLists.txt): with -fsanitize=fuzzer (clang), and with
 * replay_main.c as an ordinary program that runs the corpus (any compiler, in CTest). */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wref.h>

#define MAX_IDS 384      /* things created per input, None included */
#define MAX_OPS 512      /* top-level operations per input */
#define MAX_DEPTH 6      /* nesting of actions (callback in callback in ...) */
#define MAX_EVENTS 8192
#define ACT 8            /* bytes of an action: [flags, op bytes...] */
#define LIST_MAX 64
#define MAX_ALIVE 40     /* things alive at once (see creating_allowed) */

enum kind { K_NONE, K_USER, K_REF, K_PROXY, K_CPROXY, K_CALLBACK };
static const char *const kind_names[] = {"None", "user", "ref", "proxy", "cproxy", "callback"};

/* user type bits: 16 types, one per combination */
#define TB_WEAKREFABLE 1u
#define TB_FINALIZE 2u
#define TB_DESTROY 4u
#define TB_CALL 8u

enum ev {
    EV_FIN = 1,     /* a: object */
    EV_DESTROY,     /* a: object */
    EV_CB,          /* a: callback object, b: weakref it received */
    EV_UNRAISABLE,  /* a: callback (the object that failed), b: error kind */
    EV_CALL,        /* a: user callable, b: argument (-1 none) */
    EV_RES,         /* a: opcode, b: result, c: pending error kind after the call */
    EV_LIST,        /* a: referent, b: position, c: weakref id */
};

struct event {
    int kind, a, b, c;
};

/* What runs an action: "self" and "arg" may be used as the context allows. */
enum ctxkind { CTX_TOP, CTX_FIN, CTX_CB, CTX_DES };
struct ctx {
    enum ctxkind kind;
    int self;    /* FIN: alive (count >= 1); CB, DES: dying (count 0); -1 none */
    int arg;     /* CB: the weakref passed to the callback (a reference is held by the runtime) */
    int depth;
};

struct world {
    const char *name;
    bool is_model;
    int next_id;
    int held[MAX_IDS];          /* strong references the harness owns */
    int owned[MAX_IDS];         /* user objects with destroy: the id it owns a reference to, -1 */
    unsigned char kind[MAX_IDS];
    unsigned char tbits[MAX_IDS];
    unsigned char act[MAX_IDS][ACT];    /* finalize (user), callback (callback objects) */
    unsigned char act2[MAX_IDS][ACT];   /* destroy (user) */
    int wr_target[MAX_IDS];     /* weakrefs: the referent at creation */
    bool fail_next_alloc;
    int nalive;                 /* things created and not freed */
    int nev;
    struct event ev[MAX_EVENTS];

    /* real world only */
    wref_object *ptr[MAX_IDS];
    bool rfreed[MAX_IDS];

    /* model world only */
    struct {
        intptr_t count;
        bool freed, finalized;
        int referent;          /* weakref: the referent while linked, -1 once cleared */
        int callback;          /* weakref: callback id, -1 */
        bool basic;            /* weakref: created without a callback (the shared kind) */
    } m[MAX_IDS];
    wref_error err;
};

static struct world g_real = {.name = "real"}, g_model = {.name = "model", .is_model = true};

/* ---- failing ------------------------------------------------------------------------------ */

static void dump_world(struct world *w);

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fuzz_api: DIVERGENCE: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    dump_world(&g_real);
    dump_world(&g_model);
    abort();
}

static const char *const ev_names[] = {"?", "finalize", "destroy", "callback", "unraisable",
                                      "call", "result", "list"};
/* names of enum op, in order */
static const char *const op_names[] = {
    "nop", "new", "incref", "decref", "ref", "proxy", "get_ref", "get_object", "clear",
    "clear_nocb", "own", "err", "fail_alloc", "call", "list", "decref_user"};
static bool g_trace;   /* FUZZ_API_TRACE=1: print the real world's events to stderr */

static void log_ev(struct world *w, int kind, int a, int b, int c)
{
    if (g_trace && !w->is_model) {
        if (kind == EV_RES)
            fprintf(stderr, "  %-10s %-12s -> %d  (error %s)\n", ev_names[kind], op_names[a], b,
                    wref_err_name((wref_error)c));
        else
            fprintf(stderr, "  %-10s %d %d %d\n", ev_names[kind], a, b, c);
    }
    if (w->nev < MAX_EVENTS)
        w->ev[w->nev] = (struct event){kind, a, b, c};
    w->nev++;
}

/* ---- the real world: ids <-> pointers, the allocator, user types ------------------------------ */

static struct {
    size_t live;     /* blocks allocated and not freed */
    size_t total;
} g_alloc;

static void *fz_alloc(void *ctx, size_t size)
{
    (void)ctx;
    if (g_real.fail_next_alloc) {
        g_real.fail_next_alloc = false;
        return NULL;
    }
    void *p = malloc(size);
    if (p) {
        g_alloc.live++;
        g_alloc.total++;
    }
    return p;
}

static void fz_free(void *ctx, void *p, size_t size)
{
    (void)ctx;
    (void)size;
    /* one of ours (an object, weakref or callback) unless it is an internal block */
    for (int id = 1; id < g_real.next_id; id++) {
        if (g_real.ptr[id] == p && !g_real.rfreed[id]) {
            g_real.rfreed[id] = true;
            g_real.nalive--;
            break;
        }
    }
    g_alloc.live--;
    free(p);
}

static int real_id_of(wref_object *p)
{
    if (!p)
        return -1;
    if (p == wref_none())
        return 0;
    for (int id = 1; id < g_real.next_id; id++)
        if (g_real.ptr[id] == p && !g_real.rfreed[id])
            return id;
    fail("the library returned %p, which is not a live object of this run", (void *)p);
}

struct fobj {
    wref_object ob;
    int id;
    wref_object *owned;
};

static wref_type g_types[16];
static char g_type_names[16][8];

static void run_action(struct world *w, const unsigned char *act, struct ctx c);

static void real_finalize(wref_object *self)
{
    int id = ((struct fobj *)self)->id;
    log_ev(&g_real, EV_FIN, id, 0, 0);
    run_action(&g_real, g_real.act[id], (struct ctx){CTX_FIN, id, -1, 0});
}

static void real_destroy(wref_object *self)
{
    struct fobj *f = (struct fobj *)self;
    log_ev(&g_real, EV_DESTROY, f->id, 0, 0);
    run_action(&g_real, g_real.act2[f->id], (struct ctx){CTX_DES, f->id, -1, 0});
    wref_object *o = f->owned;
    f->owned = NULL;
    g_real.owned[f->id] = -1;
    wref_xdecref(o);
}

static wref_object *real_call(wref_object *self, wref_object *arg)
{
    log_ev(&g_real, EV_CALL, ((struct fobj *)self)->id, arg ? real_id_of(arg) : -1, 0);
    if (!arg)
        return wref_none();
    wref_incref(arg);
    return arg;
}

/* The depth of the action that is running, so that nested actions stop at MAX_DEPTH. */
static int g_depth[2];

static int real_cb(wref_object *weakref, void *data)
{
    int id = (int)(intptr_t)data;
    int wid = real_id_of(weakref);
    const unsigned char *act = g_real.act[id];
    log_ev(&g_real, EV_CB, id, wid, 0);
    run_action(&g_real, act, (struct ctx){CTX_CB, g_real.wr_target[wid], wid, 0});
    switch (act[0] & 3) {
    case 1:
        wref_err_set(WREF_ERR_RUNTIME, "callback %d fails", id);
        return -1;
    case 2:
        return -1;   /* without an error set */
    default:
        return 0;
    }
}

static void real_unraisable(wref_error kind, const char *message, wref_object *obj, void *arg)
{
    (void)message;
    (void)arg;
    log_ev(&g_real, EV_UNRAISABLE, real_id_of(obj), (int)kind, 0);
}

static void init_types(void)
{
    for (unsigned b = 0; b < 16; b++) {
        snprintf(g_type_names[b], sizeof g_type_names[b], "T%u", b);
        g_types[b] = (wref_type){
            .name = g_type_names[b],
            .size = sizeof(struct fobj),
            .flags = (b & TB_WEAKREFABLE) ? WREF_TYPE_WEAKREFABLE : 0,
            .finalize = (b & TB_FINALIZE) ? real_finalize : NULL,
            .destroy = (b & TB_DESTROY) ? real_destroy : NULL,
            .call = (b & TB_CALL) ? real_call : NULL,
        };
    }
}

/* ---- the model -------------------------------------------------------------------------------- */

static bool m_is_weakref(struct world *w, int id)
{
    return w->kind[id] == K_REF || w->kind[id] == K_PROXY || w->kind[id] == K_CPROXY;
}

static bool m_weakrefable(struct world *w, int id)
{
    return w->kind[id] == K_CALLBACK || (w->kind[id] == K_USER && (w->tbits[id] & TB_WEAKREFABLE));
}

static bool m_callable(struct world *w, int id)
{
    switch (w->kind[id]) {
    case K_REF: case K_CPROXY: case K_CALLBACK: return true;
    case K_USER: return (w->tbits[id] & TB_CALL) != 0;
    default: return false;
    }
}

/* The referent of weakref id if it is alive, else 0 (None): dead means cleared or count 0. */
static int m_live_referent(struct world *w, int id)
{
    int r = w->m[id].referent;
    return r > 0 && w->m[r].count > 0 ? r : 0;
}

static void m_decref(struct world *w, int id);

static void m_incref(struct world *w, int id)
{
    if (id == 0)
        return;
    if (w->m[id].freed || w->m[id].count <= 0)
        fail("model: incref of %d (count %ld, freed %d): harness bug", id, (long)w->m[id].count,
             w->m[id].freed);
    w->m[id].count++;
}

static bool m_alloc(struct world *w)
{
    if (w->fail_next_alloc) {
        w->fail_next_alloc = false;
        w->err = WREF_ERR_MEMORY;
        return false;
    }
    return true;
}

static int m_new_id(struct world *w, enum kind k)
{
    int id = w->next_id++;
    w->nalive++;
    memset(&w->m[id], 0, sizeof w->m[id]);
    w->m[id].count = 1;
    w->m[id].referent = w->m[id].callback = -1;
    w->kind[id] = (unsigned char)k;
    w->owned[id] = -1;
    return id;
}

static void m_freed(struct world *w, int id)
{
    w->m[id].freed = true;
    w->nalive--;
}

/* The model keeps no list: a weakref is linked to its referent or not, and the order of an
 * object's weakrefs is computed from what the spec says it is (docs/semantics.md section 2,
 * "List order"): the basic ref, the basic proxy, then every other weakref newest first. Ids are
 * given in creation order, so "newest first" is "highest id first". The library's linked list
 * and insertion code are not reproduced; a list the library builds in another order diverges. */
static void m_unlink(struct world *w, int wr)
{
    w->m[wr].referent = -1;
}

static int m_list_rank(struct world *w, int x)
{
    if (w->m[x].basic && w->kind[x] == K_REF)
        return 0;
    if (w->m[x].basic)
        return 1;   /* a proxy or callable proxy without callback */
    return 2;
}

/* The weakrefs linked to ob, in list order; returns how many (at most MAX_IDS). */
static int m_list(struct world *w, int ob, int *out)
{
    int n = 0;
    for (int rank = 0; rank < 3; rank++)
        for (int x = w->next_id - 1; x > 0; x--)
            if (!w->m[x].freed && m_is_weakref(w, x) && w->m[x].referent == ob && m_list_rank(w, x) == rank)
                out[n++] = x;
    return n;
}

/* The linked weakref of ob of a basic kind (ref, or either proxy kind), or -1. */
static int m_basic(struct world *w, int ob, bool proxy)
{
    int list[MAX_IDS], n = m_list(w, ob, list);
    for (int i = 0; i < n; i++)
        if (m_list_rank(w, list[i]) == (proxy ? 1 : 0))
            return list[i];
    return -1;
}

static void m_call_result(struct world *w, int res)
{
    if (res > 0)
        m_decref(w, res);
}

static int m_call(struct world *w, int callable, int arg);

/* Clearing, as docs/semantics.md states it (section 4 step 2, section 5, and the difference of
 * section 7). With callbacks: every weakref of ob becomes dead before the first callback runs;
 * each weakref with a callback gives its callback up; the callbacks are then called in list
 * order (newest first) with their own weakref, unless that weakref's count is already 0 (it is
 * being destroyed: its callback is dropped uncalled); a failing callback goes to the
 * unraisable hook and the others still run; the pending error is restored afterwards; each
 * weakref is held while its callback runs, and the callback then the weakref are released
 * right after that call. Without callbacks: every weakref becomes dead and keeps its
 * callback. */
static void m_clear(struct world *w, int ob, bool run_callbacks)
{
    int *list = malloc(3 * MAX_IDS * sizeof *list), *calls = list + MAX_IDS, *cbs = calls + MAX_IDS;
    if (!list)
        abort();
    int n = m_list(w, ob, list), n_calls = 0, dropped[MAX_IDS], n_dropped = 0;
    for (int i = 0; i < n; i++)
        m_unlink(w, list[i]);                       /* all dead first */
    for (int i = 0; run_callbacks && i < n; i++) {
        int x = list[i], cb = w->m[x].callback;
        if (cb < 0)
            continue;
        w->m[x].callback = -1;                      /* given up */
        if (w->m[x].count > 0) {
            w->m[x].count++;                        /* held while its callback runs */
            calls[n_calls] = x;
            cbs[n_calls++] = cb;
        } else {
            dropped[n_dropped++] = cb;
        }
    }
    for (int i = 0; i < n_dropped; i++)
        m_decref(w, dropped[i]);
    if (n_calls > 0) {
        wref_error saved = w->err;
        w->err = WREF_OK;
        for (int i = 0; i < n_calls; i++) {
            int res = m_call(w, cbs[i], calls[i]);
            if (res >= 0) {
                m_call_result(w, res);
            } else {
                log_ev(w, EV_UNRAISABLE, cbs[i], (int)w->err, 0);
                w->err = WREF_OK;
            }
            m_decref(w, cbs[i]);
            m_decref(w, calls[i]);
        }
        w->err = saved;
    }
    free(list);
}

/* The destruction protocol (docs/semantics.md section 4), for a count that just reached 0. */
static void m_dealloc(struct world *w, int id)
{
    switch (w->kind[id]) {
    case K_REF: case K_PROXY: case K_CPROXY: {
        /* unlink if still linked, then drop the callback (never call it) */
        if (w->m[id].referent >= 0)
            m_unlink(w, id);
        int cb = w->m[id].callback;
        w->m[id].callback = -1;
        if (cb >= 0)
            m_decref(w, cb);
        m_freed(w, id);   /* after the callback is dropped, as the runtime frees it (and nalive counts) */
        return;
    }
    case K_CALLBACK:
        m_freed(w, id);
        return;
    case K_USER:
        break;
    default:
        fail("model: dealloc of %d of kind %d", id, w->kind[id]);
    }
    unsigned tb = w->tbits[id];
    if ((tb & TB_FINALIZE) && !w->m[id].finalized) {
        w->m[id].finalized = true;
        w->m[id].count = 1;
        log_ev(w, EV_FIN, id, 0, 0);
        run_action(w, w->act[id], (struct ctx){CTX_FIN, id, -1, 0});
        if (--w->m[id].count != 0)
            return;   /* resurrected */
    }
    if (tb & TB_WEAKREFABLE)
        m_clear(w, id, true);
    if (tb & TB_DESTROY) {
        log_ev(w, EV_DESTROY, id, 0, 0);
        run_action(w, w->act2[id], (struct ctx){CTX_DES, id, -1, 0});
        int o = w->owned[id];
        w->owned[id] = -1;
        if (o >= 0)
            m_decref(w, o);
    }
    if (tb & TB_WEAKREFABLE)
        m_clear(w, id, false);
    m_freed(w, id);
}

static void m_decref(struct world *w, int id)
{
    if (id == 0)
        return;
    if (w->m[id].freed || w->m[id].count <= 0)
        fail("model: decref of %d (count %ld, freed %d): harness bug", id, (long)w->m[id].count,
             w->m[id].freed);
    if (--w->m[id].count == 0)
        m_dealloc(w, id);
}

/* wref_call: a new reference (an id, 0 for None) or -1 with w->err set. */
static int m_call(struct world *w, int callable, int arg)
{
    switch (w->kind[callable]) {
    case K_CALLBACK: {
        const unsigned char *act = w->act[callable];
        log_ev(w, EV_CB, callable, arg, 0);
        int self = arg > 0 && m_is_weakref(w, arg) ? w->wr_target[arg] : -1;
        run_action(w, act, (struct ctx){CTX_CB, self, arg, 0});
        switch (act[0] & 3) {
        case 1:
            w->err = WREF_ERR_RUNTIME;
            return -1;
        case 2:
            if (w->err == WREF_OK)
                w->err = WREF_ERR_RUNTIME;
            return -1;
        default:
            return 0;
        }
    }
    case K_USER:
        if (w->tbits[callable] & TB_CALL) {
            log_ev(w, EV_CALL, callable, arg, 0);
            if (arg < 0)
                return 0;
            m_incref(w, arg);
            return arg;
        }
        break;
    case K_REF: {
        if (arg >= 0) {
            w->err = WREF_ERR_TYPE;
            return -1;
        }
        int r = m_live_referent(w, callable);
        m_incref(w, r);
        return r;
    }
    case K_CPROXY: {
        int r = m_live_referent(w, callable);
        if (r == 0) {
            w->err = WREF_ERR_REFERENCE;
            return -1;
        }
        m_incref(w, r);
        int res = m_call(w, r, arg);
        m_decref(w, r);
        return res;
    }
    default:
        break;
    }
    w->err = WREF_ERR_TYPE;
    return -1;
}

/* ---- the backend: one primitive per API call, in either world -------------------------------- */

static wref_error be_err(struct world *w)
{
    return w->is_model ? w->err : wref_err_occurred();
}

static void be_set_err(struct world *w, wref_error kind)
{
    if (w->is_model)
        w->err = kind;
    else if (kind == WREF_OK)
        wref_err_clear();
    else
        wref_err_set(kind, "set by the harness");
}

static void be_incref(struct world *w, int id)
{
    if (w->is_model)
        m_incref(w, id);
    else
        wref_incref(w->ptr[id]);
}

static void be_decref(struct world *w, int id)
{
    if (w->is_model)
        m_decref(w, id);
    else
        wref_decref(w->ptr[id]);
}

static int be_new(struct world *w, unsigned tb, const unsigned char *fin, const unsigned char *des)
{
    int id;
    if (w->is_model) {
        if (!m_alloc(w))
            return -1;
        id = m_new_id(w, K_USER);
    } else {
        wref_object *o = wref_new(&g_types[tb]);
        if (!o)
            return -1;
        id = w->next_id++;
        w->nalive++;
        w->ptr[id] = o;
        w->rfreed[id] = false;
        w->kind[id] = K_USER;
        w->owned[id] = -1;
        ((struct fobj *)o)->id = id;
    }
    w->tbits[id] = (unsigned char)tb;
    memcpy(w->act[id], fin, ACT);
    memcpy(w->act2[id], des, ACT);
    return id;
}

static int be_new_callback(struct world *w, const unsigned char *act)
{
    int id;
    if (w->is_model) {
        if (!m_alloc(w))
            return -1;
        id = m_new_id(w, K_CALLBACK);
    } else {
        id = w->next_id;
        wref_object *o = wref_callback_new(real_cb, (void *)(intptr_t)id, NULL);
        if (!o)
            return -1;
        w->next_id++;
        w->nalive++;
        w->ptr[id] = o;
        w->rfreed[id] = false;
        w->kind[id] = K_CALLBACK;
        w->owned[id] = -1;
    }
    memcpy(w->act[id], act, ACT);
    return id;
}

/* cb: -1 none (NULL), 0 None, else an id. */
static int be_new_weakref(struct world *w, int target, bool proxy, int cb)
{
    if (!w->is_model) {
        wref_object *cbp = cb < 0 ? NULL : w->ptr[cb];
        wref_object *r = proxy ? wref_proxy_new(w->ptr[target], cbp) : wref_ref_new(w->ptr[target], cbp);
        if (!r)
            return -1;
        for (int id = 1; id < w->next_id; id++)
            if (w->ptr[id] == r && !w->rfreed[id])
                return id;   /* the canonical one, reused */
        int id = w->next_id++;
        w->nalive++;
        w->ptr[id] = r;
        w->rfreed[id] = false;
        w->kind[id] = wref_is_ref(r) ? K_REF : wref_is_callable(r) ? K_CPROXY : K_PROXY;
        w->owned[id] = -1;
        w->wr_target[id] = target;
        return id;
    }
    if (cb == 0)
        cb = -1;
    if (!m_weakrefable(w, target) || (cb >= 0 && !m_callable(w, cb))) {
        w->err = WREF_ERR_TYPE;
        return -1;
    }
    enum kind k = !proxy ? K_REF : m_callable(w, target) ? K_CPROXY : K_PROXY;
    /* without a callback the basic ref (or proxy) is shared, if there is a live one
     * (semantics.md section 2, rule 3) */
    if (cb < 0) {
        int cand = m_basic(w, target, proxy);
        if (cand >= 0 && w->m[cand].count > 0) {
            w->m[cand].count++;
            return cand;
        }
    }
    if (!m_alloc(w))
        return -1;
    int id = m_new_id(w, k);
    w->wr_target[id] = target;
    if (cb >= 0)
        m_incref(w, cb);
    w->m[id].callback = cb;
    w->m[id].basic = cb < 0;
    w->m[id].referent = target;   /* linked; its place in the list follows from m_list */
    return id;
}

/* wref_get_ref: 1 (and *out, a new reference), 0 or -1. */
static int be_get_ref(struct world *w, int ref, int *out)
{
    *out = -1;
    if (!w->is_model) {
        wref_object *o = (wref_object *)(uintptr_t)1;
        int rc = wref_get_ref(w->ptr[ref], &o);
        if (rc != 1 && o != NULL)
            fail("wref_get_ref returned %d but left *pobj = %p", rc, (void *)o);
        if (rc == 1)
            *out = real_id_of(o);
        return rc;
    }
    if (!m_is_weakref(w, ref)) {
        w->err = WREF_ERR_TYPE;
        return -1;
    }
    int r = m_live_referent(w, ref);
    if (!r)
        return 0;
    m_incref(w, r);
    *out = r;
    return 1;
}

/* wref_get_object (checked) or WREF_GET_OBJECT (ref must be a weakref): an id, 0 for None, -1. */
static int be_get_object(struct world *w, int ref, bool checked)
{
    if (!w->is_model) {
        wref_object *o = checked ? wref_get_object(w->ptr[ref]) : WREF_GET_OBJECT(w->ptr[ref]);
        return real_id_of(o);
    }
    if (!m_is_weakref(w, ref)) {
        w->err = WREF_ERR_SYSTEM;
        return -1;
    }
    return m_live_referent(w, ref);
}

static void be_clear(struct world *w, int ob, bool callbacks)
{
    if (!w->is_model) {
        if (callbacks)
            wref_clear_weakrefs(w->ptr[ob]);
        else
            wref_clear_weakrefs_no_callbacks(w->ptr[ob]);
        return;
    }
    if (!m_weakrefable(w, ob)) {
        if (callbacks)
            w->err = WREF_ERR_SYSTEM;
        return;
    }
    if (callbacks && w->m[ob].count != 0) {
        w->err = WREF_ERR_SYSTEM;
        return;
    }
    m_clear(w, ob, callbacks);
}

/* wref_call: a new reference (id; 0 for None) or -1. arg -1: no argument. */
static int be_call(struct world *w, int callable, int arg)
{
    if (w->is_model)
        return m_call(w, callable, arg);
    wref_object *res = wref_call(w->ptr[callable], arg >= 0 ? w->ptr[arg] : NULL);
    return res ? real_id_of(res) : -1;
}

/* wref_weakrefs into out[]: new references (ids); returns the total. */
static size_t be_weakrefs(struct world *w, int ob, int *out, size_t cap)
{
    if (!w->is_model) {
        wref_object *p[LIST_MAX];
        size_t n = wref_weakrefs(w->ptr[ob], p, cap < LIST_MAX ? cap : LIST_MAX);
        for (size_t i = 0; i < n && i < cap && i < LIST_MAX; i++) {
            if (!p[i])
                fail("wref_weakrefs gave a NULL entry in a single-threaded run");
            out[i] = real_id_of(p[i]);
        }
        return n;
    }
    if (!m_weakrefable(w, ob))
        return 0;
    int list[MAX_IDS];
    size_t n = (size_t)m_list(w, ob, list);
    for (size_t i = 0; i < n && i < cap; i++) {
        m_incref(w, list[i]);
        out[i] = list[i];
    }
    return n;
}

static intptr_t be_refcount(struct world *w, int id)
{
    return w->is_model ? w->m[id].count : wref_refcount(w->ptr[id]);
}

static int be_ref_callback(struct world *w, int id)
{
    if (w->is_model)
        return m_is_weakref(w, id) ? w->m[id].callback : -1;
    wref_object *cb = wref_ref_callback(w->ptr[id]);
    return cb ? real_id_of(cb) : -1;
}

static bool be_freed(struct world *w, int id)
{
    return w->is_model ? w->m[id].freed : w->rfreed[id];
}

/* ---- the interpreter ------------------------------------------------------------------------ */

struct reader {
    const unsigned char *p;
    size_t n;
};

static unsigned rd(struct reader *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

static void rd_act(struct reader *r, unsigned char *act)
{
    for (int i = 0; i < ACT; i++)
        act[i] = (unsigned char)rd(r);
}

enum pick { P_ANY, P_USER, P_WEAKREF };

/* The (sel % n)-th id the harness holds a reference to, among those that match; -1 if none. */
static int pick_held(struct world *w, unsigned sel, enum pick what)
{
    int n = 0;
    for (int id = 1; id < w->next_id; id++)
        if (w->held[id] > 0 && (what == P_ANY || (what == P_USER) == (w->kind[id] == K_USER)))
            n++;
    if (n == 0)
        return -1;
    int k = (int)(sel % (unsigned)n);
    for (int id = 1; id < w->next_id; id++)
        if (w->held[id] > 0 && (what == P_ANY || (what == P_USER) == (w->kind[id] == K_USER)) && k-- == 0)
            return id;
    return -1;
}

/* A referent for a new weakref or a clear: mostly a held user object; also None, a held
 * weakref (not weakrefable), or self when the context has one. */
static int pick_target(struct world *w, unsigned sel, struct ctx c)
{
    switch (sel >> 6) {
    case 3:
        if (c.self > 0)
            return c.self;
        break;
    case 2:
        if ((sel & 7) == 0)
            return 0;
        if ((sel & 7) == 1) {
            int x = pick_held(w, sel >> 3, P_WEAKREF);
            if (x >= 0)
                return x;
        }
        break;
    default:
        break;
    }
    return pick_held(w, sel, P_USER);
}

/* A weakref to read: a held weakref, the callback's argument, or (sel & 15 == 15) a held
 * non-weakref or None to exercise the error paths. */
static int pick_weakref(struct world *w, unsigned sel, struct ctx c)
{
    if ((sel & 15) == 15)
        return (sel & 16) ? 0 : pick_held(w, sel >> 5, P_USER);
    if ((sel & 0xc0) == 0xc0 && c.arg > 0)
        return c.arg;
    return pick_held(w, sel, P_WEAKREF);
}

/* At most MAX_ALIVE things exist at once. Each nested deallocation is a distinct thing, so the
 * runtime's nesting stays below its trashcan depth (64, object.c): past it, destruction is
 * deferred in an order the model does not simulate (test_deep_chain covers that). */
static bool creating_allowed(struct world *w)
{
    return w->next_id < MAX_IDS - 4 && w->nalive < MAX_ALIVE;
}

enum op {
    OP_NOP, OP_NEW, OP_INCREF, OP_DECREF, OP_REF, OP_PROXY, OP_GET_REF, OP_GET_OBJECT,
    OP_CLEAR, OP_CLEAR_NOCB, OP_OWN, OP_ERR, OP_FAIL_ALLOC, OP_CALL, OP_LIST, OP_DECREF2,
    OP_COUNT_
};

static void result(struct world *w, int op, int value)
{
    log_ev(w, EV_RES, op, value, (int)be_err(w));
}

static void run_op(struct world *w, struct reader *r, struct ctx c)
{
    unsigned op = rd(r) % OP_COUNT_;
    switch (op) {
    case OP_NOP:
        return;

    case OP_NEW: {   /* NEW type [fin action] [destroy action] */
        unsigned tb = rd(r) & 15;
        unsigned char fin[ACT] = {0}, des[ACT] = {0};
        if (tb & TB_FINALIZE)
            rd_act(r, fin);
        if (tb & TB_DESTROY)
            rd_act(r, des);
        if (!creating_allowed(w))
            return;
        int id = be_new(w, tb, fin, des);
        if (id > 0)
            w->held[id]++;
        result(w, op, id);
        return;
    }

    case OP_INCREF: {   /* a held reference, or self (resurrection) while finalizing */
        unsigned sel = rd(r);
        int id = -1;
        if ((sel & 0xc0) == 0xc0 && c.kind == CTX_FIN)
            id = c.self;
        else if ((sel & 0xc0) == 0xc0 && c.kind == CTX_CB)
            id = c.arg;   /* keep the weakref the callback received */
        else
            id = pick_held(w, sel, P_ANY);
        if (id < 0)
            return;
        be_incref(w, id);
        w->held[id]++;
        return;
    }

    case OP_DECREF:
    case OP_DECREF2: {
        int id = pick_held(w, rd(r), op == OP_DECREF ? P_ANY : P_USER);
        if (id < 0)
            return;
        w->held[id]--;
        be_decref(w, id);
        return;
    }

    case OP_REF:
    case OP_PROXY: {   /* REF target cbmode [cb action or callback selector] */
        unsigned tsel = rd(r), cbmode = rd(r);
        unsigned char act[ACT] = {0};
        int cb = -1, made_cb = -1;
        switch (cbmode & 3) {
        case 0: cb = -1; break;
        case 1: cb = (cbmode & 4) ? 0 : -1; break;   /* None is "no callback" */
        case 2: rd_act(r, act); cb = -2; break;      /* a new callback object */
        case 3: cb = (cbmode & 4) ? pick_held(w, cbmode >> 3, P_WEAKREF) : pick_held(w, cbmode >> 3, P_ANY); break;
        }
        int target = pick_target(w, tsel, c);
        if (target < 0 || !creating_allowed(w))
            return;
        if (cb == -2) {
            made_cb = be_new_callback(w, act);
            if (made_cb < 0) {
                result(w, op, -1);
                return;
            }
            cb = made_cb;
        }
        int id = be_new_weakref(w, target, op == OP_PROXY, cb);
        if (made_cb >= 0)
            be_decref(w, made_cb);   /* the weakref holds the only reference, if any */
        if (id > 0)
            w->held[id]++;
        result(w, op, id);
        return;
    }

    case OP_GET_REF: {   /* GET_REF weakref keep */
        unsigned sel = rd(r), keep = rd(r);
        int ref = pick_weakref(w, sel, c);
        if (ref < 0)
            return;
        int o;
        int rc = be_get_ref(w, ref, &o);
        result(w, op, rc == 1 ? o : rc == 0 ? -2 : -1);
        if (rc == 1) {
            if (keep & 1)
                w->held[o]++;
            else
                be_decref(w, o);
        }
        return;
    }

    case OP_GET_OBJECT: {   /* borrowed: compared by identity only, never used */
        unsigned sel = rd(r);
        int ref = pick_weakref(w, sel, c);
        if (ref < 0)
            return;
        bool checked = (sel & 32) || !(ref > 0 && m_is_weakref(w, ref));
        result(w, op, be_get_object(w, ref, checked));
        return;
    }

    case OP_CLEAR:
    case OP_CLEAR_NOCB: {   /* a held object (clear: alive, so SystemError) or self */
        int ob = pick_target(w, rd(r), c);
        if (ob < 0)
            return;
        be_clear(w, ob, op == OP_CLEAR);
        result(w, op, 0);
        return;
    }

    case OP_OWN: {   /* a held user object with destroy takes one of the harness's references */
        unsigned s1 = rd(r), s2 = rd(r);
        int owner = pick_held(w, s1, P_USER);
        int ob = pick_held(w, s2, P_ANY);
        if (owner < 0 || ob < 0 || !(w->tbits[owner] & TB_DESTROY) || w->owned[owner] >= 0)
            return;
        w->held[ob]--;
        w->owned[owner] = ob;
        if (!w->is_model)
            ((struct fobj *)w->ptr[owner])->owned = w->ptr[ob];
        return;
    }

    case OP_ERR: {
        unsigned k = rd(r) % 6;
        be_set_err(w, (wref_error)k);
        return;
    }

    case OP_FAIL_ALLOC:
        w->fail_next_alloc = true;
        return;

    case OP_CALL: {   /* CALL callable arg keep */
        unsigned s1 = rd(r), s2 = rd(r), keep = rd(r);
        int f;
        if ((s1 & 0xc0) == 0xc0 && c.kind == CTX_FIN)
            f = c.self;
        else if ((s1 & 0xc0) == 0xc0 && c.kind == CTX_CB)
            f = c.arg;
        else if ((s1 & 0xc0) == 0x80)
            f = 0;   /* None: not callable */
        else
            f = pick_held(w, s1, P_ANY);
        if (f < 0)
            return;
        int arg = (s2 & 1) ? -1 : ((s2 & 6) == 6 && c.arg > 0) ? c.arg : pick_held(w, s2 >> 1, P_ANY);
        int res = be_call(w, f, arg);
        result(w, op, res);
        if (res > 0) {
            if (keep & 1)
                w->held[res]++;
            else
                be_decref(w, res);
        }
        return;
    }

    case OP_LIST: {   /* the weakref list of a held object or self, logged */
        int ob = pick_target(w, rd(r), c);
        if (ob < 0)
            return;
        int out[LIST_MAX];
        size_t n = be_weakrefs(w, ob, out, LIST_MAX);
        result(w, op, (int)n);
        for (size_t i = 0; i < n && i < LIST_MAX; i++) {
            log_ev(w, EV_LIST, ob, (int)i, out[i]);
            be_decref(w, out[i]);
        }
        return;
    }
    }
}

/* An action: [flags, op bytes...]; flags & 3 is the callback's failure mode (run_cb). */
static void run_action(struct world *w, const unsigned char *act, struct ctx c)
{
    int *depth = &g_depth[w->is_model];
    if (*depth >= MAX_DEPTH)
        return;
    (*depth)++;
    c.depth = *depth;
    struct reader r = {act + 1, ACT - 1};
    run_op(w, &r, c);
    (*depth)--;
}

/* ---- comparing the worlds ------------------------------------------------------------------ */

static void dump_world(struct world *w)
{
    fprintf(stderr, "---- %s world: next_id %d, error %s, %d events\n", w->name, w->next_id,
            wref_err_name(be_err(w)), w->nev);
    int from = w->nev > 40 ? w->nev - 40 : 0;
    for (int i = from; i < w->nev && i < MAX_EVENTS; i++)
        fprintf(stderr, "  ev[%d] kind %d: %d %d %d\n", i, w->ev[i].kind, w->ev[i].a, w->ev[i].b,
                w->ev[i].c);
    for (int id = 1; id < w->next_id; id++) {
        bool freed = w->is_model ? w->m[id].freed : w->rfreed[id];
        fprintf(stderr, "  #%d %s%s held %d owned %d", id, kind_names[w->kind[id]],
                freed ? " freed" : "", w->held[id], w->owned[id]);
        if (w->kind[id] == K_USER)
            fprintf(stderr, " T%u", w->tbits[id]);
        if (w->is_model && !freed)
            fprintf(stderr, " count %ld referent %d cb %d%s", (long)w->m[id].count,
                    w->m[id].referent, w->m[id].callback, w->m[id].basic ? " basic" : "");
        fprintf(stderr, "\n");
    }
}

static void compare_worlds(const char *when)
{
    struct world *a = &g_real, *b = &g_model;
    int n = a->nev < b->nev ? a->nev : b->nev;
    for (int i = 0; i < n && i < MAX_EVENTS; i++) {
        if (memcmp(&a->ev[i], &b->ev[i], sizeof a->ev[i]) != 0)
            fail("%s: event %d: real (%d %d %d %d), model (%d %d %d %d)", when, i, a->ev[i].kind,
                 a->ev[i].a, a->ev[i].b, a->ev[i].c, b->ev[i].kind, b->ev[i].a, b->ev[i].b,
                 b->ev[i].c);
    }
    if (a->nev != b->nev)
        fail("%s: %d events in the real world, %d in the model", when, a->nev, b->nev);
    a->nev = b->nev = 0;
    if (a->next_id != b->next_id || a->nalive != b->nalive)
        fail("%s: next id %d vs %d, alive %d vs %d", when, a->next_id, b->next_id, a->nalive, b->nalive);
    if (be_err(a) != be_err(b))
        fail("%s: pending error %s, model says %s", when, wref_err_name(be_err(a)),
             wref_err_name(be_err(b)));
    size_t live = 0;
    for (int id = 1; id < a->next_id; id++) {
        if (a->kind[id] != b->kind[id] || a->held[id] != b->held[id] || a->owned[id] != b->owned[id])
            fail("%s: #%d: kind %d/%d held %d/%d owned %d/%d", when, id, a->kind[id], b->kind[id],
                 a->held[id], b->held[id], a->owned[id], b->owned[id]);
        if (be_freed(a, id) != be_freed(b, id))
            fail("%s: #%d (%s): %s in the real world, %s in the model", when, id,
                 kind_names[a->kind[id]], be_freed(a, id) ? "freed" : "alive",
                 be_freed(b, id) ? "freed" : "alive");
        if (be_freed(a, id))
            continue;
        live++;
        intptr_t ca = be_refcount(a, id), cm = be_refcount(b, id);
        if (ca != cm)
            fail("%s: #%d (%s): count %ld, model says %ld", when, id, kind_names[a->kind[id]],
                 (long)ca, (long)cm);
        if (m_is_weakref(b, id)) {
            int ra = be_get_object(a, id, false), rm = be_get_object(b, id, false);
            if (ra != rm)
                fail("%s: weakref #%d: referent #%d, model says #%d", when, id, ra, rm);
            int cba = be_ref_callback(a, id), cbm = be_ref_callback(b, id);
            if (cba != cbm)
                fail("%s: weakref #%d: callback #%d, model says #%d", when, id, cba, cbm);
        }
        if (a->kind[id] == K_USER) {
            int la[LIST_MAX], lm[LIST_MAX];
            size_t na = be_weakrefs(a, id, la, LIST_MAX), nm = be_weakrefs(b, id, lm, LIST_MAX);
            if (na != nm)
                fail("%s: #%d has %zu weakrefs, model says %zu", when, id, na, nm);
            for (size_t i = 0; i < na && i < LIST_MAX; i++)
                if (la[i] != lm[i])
                    fail("%s: #%d weakref list[%zu] is #%d, model says #%d", when, id, i, la[i], lm[i]);
            for (size_t i = 0; i < na && i < LIST_MAX; i++) {
                be_decref(a, la[i]);
                be_decref(b, lm[i]);
            }
        }
    }
    if (g_alloc.live != live)
        fail("%s: %zu blocks allocated, but %zu things alive", when, g_alloc.live, live);
}

/* ---- the entry point ------------------------------------------------------------------------- */

static void reset_world(struct world *w)
{
    const char *name = w->name;
    bool is_model = w->is_model;
    memset(w, 0, sizeof *w);
    w->name = name;
    w->is_model = is_model;
    w->next_id = 1;
    w->kind[0] = K_NONE;
    w->ptr[0] = wref_none();
    w->m[0].count = 1;
    w->m[0].referent = w->m[0].callback = -1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    init_types();
    const char *trace = getenv("FUZZ_API_TRACE");
    g_trace = trace && *trace && strcmp(trace, "0") != 0;
    wref_allocator a = {NULL, fz_alloc, fz_free};
    if (wref_set_allocator(&a) != 0) {
        fprintf(stderr, "fuzz_api: wref_set_allocator failed: %s\n", wref_err_message());
        abort();
    }
    wref_set_unraisable_hook(real_unraisable, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool initialized;
    if (!initialized) {   /* replay_main calls LLVMFuzzerInitialize too; this is for safety */
        initialized = true;
        if (g_types[0].name == NULL)
            LLVMFuzzerInitialize(NULL, NULL);
    }
    reset_world(&g_real);
    reset_world(&g_model);
    wref_err_clear();
    struct ctx top = {CTX_TOP, -1, -1, 0};

    for (int step = 0; step < MAX_OPS && size > 0; step++) {
        /* both worlds read the same bytes; the model's reader decides where the next op starts */
        struct reader rr = {data, size}, rm = {data, size};
        if (g_trace)
            fprintf(stderr, "op %d: %s\n", step, op_names[data[0] % OP_COUNT_]);
        run_op(&g_real, &rr, top);
        run_op(&g_model, &rm, top);
        if (rr.n != rm.n)
            fail("op %d: the worlds read different amounts of input", step);
        data = rm.p;
        size = rm.n;
        char when[32];
        snprintf(when, sizeof when, "after op %d", step);
        compare_worlds(when);
    }

    /* Teardown: no failing allocations; drop every held reference (callbacks may take new
     * ones: repeat), then break ownership edges, until nothing is left. */
    g_real.fail_next_alloc = g_model.fail_next_alloc = false;
    if (g_trace)
        fprintf(stderr, "teardown\n");
    for (int round = 0;; round++) {
        bool any = false;
        for (int id = 1; id < g_model.next_id; id++) {
            while (g_model.held[id] > 0) {
                any = true;
                g_real.held[id]--;
                g_model.held[id]--;
                be_decref(&g_real, id);
                be_decref(&g_model, id);
                compare_worlds("teardown");
            }
        }
        for (int id = 1; id < g_model.next_id && !any; id++) {
            int o = g_model.owned[id];
            if (o < 0 || g_model.m[id].freed)
                continue;
            any = true;
            g_real.owned[id] = g_model.owned[id] = -1;
            ((struct fobj *)g_real.ptr[id])->owned = NULL;
            be_decref(&g_real, o);
            be_decref(&g_model, o);
            compare_worlds("teardown (ownership)");
        }
        if (!any)
            break;
        if (round > 4 * MAX_IDS)
            fail("teardown does not converge");
    }
    for (int id = 1; id < g_model.next_id; id++)
        if (!g_model.m[id].freed || !g_real.rfreed[id])
            fail("leak: #%d (%s) was not freed at the end (model: %s)", id,
                 kind_names[g_real.kind[id]], g_model.m[id].freed ? "freed" : "alive");
    if (g_alloc.live != 0)
        fail("leak: %zu blocks still allocated at the end", g_alloc.live);
    wref_err_clear();
    return 0;
}
