/* suppress.c: suppressions (option suppressions=FILE), in the sanitizers' spirit.
 *
 * File syntax, one entry a line; '#' starts a comment; blank lines are ignored:
 *   kind:Pattern                    the finding's frames (below)
 *   kind:type=TypePattern           the finding's object type name
 *   kind:type=TypePattern:frame=Pattern   both: the type name AND a frame (the narrowest
 *                                   entry, what `wref-check report --gen-suppressions` writes)
 *   kind:frame=Pattern              the same as kind:Pattern, spelled out
 * kind is a finding kind (leak, dangling-borrow, ...) or '*'. In the combined form the type
 * pattern ends at the last ":frame=". A pattern is an fnmatch(3) glob ('*', '?', '[...]';
 * '\' escapes), matched against every frame of every stack of the finding: the function
 * name, the source file (full path or basename) and the module's basename.
 *
 * A file that cannot be read, or any line that is not an entry, stops the program at start
 * (exit status 1) with a message naming the file and line: a typo must never silently turn a
 * suppression off. A suppressed leak also suppresses the objects reachable only from it
 * (census.c asks wref__report, which comes here).
 * Loaded once at init (read-only afterwards); match counts are updated under report.c's lock. */
#include "suppress.h"
#include "buf.h"
#include "core.h"
#include "finding.h"
#include "options.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct entry {
    int kind;             /* enum wref__kind, or -1 for '*' */
    char *text;           /* "kind:pattern" as written, for the tables */
    const char *written;  /* the part after "kind:", for the JSON table */
    char *type_pat;       /* the object's type name must match (NULL: any) */
    char *frame_pat;      /* a frame must match (NULL: no frame condition) */
    size_t hits;
};

static struct {
    struct entry *v;
    size_t n;
    size_t total;
    bool loaded;
} sup;

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int kind_from(const char *s, size_t len)
{
    if (len == 1 && s[0] == '*')
        return -1;
    for (int k = 0; k < WREF__K_COUNT; k++) {
        const char *name = wref__kind_name((enum wref__kind)k);
        if (strlen(name) == len && !strncmp(name, s, len))
            return k;
    }
    return -2;
}

static void trim(char **s)
{
    char *p = *s;
    while (*p == ' ' || *p == '\t')
        p++;
    char *e = p + strlen(p);
    while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = 0;
    *s = p;
}

/* A suppressions file the checker cannot use: the run stops before the program does anything. */
static void fatal(const char *path, unsigned lineno, const char *why, const char *line)
{
    char msg[1600];
    int n;
    if (lineno)
        n = snprintf(msg, sizeof msg, "==%d==ERROR: wref-check: suppressions file %s, line %u: %s: '%.1024s'\n"
                     "==%d==ERROR: wref-check: stopping (exit status 1): fix or remove the line\n",
                     (int)getpid(), path, lineno, why, line, (int)getpid());
    else
        n = snprintf(msg, sizeof msg, "==%d==ERROR: wref-check: cannot read the suppressions file %s (%s)\n"
                     "==%d==ERROR: wref-check: stopping (exit status 1): fix the suppressions= option\n",
                     (int)getpid(), path, why, (int)getpid());
    if (n > 0)
        (void)!write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    _exit(1);
}

static char *dup_or_die(const char *s, size_t len, const char *path, unsigned lineno, const char *line)
{
    char *d = strndup(s, len);
    if (!d)
        fatal(path, lineno, "out of memory", line);
    return d;
}

