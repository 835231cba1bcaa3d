/* pystack.c: Python stacks, captured with the GIL held and kept in a depot of their own.
 *
 * A stack is the sequence (code object, line) of the running frames, innermost first. Equal
 * sequences share one id. A new sequence is formatted at once (file, line, function as text)
 * so that a report, which may come after the interpreter finalized, never touches a Python
 * object. The depot keeps a reference to each code object it stored, so a code object's
 * address is never reused for another one while the depot names it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "pystack.h"

#include "../engine/core.h"
#include "../engine/finding.h"
#include "../engine/options.h"
#include "capi.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct py_stack {
    struct py_stack *next;   /* hash chain */
    uint32_t hash, n, id;
    py_object **code;
    int *line;
    wref__lang_frame *frames;
} py_stack;

#define BUCKETS 4096
#define MAX_DEPTH 64

static struct {
    pthread_mutex_t lock;
    py_stack *buckets[BUCKETS];
    py_stack **by_id;        /* id - 1 -> stack */
    uint32_t count, cap;
} depot = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint32_t hash_of(py_object *const *code, const int *line, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (uintptr_t)code[i]) * 1099511628211ull;
        h = (h ^ (uint32_t)line[i]) * 1099511628211ull;
    }
    return (uint32_t)(h ^ (h >> 32));
}

static char *attr_text(py_object *code, const char *name, const char *fallback)
{
    py_object *s = wref__py.object_get_attr_string(code, name);
    const char *u = s ? wref__py.unicode_as_utf8(s) : NULL;
    char *out = strdup(u ? u : fallback);
    if (s)
        wref__py.decref(s);
    return out ? out : (char *)fallback;
}

/* Stores a new stack; takes over the code references. Called with depot.lock held. */
static uint32_t store(py_object **code, const int *line, size_t n, uint32_t h)
{
    py_stack *s = calloc(1, sizeof *s);
    py_object **c = malloc(n * sizeof *c);
    int *l = malloc(n * sizeof *l);
    wref__lang_frame *f = malloc(n * sizeof *f);
    if (depot.count == depot.cap) {
        uint32_t cap = depot.cap ? depot.cap * 2 : 256;
        py_stack **by = realloc(depot.by_id, cap * sizeof *by);
        if (by) {
            depot.by_id = by;
            depot.cap = cap;
        }
    }
    if (!s || !c || !l || !f || depot.count == depot.cap) {
        free(s), free(c), free(l), free(f);
        for (size_t i = 0; i < n; i++)
            wref__py.decref(code[i]);
        return 0;
    }
    memcpy(c, code, n * sizeof *c);
    memcpy(l, line, n * sizeof *l);
    for (size_t i = 0; i < n; i++) {
        f[i].file = attr_text(code[i], "co_filename", "?");
        f[i].line = line[i] > 0 ? line[i] : 0;
        f[i].function = attr_text(code[i], wref__py.minor >= 11 ? "co_qualname" : "co_name", "?");
    }
    *s = (py_stack){depot.buckets[h % BUCKETS], h, (uint32_t)n, depot.count + 1, c, l, f};
    depot.buckets[h % BUCKETS] = s;
    depot.by_id[depot.count] = s;
    __atomic_store_n(&depot.count, depot.count + 1, __ATOMIC_RELAXED);   /* read lock-free by the statistics */
    return s->id;
}

/* Set while this thread stores a stack: store() reads co_filename and co_name through the C
 * API, which may free objects, and the allocator hook (python_watch=all) then captures a
 * stack of its own. That nested store gets no stack (0) instead of taking depot.lock again,
 * which this thread holds (a self-deadlock, seen as a hang of watch_all.uaf on 3.10). */
static __thread __attribute__((tls_model("initial-exec"))) int storing;
static uint64_t nested_stores;   /* refused so (statistics) */

