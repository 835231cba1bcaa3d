/* finding.c: the type name a finding shows and a finding's context (finding.h). */
#include "finding.h"

const char *wref__finding_type_name(const wref__finding *f)
{
    return f->type_name ? f->type_name : wref__type_name(f->object);
}

#include <string.h>

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
    if (s)
        h = fnv(h, s, strlen(s));
    return (h ^ 0xff) * 0x100000001b3ULL;   /* a separator no string contains: "ab","c" != "a","bc" */
}

void wref__context_of(const wref__finding *f, const uint64_t *stack_keys, wref__context *out)
{
    memset(out, 0, sizeof *out);
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv_str(h, f->object || f->type_name ? wref__finding_type_name(f) : NULL);
    h = fnv_str(h, f->test_name);
    out->kind = (uint32_t)f->kind;
    out->where = stack_keys[0];
    out->lang_where = f->lang_where;
    out->n_history = f->n_history < WREF__MAX_STACKS ? f->n_history : WREF__MAX_STACKS;
    for (unsigned i = 0; i < out->n_history; i++) {
        h = fnv_str(h, f->history[i].label);
        out->history[i] = stack_keys[1 + i];
        out->lang_history[i] = f->lang_history[i];
    }
    out->strings = h;
}

uint64_t wref__context_hash(const wref__context *c)
{
    return fnv(0xcbf29ce484222325ULL, c, sizeof *c);
}
