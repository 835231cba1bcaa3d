/* suppressions.c: --gen-suppressions, the entries that silence each group.
 *
 * Contract: per group, a comment line "# <fingerprint summary> (N occurrence(s))" then one
 * entry "kind:function" (the top user frame of the main stack), or "kind:type=TypeName" when
 * there is no user frame, or "kind:*" when there is neither. The syntax is the checker's
 * suppressions file (docs/report-tool.md). Duplicate entries are printed once. */
#include "model.h"

#include <stdlib.h>
#include <string.h>

/* Writes the entry for `f` into buf. */
static void entry(const struct finding *f, char *buf, size_t cap)
{
    const struct frame *top = report_first_user_frame(report_main_stack(f), 0);
    if (top)
        snprintf(buf, cap, "%s:%s", f->kind->id, top->function);
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
        fprintf(o->out, "# %s (%zu occurrence%s)\n%s\n", comment, g->nocc, g->nocc == 1 ? "" : "s", buf);
    }
    for (size_t j = 0; j < nseen; j++)
        free(seen[j]);
    free(seen);
    return 0;
}
