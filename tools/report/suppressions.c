/* suppressions.c: --gen-suppressions, the entries that silence each group.
 *
 * Contract: per group, a comment line "# <fingerprint summary> (N occurrence(s))" then one
 * entry, the narrowest that matches: "kind:type=TypeName:frame=function" (the object's type
 * and the top user frame of the main stack, an interpreter frame never: model.c), else its
 * innermost Python frame's function (the checker matches Python frames' functions too),
 * "kind:function" without an object, "kind:type=TypeName" without either frame, or "kind:*"
 * when there is nothing. Glob
 * characters in names are escaped with '\\'. The syntax is the checker's
 * suppressions file (docs/report-tool.md). Duplicate entries are printed once. */
#include "model.h"

#include <stdlib.h>
#include <string.h>

/* s with fnmatch's special characters escaped, in out (cap bytes). U+FFFD, which the report
 * writes for bytes that are not UTF-8, becomes '*': the real name holds other bytes there. */
static const char *glob_literal(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 2 < cap; s++) {
        if (!strncmp(s, "\xef\xbf\xbd", 3)) {
            out[n++] = '*';
            s += 2;
            continue;
        }
        if (strchr("*?[]\\", *s))
            out[n++] = '\\';
        out[n++] = *s;
    }
    out[n] = 0;
    return out;
}

/* Writes the entry for `f` into buf. */
static void entry(const struct finding *f, char *buf, size_t cap)
{
    const struct stack *ms = report_main_stack(f);
    const struct frame *top = report_first_user_frame(ms, 0);
    const struct pyframe *py = top ? NULL : report_first_pyframe(ms, 0);
    const char *function = top ? top->function : py ? py->function : NULL;
    char t[200], fn[200];
    if (function && f->has_object)
        snprintf(buf, cap, "%s:type=%s:frame=%s", f->kind->id, glob_literal(f->type, t, sizeof t),
                 glob_literal(function, fn, sizeof fn));
    else if (function)
        snprintf(buf, cap, "%s:%s", f->kind->id, glob_literal(function, fn, sizeof fn));
    else if (f->has_object)
        snprintf(buf, cap, "%s:type=%s", f->kind->id, f->type);
    else
        snprintf(buf, cap, "%s:*", f->kind->id);
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = '?';   /* one entry, one line */
}

int report_write_suppressions(const struct merged *m, const struct out_opts *o)
{
    char **seen = report_xcalloc(m->ngroups, sizeof *seen);
    size_t nseen = 0;
    for (size_t i = 0; i < m->ngroups; i++) {
        const struct group *g = &m->groups[i];
        char buf[512];
        entry(g->occ[0], buf, sizeof buf);
        int dup = 0;
        for (size_t j = 0; j < nseen && !dup; j++)
            dup = !strcmp(seen[j], buf);
        if (dup)
            continue;
        seen[nseen++] = report_xstrdup(buf);
        char comment[512];
        snprintf(comment, sizeof comment, "%s", g->occ[0]->fp_summary);
        for (char *p = comment; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
        fprintf(o->out, "# %s (%zu occurrence%s)\n%s\n", comment, g->count, g->count == 1 ? "" : "s", buf);
    }
    for (size_t j = 0; j < nseen; j++)
        free(seen[j]);
    free(seen);
    return 0;
}
