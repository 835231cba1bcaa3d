/* suppress.c: suppressions (option suppressions=FILE), in the sanitizers' spirit.
 *
 * File syntax, one entry a line; '#' starts a comment; blank lines are ignored:
 *   kind:pattern        kind is a finding kind (leak, dangling-borrow, ...) or '*'
 *   kind:type=Pattern   matches the finding's object type name instead of its frames
 * A pattern is an fnmatch(3) glob ('*', '?', '[...]'), matched against every frame of every
 * stack of the finding: the function name, the source file (full path or basename) and the
 * module's basename. `wref-check report --gen-suppressions` writes entries for a report.
 * Loaded once at init (read-only afterwards); match counts are updated under report.c's lock. */
#include "checker.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    int kind;          /* enum wref__kind, or -1 for '*' */
    bool by_type;      /* pattern applies to the object's type name */
    char *text;        /* "kind:pattern" as written, for the tables */
    const char *pattern;
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

static void add_line(const char *path, unsigned lineno, char *line)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = 0;
    trim(&line);
    if (!*line)
        return;
    char *colon = strchr(line, ':');
    int kind = colon ? kind_from(line, (size_t)(colon - line)) : -2;
    if (kind == -2 || !colon[1]) {
        wref__checker_warn(NULL, "%s:%u: bad suppression '%s' (expected kind:pattern, kind one of the "
                                 "finding kinds or '*'); ignored", path, lineno, line);
        return;
    }
    struct entry *v = realloc(sup.v, (sup.n + 1) * sizeof *v);
    char *text = strdup(line);
    if (!v || !text) {
        free(text);
        if (v)
            sup.v = v;
        wref__checker_warn(NULL, "%s:%u: out of memory; suppression ignored", path, lineno);
        return;
    }
    sup.v = v;
    const char *pat = text + (colon - line) + 1;
    bool by_type = !strncmp(pat, "type=", 5);
    v[sup.n++] = (struct entry){kind, by_type, text, by_type ? pat + 5 : pat, 0};
}

void wref__suppress_load(const char *path)
{
    if (sup.loaded)
        return;
    sup.loaded = true;
    FILE *f = fopen(path, "re");
    if (!f) {
        wref__checker_warn(NULL, "cannot read suppressions file %s (%s); no suppressions", path, strerror(errno));
        return;
    }
    char line[1024];
    unsigned lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            wref__checker_warn(NULL, "%s:%u: line longer than %zu bytes; ignored", path, lineno, sizeof line - 2);
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
            continue;
        }
        add_line(path, lineno, line);
    }
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
    if (e->by_type)
        return f->object && !fnmatch(e->pattern, wref__type_name(f->object), 0);
    for (size_t s = 0; s < n; s++)
        for (size_t i = 0; i < stacks[s].n; i++)
            if (frame_matches(&stacks[s].frames[i], e->pattern))
                return true;
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

bool wref__suppress_match_type(enum wref__kind kind, const char *type_name)
{
    for (size_t i = 0; i < sup.n; i++) {
        struct entry *e = &sup.v[i];
        if (e->by_type && (e->kind == -1 || e->kind == (int)kind) && !fnmatch(e->pattern, type_name, 0)) {
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

void wref__suppress_table_json(wref__buf *b)
{
    wref__buf_printf(b, "[");
    const char *sep = "";
    for (size_t i = 0; i < sup.n; i++) {
        const struct entry *e = &sup.v[i];
        if (!e->hits)
            continue;
        wref__buf_printf(b, "%s{\"kind\":\"%s\",\"pattern\":", sep, e->kind < 0 ? "*" : wref__kind_name((enum wref__kind)e->kind));
        wref__buf_json_string(b, e->by_type ? e->pattern - 5 : e->pattern);
        wref__buf_printf(b, ",\"count\":%zu}", e->hits);
        sep = ",";
    }
    wref__buf_printf(b, "]");
}