uint32_t wref__py_stack_store(py_object *const *code, const int *line, size_t n)
{
    if (!n)
        return 0;
    if (storing) {
        __atomic_fetch_add(&nested_stores, 1, __ATOMIC_RELAXED);
        return 0;
    }
    uint32_t id = 0, h = hash_of(code, line, n);
    storing = 1;
    pthread_mutex_lock(&depot.lock);
    for (py_stack *s = depot.buckets[h % BUCKETS]; s; s = s->next) {
        if (s->hash == h && s->n == n && !memcmp(s->code, code, n * sizeof *code) &&
            !memcmp(s->line, line, n * sizeof *line)) {
            id = s->id;
            break;
        }
    }
    if (!id) {
        py_object *own[MAX_DEPTH];
        n = n > MAX_DEPTH ? MAX_DEPTH : n;
        for (size_t i = 0; i < n; i++)
            wref__py.incref(own[i] = code[i]);
        id = store(own, line, n, h);
    }
    pthread_mutex_unlock(&depot.lock);
    storing = 0;
    return id;
}

static uint32_t capture_api(unsigned depth)
{
    py_object *et, *ev, *etb;
    wref__py.err_fetch(&et, &ev, &etb);   /* the frame API must not see or clobber an exception */
    py_object *code[MAX_DEPTH];
    int line[MAX_DEPTH];
    size_t n = 0;
    py_object *f = wref__py.eval_get_frame();
    if (f)
        wref__py.incref(f);
    while (f && n < depth) {
        code[n] = wref__py.frame_get_code(f);
        line[n] = wref__py.frame_get_line_number(f);
        if (code[n])
            n++;
        py_object *back = wref__py.frame_get_back(f);
        wref__py.decref(f);
        f = back;
    }
    if (f)
        wref__py.decref(f);
    uint32_t id = wref__py_stack_store(code, line, n);
    for (size_t i = 0; i < n; i++)
        wref__py.decref(code[i]);
    wref__py.err_restore(et, ev, etb);
    return id;
}

static size_t frames_raw(py_object **code, int *line, int *offset, size_t max);
static void lines_pin(py_object *const *code, const int *line, const int *offset, size_t n);

uint32_t wref__py_stack_capture(unsigned depth)
{
    if (!wref__py_thread_state())
        return 0;   /* no thread state: interpreter finalizing, or a foreign thread */
    if (depth > MAX_DEPTH)
        depth = MAX_DEPTH;
    if (!wref__py_frame.on)
        return capture_api(depth);
    py_object *code[MAX_DEPTH];
    int line[MAX_DEPTH], offset[MAX_DEPTH];
    size_t n = frames_raw(code, line, offset, depth);
    uint32_t id = wref__py_stack_store(code, line, n);
    if (id)
        lines_pin(code, line, offset, n);   /* the stored stack pins its code objects */
    return id;
}

/* ---- the frame walk from the thread state ---------------------------------------------------
 * The frames PyEval_GetFrame/PyFrame_GetBack give, read directly (the offsets of pystack.h,
 * asserted by tests/python/layout_check.c, and checked against the C API once before
 * wref__py_frame.on is set): 3.9/3.10 the frame objects' f_back chain, 3.11+ the interpreter
 * frames' `previous` chain, without the frames that have not started (_PyFrame_IsIncomplete)
 * and the 3.12+ C-stack shims. A frame whose code is not a code object ends the walk.
 *
 * Lines: PyCode_Addr2Line(code, byte offset), as PyFrame_GetLineNumber computes them (no
 * tracer sets f_lineno under the checker's tests; a frame being traced gets the line of its
 * instruction). It walks the code's line table, the largest cost of a capture, so lines are
 * cached per thread by (code object, offset); an entry is made only for code objects that a
 * stored stack pins (lines_pin), so an address in the cache is never another code object's. */
#define LINES 512
typedef struct line_entry {
    uintptr_t code;
    int offset, line;
} line_entry;
static __thread __attribute__((tls_model("initial-exec"))) line_entry *lines;   /* LINES entries */
static int (*code_addr2line)(py_object *code, int offset);

