/* fingerprint.c: a finding's stable identity across runs and builds.
 *
 * Contract: the fingerprint is FNV-1a 64 (16 hex digits) of the kind and the top 3 user frames
 * (model.c: report_is_user_frame) of the finding's main stack ("where", else the first
 * history stack). A frame contributes "function@file-basename", or "module-basename!function"
 * when it has no file. Addresses, offsets, lines, pids and thread ids never contribute, so
 * two runs or two builds of the same bug agree. A finding without any user frame is
 * identified by its kind and object type. */
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

void report_fingerprint(struct finding *f)
{
    uint64_t h = fnv(0xcbf29ce484222325ULL, f->kind->id);
    size_t len = 0, cap = 128;
    char *sum = report_xmalloc(cap);
    add(&sum, &len, &cap, f->kind->id);
    const struct stack *s = report_main_stack(f);
    int used = 0;
    for (size_t i = 0; s && i < s->nframes && used < FP_FRAMES; i++) {
        const struct frame *fr = &s->frames[i];
        if (!report_is_user_frame(fr))
            continue;
        const char *where = fr->file ? report_basename(fr->file) : report_basename(fr->module);
        h = fnv(fnv(fnv(h, fr->function), fr->file ? "@" : "!"), where);
        add(&sum, &len, &cap, used++ ? " < " : " in ");
        add(&sum, &len, &cap, fr->function);
        add(&sum, &len, &cap, " (");
        add(&sum, &len, &cap, where);
        add(&sum, &len, &cap, ")");
    }
    if (!used) {
        const char *type = f->has_object ? f->type : "";
        h = fnv(fnv(h, "type="), type);
        add(&sum, &len, &cap, " on type=");
        add(&sum, &len, &cap, f->has_object ? type : "(none)");
    }
    snprintf(f->fingerprint, sizeof f->fingerprint, "%016llx", (unsigned long long)h);
    f->fp_summary = sum;
}
