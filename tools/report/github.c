/* github.c: --format=github, GitHub Actions workflow commands (annotations).
 *
 * Contract: one line per group, "::error file=F,line=L,title=wref-check KIND::MESSAGE"
 * ("::warning" for severity warning). File and line are the first user frame with a file and
 * line of the main stack, else (a CPython finding without such a C frame) the innermost Python
 * frame with a file and line, its relative path joined to the process's cwd; the path is
 * normalized (no "." or ".." segment) and relative to --source-root when under it; both are
 * left out when there is no such frame. The message is the fingerprint summary and the
 * finding's message, then "; reference cycle: Node#1 -> Node#2 -> Node#1" for a leaked cycle,
 * "; Python: file:line in function" (the main stack's innermost Python frame) and "; in test:
 * NAME" (pytest) when the finding has them, then the counts. Escaping is GitHub's: in the
 * message % \r \n become %25 %0D %0A; in property values also : and , become %3A and %2C. */
#include "model.h"

#include <stdlib.h>
#include <string.h>

static void escape(FILE *out, const char *s, int property)
{
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '%': fputs("%25", out); break;
        case '\r': fputs("%0D", out); break;
        case '\n': fputs("%0A", out); break;
        case ':': fputs(property ? "%3A" : ":", out); break;
        case ',': fputs(property ? "%2C" : ",", out); break;
        default: fputc(*p, out);
        }
    }
}

static void annotate(FILE *out, const struct group *g, const char *root)
{
    const struct finding *f = g->occ[0];
    const struct stack *ms = report_main_stack(f);
    const struct frame *at = report_first_user_frame(ms, 1);
    const struct pyframe *py = report_first_pyframe(ms, 1);
    fprintf(out, "::%s ", strcmp(f->severity, "warning") ? "error" : "warning");
    if (at || py) {
        /* "src/x/../y.c" is the file src/y.c; a Python file is relative to the process's cwd */
        char *norm = at ? report_normalize(at->file) : report_pyframe_path(f, py);
        const char *rel = report_relative(norm, root);
        fputs("file=", out);
        escape(out, rel ? rel : norm, 1);
        fprintf(out, ",line=%ld,", at ? at->line : py->line);
        free(norm);
    }
    fputs("title=", out);
    escape(out, "wref-check ", 1);
    escape(out, f->kind->id, 1);
    fputs("::", out);
    escape(out, f->fp_summary, 0);
    fputs(": ", out);
    escape(out, f->message, 0);
    char *cycle = report_cycle_text(f);
    if (cycle) {
        fputs("; reference cycle: ", out);
        escape(out, cycle, 0);
        free(cycle);
    }
    if (ms && ms->npyframes) {
        const struct pyframe *in = &ms->pyframes[0];
        fputs("; Python: ", out);
        escape(out, in->file, 0);
        if (in->line > 0)
            fprintf(out, ":%ld", in->line);
        fputs(" in ", out);
        escape(out, in->function, 0);
    }
    if (f->test) {
        fputs("; in test: ", out);
        escape(out, f->test, 0);
    }
    fprintf(out, " (%zu occurrence%s in %zu process%s)\n", g->count, g->count == 1 ? "" : "s",
            g->nprocesses, g->nprocesses == 1 ? "" : "es");
}

int report_write_github(const struct merged *m, const struct out_opts *o)
{
    for (size_t i = 0; i < m->ngroups; i++)
        annotate(o->out, &m->groups[i], o->source_root);
    return 0;
}