static size_t line_slot(uintptr_t code, int offset)
{
    return (size_t)(((code >> 4) ^ ((uint64_t)(unsigned)offset * 0x9E3779B97F4A7C15ull)) * 0x9E3779B97F4A7C15ull >> 55) %
           LINES;
}

static int line_of(py_object *code, int offset)
{
    if (lines) {
        const line_entry *e = &lines[line_slot((uintptr_t)code, offset)];
        if (e->code == (uintptr_t)code && e->offset == offset)
            return e->line;
    }
    return code_addr2line(code, offset);
}

static void lines_pin(py_object *const *code, const int *line, const int *offset, size_t n)
{
    if (!lines && !(lines = calloc(LINES, sizeof *lines)))
        return;
    for (size_t i = 0; i < n; i++)
        lines[line_slot((uintptr_t)code[i], offset[i])] = (line_entry){(uintptr_t)code[i], offset[i], line[i]};
}

size_t wref__py_frames_raw(py_object **code, int *line, size_t max)
{
    int offset[MAX_DEPTH];
    return frames_raw(code, line, offset, max);
}

static size_t frames_raw(py_object **code, int *line, int *offsets, size_t max)
{
    int minor = wref__py_frame.on;
    void *ts = minor ? wref__py_thread_state() : NULL;
    if (!ts || !code_addr2line)
        return 0;
    if (max > MAX_DEPTH)
        max = MAX_DEPTH;
#define AT(p, off) (*(char **)((char *)(p) + (off)))
    char *f = AT(ts, wref__py_frame.ts_frame);
    if (f && wref__py_frame.cf_frame >= 0)
        f = AT(f, (unsigned)wref__py_frame.cf_frame);
    unsigned back = minor <= 10 ? WREF__PY39_F_BACK : minor == 11 ? WREF__PY311_F_PREVIOUS : WREF__PY312_F_PREVIOUS;
    unsigned first = minor == 11 ? WREF__PY311_CO_FIRSTTRACEABLE
                   : minor == 12 ? WREF__PY312_CO_FIRSTTRACEABLE : WREF__PY313_CO_FIRSTTRACEABLE;
    size_t n = 0;
    for (unsigned steps = 0; f && n < max && steps < 4 * MAX_DEPTH; steps++, f = AT(f, back)) {
        py_object *c = (py_object *)AT(f, wref__py_frame.code);
        int offset;
        if (minor >= 11) {
            char owner = f[wref__py_frame.owner];
            if (minor >= 12 && owner == WREF__PY_FRAME_OWNED_BY_CSTACK)
                continue;   /* a shim, never a Python frame */
            if (!c || c->ob_type != wref__py.code_type)
                break;
            char *start = (char *)c + wref__py_frame.code_units;
            char *ip = AT(f, wref__py_frame.where);
            if (owner != WREF__PY_FRAME_OWNED_BY_GENERATOR && ip < start + 2 * *(int *)((char *)c + first))
                continue;   /* incomplete: it has not started */
            offset = (int)(ip - start);
        } else {
            if (!c || c->ob_type != wref__py.code_type)
                break;
            int lasti = *(int *)(f + wref__py_frame.where);
            offset = minor == 10 ? lasti * 2 : lasti;   /* 3.10 counts code units, 3.9 bytes */
        }
        offsets[n] = offset;
        code[n] = c;
        line[n] = line_of(c, offset);
        n++;
    }
#undef AT
    return n;
}

/* ---- the innermost frame, read from the thread state --------------------------------------
 *
 * wref__py_innermost runs on every borrow; the C API way (PyEval_GetFrame, which materialises
 * a frame object on 3.11+, PyFrame_GetLasti, PyFrame_GetCode and its Py_DecRef) costs ~80
 * instructions, reading the thread state ~10. The offsets are those of each version's
 * headers (tests/python/layout_check.c asserts them at build time for every interpreter the
 * tests use). At the first borrow with a Python frame they are checked against the C API
 * (same frame, same code object, same instruction offset), reading only memory known to be
 * valid before each dereference; on any mismatch the C API is used from then on. Each fast
 * read also checks that the code object is a code object and that the frame is not a C-stack
 * shim (3.12+), else the C API answers that call. */
