/* text.c: --format=text, the human report, grouped by fingerprint.
 *
 * Contract: one block per group, in first-occurrence order: a header line
 * "[i/n] <kind> in f (file) < ...", a line "<severity>: N occurrence(s) in M process(es)", the
 * first occurrence's object, message, the pytest test that was running ("in test: ..."; CPython
 * frontend), every stack ("function file:line (module+offset)", then its Python frames as the
 * checker prints them: "Python frames:" and "#0 file:line in function") and its reference cycle
 * with type names ("reference cycle: Node#1 -> Node#2 -> Node#1"), files relative to
 * --source-root when under it, then one closing "TOTAL:" line. Colours (ANSI) only when
 * o->color. */
#include "model.h"

#include <stdlib.h>
#include <string.h>

struct palette {
    const char *kind_error, *kind_warning, *func, *dim, *reset;
};
static const struct palette plain = {"", "", "", "", ""};
static const struct palette ansi = {"\033[1;31m", "\033[1;35m", "\033[1;34m", "\033[2m", "\033[0m"};

static const char *plural(size_t n)
{
    return n == 1 ? "" : "s";
}

static void print_frame(FILE *out, const struct frame *f, size_t i, const char *root,
                        const struct palette *p)
{
    fprintf(out, "      #%zu %s%s%s", i, p->func, f->function ? f->function : "??", p->reset);
    if (f->inlined)
        fputs(" [inlined]", out);
    if (f->file) {
        const char *rel = report_relative(f->file, root);
        fprintf(out, " %s", rel ? rel : f->file);
        if (f->line > 0)
            fprintf(out, ":%ld", f->line);
    }
    if (f->module)
        fprintf(out, " %s(%s+%s)%s", p->dim, report_basename(f->module),
                f->offset ? f->offset : f->pc, p->reset);
    else
        fprintf(out, " %s(%s)%s", p->dim, f->pc, p->reset);
    fputc('\n', out);
}

/* The stack's Python frames after its C frames, as the checker's text report has them:
 * "Python frames:" then "#0 file:line in function", innermost first (file relative to
 * --source-root when under it, ":line" left out when null). */
static void print_pyframes(FILE *out, const struct finding *f, const struct stack *s, const char *root,
                           const struct palette *p)
{
    if (!s->npyframes)
        return;
    fputs("      Python frames:\n", out);
    for (size_t i = 0; i < s->npyframes; i++) {
        const struct pyframe *py = &s->pyframes[i];
        char *path = root ? report_pyframe_path(f, py) : NULL;
        const char *rel = report_relative(path, root);
        fprintf(out, "        #%zu %s", i, rel ? rel : py->file);
        if (py->line > 0)
            fprintf(out, ":%ld", py->line);
        fprintf(out, " in %s%s%s\n", p->func, py->function, p->reset);
        free(path);
    }
}

static void print_stack(FILE *out, const struct finding *f, const struct stack *s, const char *root,
                        const struct palette *p)
{
    if (s->thread >= 0)
        fprintf(out, "    %s, thread T%ld:\n", s->label, s->thread);
    else
        fprintf(out, "    %s:\n", s->label);
    for (size_t i = 0; i < s->nframes; i++)
        print_frame(out, &s->frames[i], i, root, p);
    print_pyframes(out, f, s, root, p);
}

static void print_group(FILE *out, const struct group *g, size_t index, size_t n,
                        const char *root, const struct palette *p)
{
    const struct finding *f = g->occ[0];
    int warning = !strcmp(f->severity, "warning");
    fprintf(out, "[%zu/%zu] %s%s%s%s\n", index, n, warning ? p->kind_warning : p->kind_error,
            f->kind->id, p->reset, f->fp_summary + strlen(f->kind->id));
    fprintf(out, "    %s: %zu occurrence%s in %zu process%s; fingerprint %s\n", f->severity,
            g->count, plural(g->count), g->nprocesses, g->nprocesses == 1 ? "" : "es",
            f->fingerprint);
    fprintf(out, "    first: finding %ld of %s (pid %ld) in %s\n", f->id,
            report_basename(f->report->program), f->report->pid, f->report->name);
    if (f->has_object)
        fprintf(out, "    on %s#%ld at %s (%ld-byte object)\n", f->type, f->serial,
                f->object_address, f->size);
    fprintf(out, "    %s\n", f->message);
    if (f->test)
        fprintf(out, "    in test: %s\n", f->test);
    for (size_t i = 0; i < f->nstacks; i++)
        print_stack(out, f, &f->stacks[i], root, p);
    char *cycle = report_cycle_text(f);
    if (cycle)
        fprintf(out, "    reference cycle: %s\n", cycle);
    free(cycle);
}

char *report_group_text(const struct merged *m, const struct group *g)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out) {
        report_error("out of memory");
        exit(REPORT_EXIT_ERROR);
    }
    print_group(out, g, (size_t)(g - m->groups) + 1, m->ngroups, NULL, &plain);
    fclose(out);
    return buf;
}

static void print_totals(FILE *out, const struct merged *m)
{
    fprintf(out, "TOTAL: %zu distinct finding%s (%zu occurrence%s) in %zu report%s", m->ngroups,
            plural(m->ngroups), m->noccurrences, plural(m->noccurrences), m->nreports,
            plural(m->nreports));
    const char *sep = ": ";
    for (size_t k = 0; k < report_nkinds; k++) {
        size_t n = 0;
        for (size_t i = 0; i < m->ngroups; i++)
            n += m->groups[i].occ[0]->kind == &report_kinds[k];
        if (n) {
            fprintf(out, "%s%zu %s", sep, n, report_kinds[k].id);
            sep = ", ";
        }
    }
    fputc('\n', out);
}

int report_write_text(const struct merged *m, const struct out_opts *o)
{
    const struct palette *p = o->color ? &ansi : &plain;
    for (size_t i = 0; i < m->nreports; i++)
        if (!m->reports[i]->complete)
            fprintf(o->out, "note: %s is incomplete (the process crashed or is still running)\n",
                    m->reports[i]->name);
    for (size_t i = 0; i < m->ngroups; i++) {
        print_group(o->out, &m->groups[i], i + 1, m->ngroups, o->source_root, p);
        fputc('\n', o->out);
    }
    print_totals(o->out, m);
    return 0;
}
