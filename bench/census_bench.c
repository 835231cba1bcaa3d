/* census_bench.c: how long the checker's leak census takes for a big leak.
 *
 *   census_bench SHAPE N [ROUNDS]
 *
 * Builds N leaked objects in one SHAPE, then times wref_check_leaks() (the census that also
 * runs at exit) and prints one line "census SHAPE N SECONDS CPU_SECONDS" (wall-clock time and
 * this thread's CPU time, which a loaded machine disturbs less). SHAPE is one of
 *   chain   one root owning a chain of N-1 objects (one direct leak, N-1 indirect);
 *   tree    a wide tree: a root with up to 1000 children, each with up to 1000 children, ...;
 *   roots   N separate objects owning nothing (N direct leaks, one finding);
 *   cycles  N/2 separate two-object reference cycles (N/2 findings).
 * With ROUNDS > 1 the same shape is built again ROUNDS times (fresh objects, since a reported
 * object is not reported again) and the best times are printed.
 *
 * Linked against libwref-check; the findings go wherever WREF_CHECK_OPTIONS sends them (the
 * CI test and scripts/bench.sh send them to a file). tests/census/check_census.py runs it at
 * N and 4N and checks that the census is linear. */
#include <wref.h>
#include <wref/check.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct node {
    wref_object ob_base;
    wref_object **kids;   /* strong */
    size_t n_kids;
};

static void node_destroy(wref_object *self)
{
    struct node *n = (struct node *)self;
    for (size_t i = 0; i < n->n_kids; i++)
        wref_decref(n->kids[i]);
    free(n->kids);
}

static int node_traverse(wref_object *self, wref_visit_fn visit, void *arg)
{
    struct node *n = (struct node *)self;
    for (size_t i = 0; i < n->n_kids; i++) {
        int r = visit(n->kids[i], arg);
        if (r)
            return r;
    }
    return 0;
}

static const wref_type node_type = {.name = "Node", .size = sizeof(struct node),
                                    .destroy = node_destroy, .traverse = node_traverse};

static wref_object *make(void)
{
    wref_object *o = wref_new(&node_type);
    if (!o) {
        fprintf(stderr, "census_bench: out of memory\n");
        exit(2);
    }
    return o;
}

/* parent takes the reference `kid` (its capacity is `cap`) */
static void adopt(wref_object *parent, wref_object *kid, size_t cap)
{
    struct node *p = (struct node *)parent;
    if (!p->kids) {
        p->kids = malloc(cap * sizeof *p->kids);
        if (!p->kids) {
            fprintf(stderr, "census_bench: out of memory\n");
            exit(2);
        }
    }
    p->kids[p->n_kids++] = kid;
}

static void build_chain(size_t n)
{
    wref_object *root = make(), *last = root;
    for (size_t i = 1; i < n; i++) {
        wref_object *o = make();
        adopt(last, o, 1);
        last = o;
    }
    (void)root;   /* leaked */
}

#define FANOUT 1000

static void build_tree(size_t n)
{
    /* breadth first: node i's children are FANOUT*i+1 .. FANOUT*i+FANOUT */
    wref_object **all = malloc(n * sizeof *all);
    if (!all)
        exit(2);
    for (size_t i = 0; i < n; i++) {
        all[i] = make();
        if (i)
            adopt(all[(i - 1) / FANOUT], all[i], FANOUT);
    }
    free(all);   /* all[0] is leaked, the rest are owned */
}

static void build_roots(size_t n)
{
    for (size_t i = 0; i < n; i++)
        (void)make();
}

static void build_cycles(size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2) {
        wref_object *a = make(), *b = make();
        adopt(a, b, 1);
        wref_incref(a);
        adopt(b, a, 1);
        wref_decref(a);   /* each still holds the other */
    }
}

static double now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: census_bench chain|tree|roots|cycles N [ROUNDS]\n");
        return 2;
    }
    const char *shape = argv[1];
    size_t n = strtoull(argv[2], NULL, 10);
    int rounds = argc > 3 ? atoi(argv[3]) : 1;
    void (*build)(size_t) = !strcmp(shape, "chain") ? build_chain
                          : !strcmp(shape, "tree")  ? build_tree
                          : !strcmp(shape, "roots") ? build_roots
                          : !strcmp(shape, "cycles") ? build_cycles : NULL;
    if (!build || n < 2 || rounds < 1) {
        fprintf(stderr, "census_bench: bad arguments\n");
        return 2;
    }
    if (!wref_check_active()) {
        fprintf(stderr, "census_bench: the checker is not active\n");
        return 2;
    }
    double best = 1e300, best_cpu = 1e300;
    for (int r = 0; r < rounds; r++) {
        build(n);
        double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);
        size_t found = wref_check_leaks();
        double t = now(CLOCK_MONOTONIC) - t0, c = now(CLOCK_THREAD_CPUTIME_ID) - c0;
        if (!found) {
            fprintf(stderr, "census_bench: the census found nothing\n");
            return 1;
        }
        if (t < best)
            best = t;
        if (c < best_cpu)
            best_cpu = c;
    }
    printf("census %s %zu %.4f %.4f\n", shape, n, best, best_cpu);
    return 0;
}