enum { FAST_UNTESTED, FAST_ON, FAST_OFF };
static int fast_state;   /* GIL held; wref__py_frame_layout.on mirrors FAST_ON */
wref__py_frame_layout wref__py_frame;

static bool layout_known(void)
{
    wref__py_frame_layout l;
    switch (wref__py.minor) {
    case 9:  l = (wref__py_frame_layout){0, WREF__PY39_TS_FRAME, -1, WREF__PY39_F_CODE, WREF__PY39_F_LASTI, -1, 0, 1}; break;
    case 10: l = (wref__py_frame_layout){0, WREF__PY39_TS_FRAME, -1, WREF__PY39_F_CODE, WREF__PY310_F_LASTI, -1, 0, 1}; break;
    case 11: l = (wref__py_frame_layout){0, WREF__PY311_TS_CFRAME, WREF__PY311_CF_FRAME, WREF__PY311_F_CODE,
                                         WREF__PY311_F_INSTR, WREF__PY311_F_OWNER, 184, 0}; break;
    case 12: l = (wref__py_frame_layout){0, WREF__PY311_TS_CFRAME, WREF__PY312_CF_FRAME, WREF__PY312_F_CODE,
                                         WREF__PY312_F_INSTR, WREF__PY312_F_OWNER, 192, 0}; break;
    case 13: l = (wref__py_frame_layout){0, WREF__PY313_TS_FRAME, -1, WREF__PY313_F_CODE, WREF__PY313_F_INSTR,
                                         WREF__PY313_F_OWNER, 200, 0}; break;
    default: return false;
    }
    wref__py_frame = l;
    return true;
}

#define PY_FRAME_F_FRAME_OFFSET 24   /* PyFrameObject.f_frame, 3.11+ */

static inline char *load_ptr(const void *base, unsigned off)
{
    return *(char *const *)((const char *)base + off);
}

/* The C API's answer; on 3.11+ `where` is the instruction offset in bytes, before: the line. */
static bool slow_innermost(uintptr_t *code, uintptr_t *where, py_object **frame)
{
    py_object *f = wref__py.eval_get_frame();   /* borrowed */
    if (!f)
        return false;
    py_object *c = wref__py.frame_get_code(f);
    if (!c)
        return false;
    *code = (uintptr_t)c;
    *where = (uintptr_t)(unsigned)(wref__py.frame_get_lasti ? wref__py.frame_get_lasti(f)
                                                            : wref__py.frame_get_line_number(f));
    wref__py.decref(c);
    *frame = f;
    return true;
}

/* The offsets against the C API's frame f (code object code, instruction offset lasti). */
static bool fast_layout_agrees(void *ts, py_object *f, uintptr_t code, uintptr_t lasti)
{
    char probe;
    char *p = load_ptr(ts, wref__py_frame.ts_frame);   /* inside the thread state: readable */
    if (!p)
        return false;
    if (wref__py_frame.cf_frame >= 0) {
        /* the _PyCFrame is tstate->root_cframe or a local of an eval loop on this thread's
         * stack, above this frame: anything else is not one, and is not dereferenced */
        uintptr_t a = (uintptr_t)p, t = (uintptr_t)ts, sp = (uintptr_t)&probe;
        if (!((a >= t && a < t + 4096) || (a > sp && a - sp < ((uintptr_t)64 << 20))) || a % sizeof(void *))
            return false;
        p = load_ptr(p, (unsigned)wref__py_frame.cf_frame);
    }
    /* p must be the C API's frame: the frame object itself (3.9/3.10) or its f_frame */
    char *expect = wref__py.minor <= 10 ? (char *)f : load_ptr(f, PY_FRAME_F_FRAME_OFFSET);
    if (!p || p != expect)
        return false;
    if ((uintptr_t)load_ptr(p, wref__py_frame.code) != code || ((py_object *)code)->ob_type != wref__py.code_type)
        return false;
    if (wref__py.minor >= 11) {   /* the instruction pointer is lasti bytes into the code units */
        uintptr_t ip = (uintptr_t)load_ptr(p, wref__py_frame.where);
        if (ip - (code + wref__py_frame.code_units) != lasti)
            return false;
    }
    return true;
}