static void add_line(const char *path, unsigned lineno, char *line)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = 0;
    trim(&line);
    if (!*line)
        return;
    char *colon = strchr(line, ':');
    if (!colon)
        fatal(path, lineno, "expected kind:pattern", line);
    int kind = kind_from(line, (size_t)(colon - line));
    if (kind == -2) {
        char why[600] = "unknown kind before ':' (the kinds:";
        for (int k = 0; k < WREF__K_COUNT; k++)
            snprintf(why + strlen(why), sizeof why - strlen(why), " %s,", wref__kind_name((enum wref__kind)k));
        snprintf(why + strlen(why), sizeof why - strlen(why), " or '*')");
        fatal(path, lineno, why, line);
    }
    char *rest = colon + 1;
    trim(&rest);
    if (!*rest)
        fatal(path, lineno, "empty pattern after ':'", line);
    struct entry e = {kind, NULL, NULL, NULL, NULL, 0};
    if (!strncmp(rest, "type=", 5)) {
        const char *t = rest + 5, *fr = NULL;
        for (const char *q = strstr(t, ":frame="); q; q = strstr(q + 1, ":frame="))
            fr = q;   /* the last one: a type name may hold ':' */
        size_t tlen = fr ? (size_t)(fr - t) : strlen(t);
        if (!tlen)
            fatal(path, lineno, "empty type pattern after 'type='", line);
        e.type_pat = dup_or_die(t, tlen, path, lineno, line);
        if (fr) {
            if (!fr[7])
                fatal(path, lineno, "empty frame pattern after ':frame='", line);
            e.frame_pat = dup_or_die(fr + 7, strlen(fr + 7), path, lineno, line);
        }
    } else {
        const char *f = !strncmp(rest, "frame=", 6) ? rest + 6 : rest;
        if (!*f)
            fatal(path, lineno, "empty frame pattern after 'frame='", line);
        e.frame_pat = dup_or_die(f, strlen(f), path, lineno, line);
    }
    /* the text as written, with the blanks around the pattern trimmed */
    size_t klen = (size_t)(colon - line);
    size_t len = klen + 1 + strlen(rest);
    e.text = malloc(len + 1);
    struct entry *v = realloc(sup.v, (sup.n + 1) * sizeof *v);
    if (!v || !e.text)
        fatal(path, lineno, "out of memory", line);
    snprintf(e.text, len + 1, "%.*s:%s", (int)klen, line, rest);
    e.written = e.text + klen + 1;
    sup.v = v;
    v[sup.n++] = e;
}

void wref__suppress_load(const char *path)
{
    if (sup.loaded)
        return;
    sup.loaded = true;
    FILE *f = fopen(path, "re");
    if (!f)
        fatal(path, 0, strerror(errno), "");
    char line[1024];
    unsigned lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            char what[64];
            snprintf(what, sizeof what, "line longer than %zu bytes", sizeof line - 2);
            fatal(path, lineno, what, line);
        }
        add_line(path, lineno, line);
    }
    if (ferror(f))
        fatal(path, 0, strerror(errno), "");
    fclose(f);
    if (wref__opt.verbosity >= 1)
        wref__checker_warn(NULL, "%zu suppression(s) from %s", sup.n, path);
}

static bool frame_matches(const struct wref__frame_info *fi, const char *pat)
{
    return (fi->function && !fnmatch(pat, fi->function, 0)) ||
           (fi->file && (!fnmatch(pat, fi->file, 0) || !fnmatch(pat, base_name(fi->file), 0))) ||
           (fi->module && !fnmatch(pat, base_name(fi->module), 0));
}

static bool entry_matches(const struct entry *e, const wref__finding *f, const wref__rstack *stacks, size_t n)
{
    if (e->kind != -1 && e->kind != (int)f->kind)
        return false;
    if (e->type_pat && !(f->object && !fnmatch(e->type_pat, wref__finding_type_name(f), 0)))
        return false;
    if (!e->frame_pat)
        return true;
    for (size_t s = 0; s < n; s++) {
        for (size_t i = 0; i < stacks[s].n; i++)
            if (frame_matches(&stacks[s].frames[i], e->frame_pat))
                return true;
        for (size_t i = 0; i < stacks[s].n_lang; i++) {   /* Python frames: function, file */
            const wref__lang_frame *lf = &stacks[s].lang[i];
            if (!fnmatch(e->frame_pat, lf->function, 0) || !fnmatch(e->frame_pat, lf->file, 0) ||
                !fnmatch(e->frame_pat, base_name(lf->file), 0))
                return true;
        }
    }
    return false;
}

bool wref__suppress_match(const wref__finding *f, const wref__rstack *stacks, size_t n_stacks)
{
    for (size_t i = 0; i < sup.n; i++) {
        if (entry_matches(&sup.v[i], f, stacks, n_stacks)) {
            sup.v[i].hits++;
            sup.total++;
            return true;
        }
    }
    return false;
}

