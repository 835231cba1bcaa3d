/* fingerprint.c: a finding's stable identity across runs and builds.
 *
 * Contract: the fingerprint is FNV-1a 64 (16 hex digits) of the kind and the top 3 user frames
 * (model.c: report_is_user_frame) of the finding's main stack ("where", else the first
 * history stack). A frame contributes "function@file-basename", or "module-basename!function"
 * when it has no file. Addresses, offsets, lines, pids and thread ids never contribute, so
 * two runs or two builds of the same bug agree. Interpreter frames are not user frames, so a
 * CPython extension's bug is identified by the extension's frames whichever Python code (a
 * script, pytest) called it. A finding without any user frame is identified by the innermost
 * Python frame of its main stack with a real file, "function@file-basename" (two callback
 * errors raised in different Python functions stay apart), and without that by its kind and
 * object type. The pytest test name never contributes. */
#include "model.h"

#include <stdint.h>
#include <string.h>

#define FP_FRAMES 3

static uint64_t fnv(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    return (h ^ 0xff) * 0x100000001b3ULL;   /* a separator no string contains */
}

/* Appends `s` to the growing summary. */
static void add(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    while (*len + n + 1 > *cap) {
        *cap *= 2;
        char *grown = report_xmalloc(*cap);
        memcpy(grown, *buf, *len + 1);
        free(*buf);
        *buf = grown;
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

/* The growing fingerprint and summary of one finding. */
struct acc {
    uint64_t h;
    char *sum;
    size_t len, cap;
    int used;   /* frames added */
};

/* Adds one frame: `function`, `sep` ("@" file, "!" module) and the basename `where`. */
static void add_frame(struct acc *a, const char *function, const char *sep, const char *where)
{
    a->h = fnv(fnv(fnv(a->h, function), sep), where);
    add(&a->sum, &a->len, &a->cap, a->used++ ? " < " : " in ");
    add(&a->sum, &a->len, &a->cap, function);
    add(&a->sum, &a->len, &a->cap, " (");
    add(&a->sum, &a->len, &a->cap, where);
    add(&a->sum, &a->len, &a->cap, ")");
}

void report_fingerprint(struct finding *f)
{
    struct acc a = {fnv(0xcbf29ce484222325ULL, f->kind->id), report_xmalloc(128), 0, 128, 0};
    add(&a.sum, &a.len, &a.cap, f->kind->id);
    const struct stack *s = report_main_stack(f);
    for (size_t i = 0; s && i < s->nframes && a.used < FP_FRAMES; i++) {
        const struct frame *fr = &s->frames[i];
        if (report_is_user_frame(fr))
            add_frame(&a, fr->function, fr->file ? "@" : "!",
                      report_basename(fr->file ? fr->file : fr->module));
    }
    const struct pyframe *py = a.used ? NULL : report_first_pyframe(s, 0);
    if (py)
        add_frame(&a, py->function, "@", report_basename(py->file));
    if (!a.used) {
        const char *type = f->has_object ? f->type : "";
        a.h = fnv(fnv(a.h, "type="), type);
        add(&a.sum, &a.len, &a.cap, " on type=");
        add(&a.sum, &a.len, &a.cap, f->has_object ? type : "(none)");
    }
    snprintf(f->fingerprint, sizeof f->fingerprint, "%016llx", (unsigned long long)a.h);
    f->fp_summary = a.sum;
}