bool wref__py_innermost_slow(void *ts, uintptr_t *code, uintptr_t *where)
{
    py_object *f = NULL;
    if (!slow_innermost(code, where, &f))
        return false;
    if (fast_state == FAST_UNTESTED) {
        *(void **)&code_addr2line = dlsym(RTLD_DEFAULT, "PyCode_Addr2Line");   /* the frame walk's lines */
        bool ok = wref__py.code_type && layout_known() && fast_layout_agrees(ts, f, *code, *where);
        fast_state = ok ? FAST_ON : FAST_OFF;
        wref__py_frame.on = ok ? wref__py.minor : 0;
        if (!ok)
            wref__checker_warn(NULL, "python frontend: CPython %s: the thread state's frame layout is not the "
                               "expected one; reading frames through the C API (slower)", wref__py.version);
        else if (wref__py_innermost_fast(ts, code, where))   /* the key the next calls will use */
            return true;
    }
    return true;
}

/* ---- the thread state without a call (pystack.h wref__py_thread_state) ----------------------
 * 3.9-3.11: _PyRuntime.gilstate.tstate_current, the global _PyThreadState_UncheckedGet returns
 * (its offset per version: tests/python/layout_check.c asserts it against the internal headers).
 * 3.12/3.13: libpython's thread-local _Py_tss_tstate, a local symbol: its offset in the
 * module's TLS block is the one word of the block that holds the thread state at the start.
 * Each thread's slot is that offset in its own block (dl_iterate_phdr's dlpi_tls_data, which
 * is this thread's), taken only when it holds the C API's answer on that thread. */
#define PY39_RUNTIME_TSTATE_CURRENT 568    /* _PyRuntimeState.gilstate.tstate_current, 3.9 and 3.10 */
#define PY311_RUNTIME_TSTATE_CURRENT 576   /* 3.11 */

enum { TS_API, TS_GLOBAL, TS_TLS };
static struct {
    int mode;                 /* written once at the start, GIL held */
    void *const *global;      /* TS_GLOBAL */
    uintptr_t in_module;      /* TS_TLS: an address inside libpython (the C API's function) */
    size_t offset;            /* TS_TLS: the variable's offset in the module's TLS block */
} tsv;
__thread __attribute__((tls_model("initial-exec"))) void *const *wref__py_ts_slot;
void *const *wref__py_ts_global;

typedef struct tls_find {
    uintptr_t addr;   /* in: an address inside the module */
    char *block;      /* out: this thread's TLS block of that module (NULL: none) */
    size_t size;      /* out: its size */
} tls_find;

static int tls_of(struct dl_phdr_info *info, size_t n, void *arg)
{
    (void)n;
    tls_find *t = arg;
    bool inside = false;
    size_t size = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && t->addr >= start && t->addr - start < ph->p_memsz)
            inside = true;
        if (ph->p_type == PT_TLS)
            size = ph->p_memsz;
    }
    if (!inside)
        return 0;
    t->block = info->dlpi_tls_data;
    t->size = size;
    return 1;
}

static char *module_tls(uintptr_t addr, size_t *size)
{
    tls_find t = {addr, NULL, 0};
    dl_iterate_phdr(tls_of, &t);
    *size = t.size;
    return t.block;
}

