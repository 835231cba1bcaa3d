/* model.c: the table of finding kinds, frame classification and memory helpers. */
#include "model.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One row per finding kind, from the checker's own table (src/check/engine/kinds.def, which
 * docs/report-schema.json's $defs.kind follows): id, SARIF rule name, texts, and the
 * severity the checker gives the kind as the SARIF default level. */
const struct kind report_kinds[] = {
#define WREF__KIND(ID, name, rule, once, severity, short_desc, full_desc) {name, rule, short_desc, full_desc, severity},
#include "check/engine/kinds.def"
};
const size_t report_nkinds = sizeof report_kinds / sizeof report_kinds[0];

const struct kind *report_find_kind(const char *id)
{
    for (size_t i = 0; i < report_nkinds; i++)
        if (!strcmp(report_kinds[i].id, id))
            return &report_kinds[i];
    return NULL;
}

const char *report_basename(const char *path)
{
    if (!path)
        return "";
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The CPython interpreter's modules, by the checker's rule (src/check/python/intercept.c,
 * frame_is_interpreter): libpython*, or an executable named python* (Debian's python3.11 has
 * libpython linked in). An extension module is a shared object: "python_ext.so" is not one. */
static int is_interpreter(const char *m)
{
    return starts_with(m, "libpython") || (starts_with(m, "python") && !strstr(m, ".so"));
}

int report_is_user_frame(const struct frame *f)
{
    if (!f->function || !f->function[0])
        return 0;
    const char *m = report_basename(f->module);
    return !starts_with(m, "libwref") && !starts_with(m, "libc.so") &&
           !starts_with(m, "libc-") && !starts_with(m, "ld-linux") &&
           !starts_with(m, "libpthread") && !is_interpreter(m);
}

const struct pyframe *report_first_pyframe(const struct stack *s, int need_line)
{
    for (size_t i = 0; s && i < s->npyframes; i++) {
        const struct pyframe *p = &s->pyframes[i];
        if (p->file[0] && p->file[0] != '<' && (!need_line || p->line > 0))
            return p;
    }
    return NULL;
}

char *report_pyframe_path(const struct finding *f, const struct pyframe *p)
{
    if (p->file[0] == '/' || !f->report || !f->report->cwd || f->report->cwd[0] != '/')
        return report_normalize(p->file);
    char *joined = report_join(f->report->cwd, p->file);
    char *norm = report_normalize(joined);
    free(joined);
    return norm;
}

const struct stack *report_main_stack(const struct finding *f)
{
    for (size_t i = 0; i < f->nstacks; i++)
        if (!strcmp(f->stacks[i].label, "where"))
            return &f->stacks[i];
    return f->nstacks ? &f->stacks[0] : NULL;
}

const struct frame *report_first_user_frame(const struct stack *s, int need_line)
{
    for (size_t i = 0; s && i < s->nframes; i++) {
        const struct frame *f = &s->frames[i];
        if (report_is_user_frame(f) && (!need_line || (f->file && f->line > 0)))
            return f;
    }
    return NULL;
}

const char *report_relative(const char *file, const char *root)
{
    size_t n = root ? strlen(root) : 0;
    if (!file || !n || strncmp(file, root, n) != 0 || file[n] != '/')
        return NULL;
    return file + n + 1;
}

void report_free(struct report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nfindings; i++) {
        struct finding *f = &r->findings[i];
        for (size_t j = 0; j < f->nstacks; j++) {
            free(f->stacks[j].frames);
            free(f->stacks[j].pyframes);
        }
        free(f->stacks);
        free(f->cycle);
        free(f->fp_summary);
    }
    free(r->findings);
    for (size_t i = 0; i < r->nnodes; i++)
        free(r->nodes[i].weaks);
    free(r->nodes);
    free(r->edges);
    json_decref(r->root);
    free(r->name);
    free(r);
}

void report_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("wref-check report: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void report_warning(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "==%ld==WARNING: wref-check: ", (long)getpid());
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Percent-encodes everything but RFC 3986 unreserved characters and '/'. */
char *report_uri_encode(const char *prefix, const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(prefix), cap = n + 3 * strlen(path) + 1;
    char *s = report_xmalloc(cap), *o = s + n;
    memcpy(s, prefix, n);
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (strchr("-._~/", *p) || (*p >= '0' && *p <= '9') || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z')) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = 0;
    return s;
}

char *report_join(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    int slash = !(n == 1 && dir[0] == '/');
    size_t len = n + (size_t)slash + strlen(name) + 1;
    char *s = report_xmalloc(len);
    snprintf(s, len, "%.*s%s%s", (int)n, dir, slash ? "/" : "", name);
    return s;
}

char *report_normalize(const char *path)
{
    /* Segments are copied to `out` one by one; ".." pops the last kept segment unless there is
     * none (then a relative path keeps it, an absolute one drops it: "/.." is "/"). */
    size_t len = strlen(path);
    char *out = report_xmalloc(len + 2);
    int absolute = path[0] == '/';
    size_t o = 0, kept = 0;   /* kept: segments in out that ".." may pop */
    if (absolute)
        out[o++] = '/';
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        size_t seg = strcspn(p, "/");
        if (!seg)
            break;
        if (seg == 1 && p[0] == '.') {
            /* nothing */
        } else if (seg == 2 && p[0] == '.' && p[1] == '.') {
            if (kept) {
                while (o > (size_t)absolute && out[o - 1] != '/')
                    o--;
                if (o > (size_t)absolute)
                    o--;   /* the '/' before the popped segment */
                kept--;
            } else if (!absolute) {
                if (o)
                    out[o++] = '/';
                memcpy(out + o, "..", 2);
                o += 2;
            }
        } else {
            if (o > (size_t)absolute)
                out[o++] = '/';
            memcpy(out + o, p, seg);
            o += seg;
            kept++;
        }
        p += seg;
    }
    if (!o)
        out[o++] = '.';
    out[o] = 0;
    return out;
}

char *report_cycle_text(const struct finding *f)
{
    if (f->ncycle == 0)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out) {
        report_error("out of memory");
        exit(REPORT_EXIT_ERROR);
    }
    const struct report *r = f->report;
    for (size_t i = 0; i < f->ncycle; i++) {
        const char *type = NULL;
        for (size_t j = 0; r && j < r->nnodes && !type; j++)
            if (r->nodes[j].serial == f->cycle[i] && !r->nodes[j].frontend)   /* cycles: wref serials */
                type = r->nodes[j].type;
        if (!type && f->has_object && f->serial == f->cycle[i])
            type = f->type;
        fprintf(out, "%s%s#%ld", i ? " -> " : "", type ? type : "", f->cycle[i]);
    }
    fclose(out);
    return buf;
}

void *report_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        report_error("out of memory");
        exit(REPORT_EXIT_ERROR);
    }
    return p;
}

void *report_xmalloc(size_t n)
{
    return report_xcalloc(1, n);
}

char *report_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(report_xmalloc(n), s, n);
}
