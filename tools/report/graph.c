/* graph.c: --format=dot and --format=svg, a picture of the objects alive at exit and of
 * the findings whose objects are not among them.
 *
 * Contract: one cluster per report that has a leak_graph or findings, labelled "<program
 * basename> (pid N)", with a second line "no objects alive at exit" when its leak_graph has
 * no object, or "no leak graph in this report" when it has none (leak_check=0, or a graph
 * cut short). Node "Type#serial\nN bytes at 0xADDR" per object, and "created: <where>" when
 * the report has it (CPython referents): direct leaks filled red, indirect grey, cycle
 * members red with a bold red border; edges holder -> held, bold red when both ends are
 * consecutive in a leak finding's cycle; a weakref object is an ellipse with a dashed edge to
 * its referent labelled "callback pending" when its callback is. A weakref known only by its
 * callback (objects[].weakrefs: CPython's, registered from C) is such an ellipse too,
 * labelled with its type, address, callback and where its finding says it was registered. Objects of another frontend's numbering
 * (objects[].frontend) get node names of their own, so that their serials never meet the
 * wref objects' in one node. Serials referenced but not among the objects get a dashed
 * placeholder node. Every finding of the report that no object covers (no object has its id
 * as finding, and none is its object) is a note "kind #id" with its object and one line per
 * stack, "label: function (file:line)" and its innermost Python frame: at most
 * FINDING_NODES of them per cluster, then one note says how many more. svg pipes the dot
 * text through Graphviz's `dot -Tsvg`; a missing `dot` is a clear error. */
#include "model.h"

#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define FINDING_NODES 50

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static int cmp_pair(const void *a, const void *b)
{
    const long *x = a, *y = b;
    return x[0] != y[0] ? (x[0] > y[0]) - (x[0] < y[0]) : (x[1] > y[1]) - (x[1] < y[1]);
}

/* DOT quoted-string body: backslash and quote escaped, control characters dropped. */
static void dot_escape(FILE *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', out);
        if (*p >= 0x20)
            fputc(*p, out);
    }
}

struct view {
    long *serials;     /* sorted serials of the wref objects (those edges and referents name) */
    size_t nserials;
    long (*cycle)[2];  /* sorted consecutive pairs of every cycle */
    size_t ncycle;
};

static void view_build(struct view *v, const struct report *r)
{
    v->serials = report_xcalloc(r->nnodes, sizeof *v->serials);
    v->nserials = 0;
    for (size_t i = 0; i < r->nnodes; i++)
        if (!r->nodes[i].frontend)
            v->serials[v->nserials++] = r->nodes[i].serial;
    qsort(v->serials, v->nserials, sizeof *v->serials, cmp_long);
    size_t n = 0;
    for (size_t i = 0; i < r->nfindings; i++)
        n += r->findings[i].ncycle;
    v->cycle = report_xcalloc(n, sizeof *v->cycle);
    v->ncycle = 0;
    for (size_t i = 0; i < r->nfindings; i++)
        for (size_t j = 0; j + 1 < r->findings[i].ncycle; j++) {
            v->cycle[v->ncycle][0] = r->findings[i].cycle[j];
            v->cycle[v->ncycle++][1] = r->findings[i].cycle[j + 1];
        }
    qsort(v->cycle, v->ncycle, sizeof *v->cycle, cmp_pair);
}

static int known(const struct view *v, long serial)
{
    return bsearch(&serial, v->serials, v->nserials, sizeof *v->serials, cmp_long) != NULL;
}

static void placeholder(FILE *out, const struct view *v, const struct report *r, long serial)
{
    if (!known(v, serial))
        fprintf(out, "    p%zu_%ld [label=\"#%ld\", style=dashed, fillcolor=white];\n", r->index,
                serial, serial);
}

/* The node name of object n: p<report>_<serial>, or p<report>_<frontend>_<serial>. */
static void node_id(FILE *out, const struct report *r, const struct graph_node *n)
{
    fprintf(out, "p%zu_", r->index);
    if (n->frontend) {
        for (const char *p = n->frontend; *p; p++)
            if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
                fputc(*p, out);
        fputc('_', out);
    }
    fprintf(out, "%ld", n->serial);
}

static const struct finding *finding_by_id(const struct report *r, long id)
{
    for (size_t i = 0; id >= 0 && i < r->nfindings; i++)
        if (r->findings[i].id == id)
            return &r->findings[i];
    return NULL;
}