void wref__py_thread_state_init(void)
{
    void *ts = wref__py.thread_state_unchecked();
    if (!ts || tsv.mode != TS_API)
        return;
    if (wref__py.minor <= 11) {
        char *rt = dlsym(RTLD_DEFAULT, "_PyRuntime");
        void *const *g = rt ? (void *const *)(rt + (wref__py.minor == 11 ? PY311_RUNTIME_TSTATE_CURRENT
                                                                           : PY39_RUNTIME_TSTATE_CURRENT))
                            : NULL;
        if (g && *g == ts) {
            tsv.global = g;
            __atomic_store_n(&tsv.mode, TS_GLOBAL, __ATOMIC_RELEASE);
        }
    } else {
        size_t size, found = 0, at = 0;
        uintptr_t fn = (uintptr_t)wref__py.thread_state_unchecked;
        char *block = module_tls(fn, &size);
        for (size_t off = 0; block && off + sizeof(void *) <= size; off += sizeof(void *))
            if (*(void **)(block + off) == ts)
                found++, at = off;
        if (found == 1) {   /* two words holding it: which one is the variable is not known */
            tsv.in_module = fn;
            tsv.offset = at;
            __atomic_store_n(&tsv.mode, TS_TLS, __ATOMIC_RELEASE);
        }
    }
    if (tsv.mode != TS_API)
        (void)wref__py_thread_state_slow();   /* this thread's slot */
    if (tsv.mode == TS_GLOBAL)
        __atomic_store_n(&wref__py_ts_global, tsv.global, __ATOMIC_RELEASE);
    if (wref__opt.verbosity >= 1)   /* one line whichever way: TS_TLS is found too */
        wref__checker_warn(NULL, "python frontend: CPython %s: the thread state is read %s", wref__py.version,
                           tsv.mode == TS_GLOBAL ? "through the interpreter's global (_PyRuntime)"
                           : tsv.mode == TS_TLS  ? "through libpython's thread-local variable"
                                                 : "through the C API (its variable was not found: slower)");
}

void *wref__py_thread_state_slow(void)
{
    void *ts = wref__py.thread_state_unchecked();
    int mode = __atomic_load_n(&tsv.mode, __ATOMIC_ACQUIRE);
    if (!ts || mode == TS_API)
        return ts;   /* no thread state yet: the slot is looked for at a later call */
    void *const *slot = tsv.global;
    if (mode == TS_TLS) {
        size_t size;
        char *block = module_tls(tsv.in_module, &size);   /* this thread's block */
        slot = block && tsv.offset + sizeof(void *) <= size ? (void *const *)(block + tsv.offset) : NULL;
    }
    if (slot && *slot == ts)
        wref__py_ts_slot = slot;
    return ts;
}

void wref__py_stack_stats(uint32_t *stored, uint64_t *nested)
{
    *stored = __atomic_load_n(&depot.count, __ATOMIC_RELAXED);   /* no lock: exit work */
    *nested = __atomic_load_n(&nested_stores, __ATOMIC_RELAXED);
}

void wref__py_stack_fork(enum wref__fork_phase phase)
{
    wref__fork_mutex(&depot.lock, phase);
}

uintptr_t wref__py_stack_innermost_code(uint32_t id)
{
    pthread_mutex_lock(&depot.lock);
    py_stack *s = id && id <= depot.count ? depot.by_id[id - 1] : NULL;
    uintptr_t c = s && s->n ? (uintptr_t)s->code[0] : 0;
    pthread_mutex_unlock(&depot.lock);
    return c;
}

size_t wref__py_stack_get(uint32_t id, const wref__lang_frame **frames)
{
    *frames = NULL;
    pthread_mutex_lock(&depot.lock);
    py_stack *s = id && id <= depot.count ? depot.by_id[id - 1] : NULL;
    pthread_mutex_unlock(&depot.lock);
    if (!s)
        return 0;
    *frames = s->frames;
    return s->n;
}
