/* graph.c: --format=dot and --format=svg, a picture of the objects alive at exit.
 *
 * Contract: one cluster per report that has a leak_graph, labelled "<program basename>
 * (pid N)"; node "Type#serial\nN bytes" per object: direct leaks filled red, indirect grey,
 * cycle members red with a bold red border; edges holder -> held, bold red when both ends
 * are consecutive in a leak finding's cycle; a weakref object is an ellipse with a dashed
 * edge to its referent labelled "callback pending" when its callback is. Serials referenced
 * but not among the objects get a dashed placeholder node. svg pipes the dot text through
 * Graphviz's `dot -Tsvg`; a missing `dot` is a clear error. */
#include "model.h"

#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

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
    long *serials;     /* sorted serials of the objects */
    long (*cycle)[2];  /* sorted consecutive pairs of every cycle */
    size_t ncycle;
};

static void view_build(struct view *v, const struct report *r)
{
    v->serials = report_xcalloc(r->nnodes, sizeof *v->serials);
    for (size_t i = 0; i < r->nnodes; i++)
        v->serials[i] = r->nodes[i].serial;
    qsort(v->serials, r->nnodes, sizeof *v->serials, cmp_long);
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

static int known(const struct view *v, const struct report *r, long serial)
{
    return bsearch(&serial, v->serials, r->nnodes, sizeof *v->serials, cmp_long) != NULL;
}

static void placeholder(FILE *out, const struct view *v, const struct report *r, long serial)
{
    if (!known(v, r, serial))
        fprintf(out, "    p%zu_%ld [label=\"#%ld\", style=dashed, fillcolor=white];\n", r->index,
                serial, serial);
}

static void write_node(FILE *out, const struct report *r, const struct graph_node *n)
{
    const char *style = !strcmp(n->role, "cycle")      ? "fillcolor=\"#ff8080\", color=red, penwidth=3"
                        : !strcmp(n->role, "indirect") ? "fillcolor=\"#d0d0d0\""
                                                       : "fillcolor=\"#ff8080\"";
    /* a weakref's type is already called "weakref" or "proxy"; a user subtype gets the word */
    int say = n->is_weakref && strcmp(n->type, "weakref") && strcmp(n->type, "proxy");
    fprintf(out, "    p%zu_%ld [label=\"%s", r->index, n->serial, say ? "weakref " : "");
    dot_escape(out, n->type);
    fprintf(out, "#%ld\\n%ld bytes\", %s%s];\n", n->serial, n->size, style,
            n->is_weakref ? ", shape=ellipse, style=\"dashed,filled\"" : "");
}

static void write_cluster(FILE *out, const struct report *r)
{
    struct view v;
    view_build(&v, r);
    fprintf(out, "  subgraph cluster_%zu {\n    label=\"", r->index);
    dot_escape(out, report_basename(r->program));
    fprintf(out, " (pid %ld)%s\";\n", r->pid, r->graph_truncated ? " (truncated)" : "");
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
        if (!n->is_weakref || n->referent < 0)
            continue;
        placeholder(out, &v, r, n->referent);
        fprintf(out, "    p%zu_%ld -> p%zu_%ld [style=dashed, label=\"%s\"];\n", r->index,
                n->serial, r->index, n->referent, n->callback ? "callback pending" : "weak");
    }
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
        if (m->reports[i]->has_graph)
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