/* "function (file:line), Python file:line in function" for stack s; 0 when it has neither
 * a user frame nor a Python frame (then nothing is written). */
static int write_site(FILE *out, const struct stack *s)
{
    const struct frame *fr = report_first_user_frame(s, 1);
    if (!fr)
        fr = report_first_user_frame(s, 0);
    const struct pyframe *py = report_first_pyframe(s, 1);
    if (!fr && !py)
        return 0;
    if (fr) {
        dot_escape(out, fr->function);
        if (fr->file && fr->line >= 0) {
            fputs(" (", out);
            dot_escape(out, report_basename(fr->file));
            fprintf(out, ":%ld)", fr->line);
        }
    }
    if (py) {
        fputs(fr ? ", Python " : "Python ", out);
        dot_escape(out, report_basename(py->file));
        fprintf(out, ":%ld in ", py->line);
        dot_escape(out, py->function ? py->function : "?");
    }
    return 1;
}

static void write_node(FILE *out, const struct report *r, const struct graph_node *n)
{
    const char *style = !strcmp(n->role, "cycle")      ? "fillcolor=\"#ff8080\", color=red, penwidth=3"
                        : !strcmp(n->role, "indirect") ? "fillcolor=\"#d0d0d0\""
                                                       : "fillcolor=\"#ff8080\"";
    /* a weakref's type is already called "weakref" or "proxy"; a user subtype gets the word */
    int say = n->is_weakref && strcmp(n->type, "weakref") && strcmp(n->type, "proxy");
    fputs("    ", out);
    node_id(out, r, n);
    fprintf(out, " [label=\"%s", say ? "weakref " : "");
    dot_escape(out, n->type);
    fprintf(out, "#%ld\\n%ld bytes at %s", n->serial, n->size, n->address);
    if (n->created) {
        fputs("\\ncreated: ", out);
        dot_escape(out, n->created);
    }
    fprintf(out, "\", %s%s];\n", style, n->is_weakref ? ", shape=ellipse, style=\"dashed,filled\"" : "");
    /* the weakrefs known only by their callback, each with its dashed edge to n */
    for (size_t k = 0; k < n->nweaks; k++) {
        const struct graph_weak *w = &n->weaks[k];
        fputs("    ", out);
        node_id(out, r, n);
        fprintf(out, "_w%zu [label=\"", k);
        dot_escape(out, w->type ? w->type : "weakref");
        if (w->address)
            fprintf(out, " at %s", w->address);
        fputs("\\ncallback: ", out);
        dot_escape(out, w->callback);
        /* where it was registered: its finding's registration stack */
        const struct finding *f = finding_by_id(r, w->finding);
        for (size_t i = 0; f && i < f->nstacks; i++)
            if (strstr(f->stacks[i].label, "registered")) {
                fputs("\\nregistered: ", out);
                if (!write_site(out, &f->stacks[i]))
                    fputs("?", out);
                break;
            }
        fputs("\", shape=ellipse, style=\"dashed,filled\", fillcolor=white];\n    ", out);
        node_id(out, r, n);
        fprintf(out, "_w%zu -> ", k);
        node_id(out, r, n);
        fputs(" [style=dashed, label=\"callback pending\"];\n", out);
    }
}

/* A finding is covered when an object of the graph is its object or has it as finding. */
static int covered(const struct report *r, const struct finding *f)
{
    for (size_t i = 0; i < r->nnodes; i++) {
        const struct graph_node *n = &r->nodes[i];
        if (n->finding == f->id)
            return 1;
        for (size_t k = 0; k < n->nweaks; k++)
            if (n->weaks[k].finding == f->id)
                return 1;
        if (f->has_object && n->serial == f->serial && !strcmp(n->address, f->object_address) &&
            !strcmp(n->type, f->type))
            return 1;
    }
    return 0;
}

/* Finding f as a note (its lines left-justified: "\l" ends each). */
static void write_finding(FILE *out, const struct report *r, const struct finding *f)
{
    fprintf(out, "    p%zu_f%ld [label=\"", r->index, f->id);
    dot_escape(out, f->kind->id);
    fprintf(out, " #%ld\\l", f->id);
    if (f->has_object) {
        dot_escape(out, f->type);
        fprintf(out, "#%ld, %ld bytes at %s\\l", f->serial, f->size, f->object_address);
    } else {
        fprintf(out, "at %s\\l", f->address);
    }
    for (size_t i = 0; i < f->nstacks; i++) {
        const struct stack *s = &f->stacks[i];
        if (!report_first_user_frame(s, 0) && !report_first_pyframe(s, 1))
            continue;
        dot_escape(out, s->label);
        fputs(": ", out);
        write_site(out, s);
        fputs("\\l", out);
    }
    fprintf(out, "\", shape=note, style=filled, fillcolor=\"%s\"];\n",
            !strcmp(f->severity, "error") ? "#ffd0a0" : "#fff4c0");
}

