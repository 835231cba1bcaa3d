/* pystack.c: Python stacks, captured with the GIL held and kept in a depot of their own.
 *
 * A stack is the sequence (code object, line) of the running frames, innermost first. Equal
 * sequences share one id. A new sequence is formatted at once (file, line, function as text)
 * so that a report, which may come after the interpreter finalized, never touches a Python
 * object. The depot keeps a reference to each code object it stored, so a code object's
 * address is never reused for another one while the depot names it. */
#include "pystack.h"

#include "../engine/core.h"
#include "../engine/finding.h"
#include "../engine/options.h"
#include "capi.h"

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
    depot.by_id[depot.count++] = s;
    return s->id;
}

uint32_t wref__py_stack_capture(unsigned depth)
{
    if (!wref__py.thread_state_unchecked())
        return 0;   /* no thread state: interpreter finalizing, or a foreign thread */
    if (depth > MAX_DEPTH)
        depth = MAX_DEPTH;
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

    uint32_t id = 0;
    if (n) {
        uint32_t h = hash_of(code, line, n);
        pthread_mutex_lock(&depot.lock);
        for (py_stack *s = depot.buckets[h % BUCKETS]; s; s = s->next) {
            if (s->hash == h && s->n == n && !memcmp(s->code, code, n * sizeof *code) &&
                !memcmp(s->line, line, n * sizeof *line)) {
                id = s->id;
                break;
            }
        }
        if (id) {
            for (size_t i = 0; i < n; i++)
                wref__py.decref(code[i]);
        } else {
            id = store(code, line, n, h);
        }
        pthread_mutex_unlock(&depot.lock);
    }
    wref__py.err_restore(et, ev, etb);
    return id;
}

bool wref__py_innermost(uintptr_t *code, int *where)
{
    if (!wref__py.thread_state_unchecked())
        return false;
    py_object *f = wref__py.eval_get_frame();   /* borrowed */
    if (!f)
        return false;
    py_object *c = wref__py.frame_get_code(f);
    if (!c)
        return false;
    *code = (uintptr_t)c;
    *where = wref__py.frame_get_lasti ? wref__py.frame_get_lasti(f) : wref__py.frame_get_line_number(f);
    wref__py.decref(c);
    return true;
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