/* fnmatch(pattern, s, 0) for the patterns suppressions use (*, ?, [set], [!set], ranges,
 * backslash escapes), without fnmatch: the fault handler calls wref__suppress_match_type from
 * a signal handler, and glibc's fnmatch may allocate. Iterative, with one backtrack point for
 * the last '*'. */
static bool class_match(const char **pp, unsigned char c)
{
    const char *p = *pp + 1;   /* after '[' */
    bool neg = *p == '!' || *p == '^', hit = false;
    if (neg)
        p++;
    const char *first = p;
    while (*p && (*p != ']' || p == first)) {
        unsigned char lo = (unsigned char)*p++, hi = lo;
        if (*p == '-' && p[1] && p[1] != ']') {
            hi = (unsigned char)p[1];
            p += 2;
        }
        if (c >= lo && c <= hi)
            hit = true;
    }
    if (*p != ']')
        return c == '[';   /* no closing bracket: a literal '[' */
    *pp = p + 1;
    return hit != neg;
}

static bool glob_match(const char *p, const char *s)
{
    const char *star_p = NULL, *star_s = NULL;
    while (*s) {
        const char *np = p;
        if (*p == '*') {
            star_p = ++p;
            star_s = s;
            continue;
        }
        bool ok;
        if (*p == '?') {
            ok = true;
            np = p + 1;
        } else if (*p == '[') {
            np = p;
            ok = class_match(&np, (unsigned char)*s);
            if (np == p)
                np = p + 1;   /* unterminated: matched as a literal */
        } else {
            if (*p == '\\' && p[1])
                p++;
            ok = *p && *p == *s;
            np = p + 1;
        }
        if (ok) {
            p = np;
            s++;
        } else if (star_p) {
            p = star_p;
            s = ++star_s;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return !*p;
}

bool wref__suppress_match_type(enum wref__kind kind, const char *type_name)
{
    for (size_t i = 0; i < sup.n; i++) {
        struct entry *e = &sup.v[i];
        /* only type entries: the fault handler cannot symbolize frames */
        if (e->type_pat && !e->frame_pat && (e->kind == -1 || e->kind == (int)kind) &&
            glob_match(e->type_pat, type_name)) {
            e->hits++;
            sup.total++;
            return true;
        }
    }
    return false;
}

void wref__suppress_table_text(wref__buf *b)
{
    if (!sup.total)
        return;
    wref__buf_printf(b, "-----------------------------------------------------\n"
                        "Suppressions used:\n  count pattern\n");
    for (size_t i = 0; i < sup.n; i++)
        if (sup.v[i].hits)
            wref__buf_printf(b, "%7zu %s\n", sup.v[i].hits, sup.v[i].text);
    wref__buf_printf(b, "-----------------------------------------------------\n");
}

static void put_str(void (*put)(void *, const char *, size_t), void *ctx, const char *s)
{
    put(ctx, s, strlen(s));
}

void wref__suppress_table_json_put(void (*put)(void *ctx, const char *p, size_t n), void *ctx)
{
    put_str(put, ctx, "[");
    const char *sep = "";
    for (size_t i = 0; i < sup.n; i++) {
        const struct entry *e = &sup.v[i];
        if (!e->hits)
            continue;
        put_str(put, ctx, sep);
        put_str(put, ctx, "{\"kind\":\"");
        put_str(put, ctx, e->kind < 0 ? "*" : wref__kind_name((enum wref__kind)e->kind));
        put_str(put, ctx, "\",\"pattern\":\"");
        wref__json_escape(e->written, put, ctx);
        put_str(put, ctx, "\",\"count\":");
        char num[24], *d = num + sizeof num;   /* no printf: the fault handler calls this */
        size_t v = e->hits;
        do
            *--d = (char)('0' + v % 10);
        while ((v /= 10) && d > num);
        put(ctx, d, (size_t)(num + sizeof num - d));
        put_str(put, ctx, "}");
        sep = ",";
    }
    put_str(put, ctx, "]");
}

static void buf_put(void *ctx, const char *p, size_t n)
{
    wref__buf_printf(ctx, "%.*s", (int)n, p);
}

void wref__suppress_table_json(wref__buf *b)
{
    wref__suppress_table_json_put(buf_put, b);
}