static void write_cluster(FILE *out, const struct report *r)
{
    struct view v;
    view_build(&v, r);
    fprintf(out, "  subgraph cluster_%zu {\n    label=\"", r->index);
    dot_escape(out, report_basename(r->program));
    fprintf(out, " (pid %ld)%s%s\";\n", r->pid, r->graph_truncated ? " (truncated)" : "",
            !r->has_graph ? "\\nno leak graph in this report" : !r->nnodes ? "\\nno objects alive at exit" : "");
    for (size_t i = 0; i < r->nnodes; i++)
        write_node(out, r, &r->nodes[i]);
    for (size_t i = 0; i < r->nedges; i++) {
        placeholder(out, &v, r, r->edges[i][0]);
        placeholder(out, &v, r, r->edges[i][1]);
        int in_cycle = bsearch(r->edges[i], v.cycle, v.ncycle, sizeof *v.cycle, cmp_pair) != NULL;
        fprintf(out, "    p%zu_%ld -> p%zu_%ld%s;\n", r->index, r->edges[i][0], r->index,
                r->edges[i][1], in_cycle ? " [color=red, penwidth=3, style=bold]" : "");
    }
    for (size_t i = 0; i < r->nnodes; i++) {
        const struct graph_node *n = &r->nodes[i];
        if (!n->is_weakref || n->referent < 0 || n->frontend)
            continue;
        placeholder(out, &v, r, n->referent);
        fprintf(out, "    p%zu_%ld -> p%zu_%ld [style=dashed, label=\"%s\"];\n", r->index,
                n->serial, r->index, n->referent, n->callback ? "callback pending" : "weak");
    }
    size_t drawn = 0, more = 0;
    for (size_t i = 0; i < r->nfindings; i++) {
        if (covered(r, &r->findings[i]))
            continue;
        if (drawn == FINDING_NODES) {
            more++;
            continue;
        }
        write_finding(out, r, &r->findings[i]);
        drawn++;
    }
    if (more)
        fprintf(out, "    p%zu_more [label=\"and %zu more finding(s) (see the text report)\", shape=note, "
                     "style=filled, fillcolor=white];\n", r->index, more);
    fputs("  }\n", out);
    free(v.serials);
    free(v.cycle);
}

int report_write_dot(const struct merged *m, const struct out_opts *o)
{
    fputs("digraph wref_leaks {\n  rankdir=LR;\n"
          "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n",
          o->out);
    for (size_t i = 0; i < m->nreports; i++)
        if (m->reports[i]->has_graph || m->reports[i]->nfindings)
            write_cluster(o->out, m->reports[i]);
    fputs("}\n", o->out);
    return 0;
}

/* Runs `dot -Tsvg` with stdin = `in`, stdout = `out`; returns 0 on success. */
static int run_dot(FILE *in, FILE *out)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fileno(in), 0);
    posix_spawn_file_actions_adddup2(&fa, fileno(out), 1);
    char *argv[] = {"dot", "-Tsvg", NULL};
    pid_t pid;
    int err = posix_spawnp(&pid, "dot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err) {
        report_error("--format=svg runs Graphviz's 'dot', which %s (Debian: apt-get install graphviz)",
                    err == ENOENT ? "is not in PATH" : strerror(err));
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status)) {
        report_error("'dot -Tsvg' failed (status %d)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return -1;
    }
    return 0;
}

int report_write_svg(const struct merged *m, const struct out_opts *o)
{
    FILE *tmp = tmpfile();
    if (!tmp) {
        report_error("cannot create a temporary file: %s", strerror(errno));
        return -1;
    }
    struct out_opts to_tmp = *o;
    to_tmp.out = tmp;
    report_write_dot(m, &to_tmp);
    int rc = fflush(tmp) || fseek(tmp, 0, SEEK_SET) ? -1 : 0;
    fflush(o->out);
    if (!rc)
        rc = run_dot(tmp, o->out);
    fclose(tmp);
    return rc;
}
