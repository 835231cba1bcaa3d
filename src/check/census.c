/* census.c: findings known only at exit (or at wref_check_leaks): objects still alive
 * (leaks: direct, indirect, cycles) and weakref callbacks whose referent is still alive
 * (callback-never-ran).
 *
 * The object graph comes from the types' traverse functions, never from scanning memory:
 * direct leaks are the roots of the leaked graph's condensation (strongly connected
 * components nobody else leaked holds), indirect leaks are reachable from them, and a root
 * component with more than one member (or a self-reference) is a reference cycle.
 * Snapshots are taken under registry locks and processed with no lock held, because
 * traverse is user code and weakref fields need the runtime's stripe locks. */
#include "checker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
    wref__rec_copy rec;
    size_t first_edge, n_edges;   /* CSR slice of edges[] */
    size_t scc;                    /* component index */
    size_t owner;                  /* root component that reaches it; SIZE_MAX: none yet */
    size_t ind_count, ind_bytes;   /* for a direct root: what only it reaches */
    size_t finding;                /* id of the leak finding that covers it (0: none) */
    uint8_t role;                  /* enum wref__leak_shape */
};

struct graph {
    struct node *nodes;
    size_t n, cap;
    size_t *slots;        /* open-addressing map addr -> node index + 1 */
    size_t n_slots;
    size_t *edges;        /* child node indices */
    size_t n_edges, edges_cap;
    bool oom;
};

static void *grow(void *p, size_t *cap, size_t need, size_t elem, bool *oom)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap * 2 : 256;
    while (c < need)
        c *= 2;
    void *q = realloc(p, c * elem);
    if (!q) {
        *oom = true;
        return p;
    }
    *cap = c;
    return q;
}

static void collect(wref__rec *r, void *arg)
{
    struct graph *g = arg;
    if (r->state != WREF__ALIVE || (r->reported & WREF__REPORTED_LEAK))
        return;
    g->nodes = grow(g->nodes, &g->cap, g->n + 1, sizeof *g->nodes, &g->oom);
    if (g->n + 1 > g->cap)
        return;
    r->reported |= WREF__REPORTED_LEAK;
    g->nodes[g->n++] = (struct node){.rec = wref__rec_snapshot(r), .owner = SIZE_MAX};
}

static size_t slot_hash(uintptr_t a, size_t mask)
{
    return (size_t)(((uint64_t)(a >> 4) * 0x9E3779B97F4A7C15ull) >> 20) & mask;
}

static size_t find_node(const struct graph *g, uintptr_t a)
{
    size_t mask = g->n_slots - 1;
    for (size_t i = slot_hash(a, mask);; i = (i + 1) & mask) {
        size_t v = g->slots[i];
        if (!v)
            return SIZE_MAX;
        if (g->nodes[v - 1].rec.addr == a)
            return v - 1;
    }
}

struct visit_ctx {
    struct graph *g;
};

static int visit_child(wref_object *child, void *arg)
{
    struct graph *g = ((struct visit_ctx *)arg)->g;
    size_t j = child ? find_node(g, (uintptr_t)child) : SIZE_MAX;
    if (j == SIZE_MAX)
        return 0;
    g->edges = grow(g->edges, &g->edges_cap, g->n_edges + 1, sizeof *g->edges, &g->oom);
    if (g->n_edges < g->edges_cap)
        g->edges[g->n_edges++] = j;
    return 0;
}

static void build_edges(struct graph *g)
{
    g->n_slots = 16;
    while (g->n_slots < g->n * 2)
        g->n_slots *= 2;
    g->slots = calloc(g->n_slots, sizeof *g->slots);
    if (!g->slots) {
        g->oom = true;
        return;
    }
    for (size_t i = 0; i < g->n; i++) {
        size_t mask = g->n_slots - 1, s = slot_hash(g->nodes[i].rec.addr, mask);
        while (g->slots[s])
            s = (s + 1) & mask;
        g->slots[s] = i + 1;
    }
    struct visit_ctx ctx = {g};
    for (size_t i = 0; i < g->n; i++) {
        struct node *nd = &g->nodes[i];
        nd->first_edge = g->n_edges;
        const wref_type *t = nd->rec.type;
        if (t && t->traverse)
            t->traverse((wref_object *)nd->rec.addr, visit_child, &ctx);
        nd->n_edges = g->n_edges - nd->first_edge;
    }
}

/* Tarjan's algorithm, iterative (leaked graphs can be long chains). */
static size_t tarjan(struct graph *g)
{
    size_t n = g->n, n_scc = 0, counter = 0, sp = 0, cs = 0;
    size_t *index = malloc(n * sizeof *index), *low = malloc(n * sizeof *low);
    size_t *stack = malloc(n * sizeof *stack), *call = malloc(n * sizeof *call), *pos = malloc(n * sizeof *pos);
    bool *on = calloc(n ? n : 1, sizeof *on);
    if (!index || !low || !stack || !call || !pos || !on) {
        g->oom = true;
        for (size_t i = 0; i < n; i++)
            g->nodes[i].scc = i;   /* every object its own component */
        n_scc = n;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        index[i] = SIZE_MAX;
    for (size_t root = 0; root < n; root++) {
        if (index[root] != SIZE_MAX)
            continue;
        call[cs++] = root;
        index[root] = low[root] = counter++;
        pos[root] = 0;
        stack[sp++] = root;
        on[root] = true;
        while (cs) {
            size_t v = call[cs - 1];
            struct node *nv = &g->nodes[v];
            if (pos[v] < nv->n_edges) {
                size_t w = g->edges[nv->first_edge + pos[v]++];
                if (index[w] == SIZE_MAX) {
                    index[w] = low[w] = counter++;
                    pos[w] = 0;
                    stack[sp++] = w;
                    on[w] = true;
                    call[cs++] = w;
                } else if (on[w] && index[w] < low[v]) {
                    low[v] = index[w];
                }
                continue;
            }
            if (low[v] == index[v]) {
                size_t w;
                do {
                    w = stack[--sp];
                    on[w] = false;
                    g->nodes[w].scc = n_scc;
                } while (w != v);
                n_scc++;
            }
            cs--;
            if (cs) {
                size_t parent = call[cs - 1];
                if (low[v] < low[parent])
                    low[parent] = low[v];
            }
        }
    }
out:
    free(index);
    free(low);
    free(stack);
    free(call);
    free(pos);
    free(on);
    return n_scc;
}

/* ---- findings ---------------------------------------------------------------------------- */

static size_t report_callbacks(struct graph *g)
{
    size_t found = 0;
    for (size_t i = 0; i < g->n; i++) {
        const wref__rec_copy *r = &g->nodes[i].rec;
        if (!wref__is_weakref_type(r->type))
            continue;
        wref__weakref *w = (wref__weakref *)r->addr;
        wref__lock(w->stripe);
        wref_object *cb = w->callback, *referent = w->referent;
        wref__unlock(w->stripe);
        if (!cb || !referent)
            continue;
        size_t j = find_node(g, (uintptr_t)referent);
        const wref__rec_copy *ref = j == SIZE_MAX ? NULL : &g->nodes[j].rec;
        char what[300];
        snprintf(what, sizeof what,
                 "a weakref callback never ran: its referent %s#%llu is still alive at exit "
                 "(usually because the referent leaked)",
                 ref ? wref__type_name(ref) : "?", ref ? (unsigned long long)ref->serial : 0ull);
        wref__finding f = {.kind = WREF__K_CALLBACK_NEVER_RAN, .what = what, .object = ref,
                           .address = (uintptr_t)referent, .where = 0};
        f.history[f.n_history++] = (wref__labelled){"callback registered (weakref created)", r->st_created, r->tno_created};
        if (ref)
            f.history[f.n_history++] = (wref__labelled){"referent created", ref->st_created, ref->tno_created};
        wref__report(&f);
        found++;
    }
    return found;
}

/* Marks every node reachable from component `root` (not yet owned) as owned by it;
 * returns how many and their bytes. */
static void claim(struct graph *g, size_t root_scc, size_t *count, size_t *bytes, size_t *queue)
{
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < g->n; i++)
        if (g->nodes[i].scc == root_scc)
            queue[tail++] = i;
    while (head < tail) {
        struct node *nv = &g->nodes[queue[head++]];
        for (size_t e = 0; e < nv->n_edges; e++) {
            size_t w = g->edges[nv->first_edge + e];
            struct node *nw = &g->nodes[w];
            if (nw->scc == root_scc || nw->owner != SIZE_MAX)
                continue;
            nw->owner = root_scc;
            (*count)++;
            *bytes += nw->rec.size;
            queue[tail++] = w;
        }
    }
}

/* Text "A#1 -> B#2 -> A#1": a cycle through the component's first member; its serials in
 * serials[] (at most 18: the start, 16 more, the start again), their number in *n_serials. */
static void cycle_path(struct graph *g, size_t start, wref__buf *b, size_t *prev, uint64_t *serials,
                       size_t *n_serials)
{
    size_t scc = g->nodes[start].scc;
    for (size_t i = 0; i < g->n; i++)
        prev[i] = SIZE_MAX;
    /* BFS inside the component from start until an edge returns to start */
    size_t *queue = malloc(g->n * sizeof *queue), head = 0, tail = 0, last = SIZE_MAX;
    *n_serials = 0;
    if (!queue) {
        g->oom = true;
        return;
    }
    queue[tail++] = start;
    while (head < tail && last == SIZE_MAX) {
        size_t v = queue[head++];
        struct node *nv = &g->nodes[v];
        for (size_t e = 0; e < nv->n_edges; e++) {
            size_t w = g->edges[nv->first_edge + e];
            if (g->nodes[w].scc != scc)
                continue;
            if (w == start) {
                last = v;
                break;
            }
            if (prev[w] == SIZE_MAX) {
                prev[w] = v;
                queue[tail++] = w;
            }
        }
    }
    size_t path[17], n = 0;
    for (size_t v = last; v != SIZE_MAX && v != start && n < 16; v = prev[v])
        path[n++] = v;
    wref__buf_printf(b, "  reference cycle: %s#%llu", wref__type_name(&g->nodes[start].rec),
                     (unsigned long long)g->nodes[start].rec.serial);
    *n_serials = 0;
    serials[(*n_serials)++] = g->nodes[start].rec.serial;
    while (n) {
        const wref__rec_copy *r = &g->nodes[path[--n]].rec;
        wref__buf_printf(b, " -> %s#%llu", wref__type_name(r), (unsigned long long)r->serial);
        serials[(*n_serials)++] = r->serial;
    }
    serials[(*n_serials)++] = g->nodes[start].rec.serial;
    wref__buf_printf(b, " -> %s#%llu\n", wref__type_name(&g->nodes[start].rec),
                     (unsigned long long)g->nodes[start].rec.serial);
    free(queue);
}

struct group {
    wref__stack_id stack;
    const wref_type *type;
    bool direct;
    size_t first;            /* a member, for the header */
    size_t count, bytes, indirect_count, indirect_bytes;
    size_t finding;          /* id of its finding */
    size_t orig;             /* index before sorting (node -> group map in scratch[]) */
};

static int group_cmp(const void *a, const void *b)
{
    const struct group *x = a, *y = b;
    if (x->direct != y->direct)
        return x->direct ? -1 : 1;
    return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

static size_t report_leaks(struct graph *g, size_t n_scc)
{
    size_t found = 0;
    bool *has_in = calloc(n_scc ? n_scc : 1, sizeof *has_in);
    size_t *scc_size = calloc(n_scc ? n_scc : 1, sizeof *scc_size);
    bool *self_loop = calloc(n_scc ? n_scc : 1, sizeof *self_loop);
    size_t *scratch = malloc((g->n ? g->n : 1) * sizeof *scratch);
    struct group *groups = calloc(g->n ? g->n : 1, sizeof *groups);
    if (!has_in || !scc_size || !self_loop || !scratch || !groups) {
        g->oom = true;
        goto out;
    }
    for (size_t v = 0; v < g->n; v++) {
        struct node *nv = &g->nodes[v];
        scc_size[nv->scc]++;
        for (size_t e = 0; e < nv->n_edges; e++) {
            size_t w = g->edges[nv->first_edge + e];
            if (g->nodes[w].scc != nv->scc)
                has_in[g->nodes[w].scc] = true;
            else if (w == v)
                self_loop[nv->scc] = true;
        }
    }

    /* Cycles first: one finding each, naming the members from the oldest (lowest serial),
     * so the report does not depend on the registry's hash order. */
    size_t *oldest = malloc((n_scc ? n_scc : 1) * sizeof *oldest);
    if (!oldest) {
        g->oom = true;
        goto out;
    }
    for (size_t i = 0; i < n_scc; i++)
        oldest[i] = SIZE_MAX;
    for (size_t v = 0; v < g->n; v++) {
        size_t s = g->nodes[v].scc;
        if (oldest[s] == SIZE_MAX || g->nodes[v].rec.serial < g->nodes[oldest[s]].rec.serial)
            oldest[s] = v;
    }
    for (size_t s = 0; s < n_scc; s++) {
        size_t v = oldest[s];
        if (v == SIZE_MAX || has_in[s] || (scc_size[s] < 2 && !self_loop[s]))
            continue;
        has_in[s] = true;   /* reported: not again for the other members */
        size_t ind = 0, ind_bytes = 0, bytes = 0;
        claim(g, s, &ind, &ind_bytes, scratch);
        for (size_t i = 0; i < g->n; i++)
            if (g->nodes[i].scc == s) {
                bytes += g->nodes[i].rec.size;
                g->nodes[i].owner = s;
            }
        wref__buf b = {0};
        wref__buf_printf(&b, "a reference cycle of %zu object(s), %zu byte(s), is alive at exit; "
                         "%zu more object(s) (%zu byte(s)) are reachable only from it (indirect)",
                         scc_size[s], bytes, ind, ind_bytes);
        wref__buf ex = {0};
        uint64_t serials[18];
        wref__leak_info li = {WREF__LEAK_CYCLE, scc_size[s], bytes, ind, ind_bytes, serials, 0};
        cycle_path(g, v, &ex, scratch, serials, &li.cycle_len);
        wref__finding f = {.kind = WREF__K_LEAK, .what = b.data, .object = &g->nodes[v].rec,
                           .address = g->nodes[v].rec.addr, .where = 0, .extra = ex.data, .leak = &li};
        f.history[f.n_history++] = (wref__labelled){"created", g->nodes[v].rec.st_created, g->nodes[v].rec.tno_created};
        size_t id = wref__report(&f);
        for (size_t i = 0; i < g->n; i++)
            if (g->nodes[i].scc == s) {
                g->nodes[i].finding = id;
                g->nodes[i].role = WREF__LEAK_CYCLE;
            }
        wref__buf_free(&b);
        wref__buf_free(&ex);
        found++;
    }

    free(oldest);

    /* Other roots own what they reach; the rest is grouped by creation stack and type. */
    for (size_t v = 0; v < g->n; v++) {
        size_t s = g->nodes[v].scc;
        if (!has_in[s] && g->nodes[v].owner == SIZE_MAX) {
            g->nodes[v].owner = s;
            size_t ind = 0, ind_bytes = 0;
            claim(g, s, &ind, &ind_bytes, scratch);
            g->nodes[v].ind_count = ind;
            g->nodes[v].ind_bytes = ind_bytes;
        }
    }
    size_t n_groups = 0;
    for (size_t v = 0; v < g->n; v++) {
        struct node *nv = &g->nodes[v];
        size_t s = nv->scc;
        bool in_cycle = has_in[s] && nv->owner == s;
        scratch[v] = SIZE_MAX;
        if (in_cycle)
            continue;
        bool direct = !has_in[s];   /* otherwise indirect: counted with its owner too */
        size_t k;
        for (k = 0; k < n_groups; k++)
            if (groups[k].stack == nv->rec.st_created && groups[k].type == nv->rec.type && groups[k].direct == direct)
                break;
        if (k == n_groups)
            groups[n_groups++] = (struct group){nv->rec.st_created, nv->rec.type, direct, v, 0, 0, 0, 0, 0, k};
        scratch[v] = k;
        nv->role = direct ? WREF__LEAK_DIRECT : WREF__LEAK_INDIRECT;
        groups[k].count++;
        groups[k].bytes += nv->rec.size;
        if (direct) {
            groups[k].indirect_count += nv->ind_count;
            groups[k].indirect_bytes += nv->ind_bytes;
        }
    }
    qsort(groups, n_groups, sizeof *groups, group_cmp);
    for (size_t k = 0; k < n_groups; k++) {
        struct group *gr = &groups[k];
        const wref__rec_copy *r = &g->nodes[gr->first].rec;
        wref__buf b = {0};
        if (gr->direct)
            wref__buf_printf(&b, "direct leak of %zu byte(s) in %zu %s object(s) alive at exit; %zu more object(s) "
                             "(%zu byte(s)) are reachable only from them (indirect)",
                             gr->bytes, gr->count, wref__type_name(r), gr->indirect_count, gr->indirect_bytes);
        else
            wref__buf_printf(&b, "indirect leak of %zu byte(s) in %zu %s object(s), reachable only from other leaked objects",
                             gr->bytes, gr->count, wref__type_name(r));
        wref__leak_info li = {gr->direct ? WREF__LEAK_DIRECT : WREF__LEAK_INDIRECT, gr->count, gr->bytes,
                              gr->direct ? gr->indirect_count : 0, gr->direct ? gr->indirect_bytes : 0, NULL, 0};
        wref__finding f = {.kind = WREF__K_LEAK, .what = b.data, .object = r, .address = r->addr, .where = 0,
                           .leak = &li};
        f.history[f.n_history++] = (wref__labelled){"created", r->st_created, r->tno_created};
        gr->finding = wref__report(&f);
        wref__buf_free(&b);
        found++;
    }
    size_t *sorted_pos = malloc((n_groups ? n_groups : 1) * sizeof *sorted_pos);
    if (!sorted_pos)
        g->oom = true;   /* the leak graph then names no finding */
    if (sorted_pos) {
        for (size_t k = 0; k < n_groups; k++)
            sorted_pos[groups[k].orig] = k;
        for (size_t v = 0; v < g->n; v++)
            if (scratch[v] != SIZE_MAX)
                g->nodes[v].finding = groups[sorted_pos[scratch[v]]].finding;
        free(sorted_pos);
    }
out:
    free(has_in);
    free(scc_size);
    free(self_loop);
    free(scratch);
    free(groups);
    return found;
}

/* ---- the leak graph, for pictures (JSON: docs/report-schema.json#/$defs/leak_graph) ------------ */

#define GRAPH_MAX_OBJECTS 10000

static void graph_json(struct graph *g, wref__buf *b)
{
    static const char *const roles[] = {"direct", "indirect", "cycle"};
    size_t n = g->n < GRAPH_MAX_OBJECTS ? g->n : GRAPH_MAX_OBJECTS;
    wref__buf_printf(b, "{\"objects\":[");
    for (size_t i = 0; i < n; i++) {
        const struct node *nd = &g->nodes[i];
        wref__buf_printf(b, "%s\n{\"serial\":%llu,\"type\":", i ? "," : "", (unsigned long long)nd->rec.serial);
        wref__buf_json_string(b, wref__type_name(&nd->rec));
        wref__buf_printf(b, ",\"size\":%u,\"address\":\"0x%lx\",\"role\":\"%s\",\"finding\":", nd->rec.size,
                         (unsigned long)nd->rec.addr, roles[nd->role]);
        if (nd->finding)
            wref__buf_printf(b, "%zu", nd->finding);
        else
            wref__buf_printf(b, "null");
        if (wref__is_weakref_type(nd->rec.type)) {
            wref__weakref *w = (wref__weakref *)nd->rec.addr;
            wref__lock(w->stripe);
            wref_object *cb = w->callback, *referent = w->referent;
            wref__unlock(w->stripe);
            size_t j = referent ? find_node(g, (uintptr_t)referent) : SIZE_MAX;
            if (j != SIZE_MAX)
                wref__buf_printf(b, ",\"weakref\":{\"referent\":%llu", (unsigned long long)g->nodes[j].rec.serial);
            else
                wref__buf_printf(b, ",\"weakref\":{\"referent\":null");
            wref__buf_printf(b, ",\"callback\":%s}", cb && referent ? "true" : "false");
        }
        wref__buf_printf(b, "}");
    }
    wref__buf_printf(b, "],\n\"edges\":[");
    const char *sep = "";
    for (size_t i = 0; i < n; i++) {
        const struct node *nd = &g->nodes[i];
        for (size_t e = 0; e < nd->n_edges; e++) {
            size_t w = g->edges[nd->first_edge + e];
            if (w >= n)
                continue;
            wref__buf_printf(b, "%s[%llu,%llu]", sep, (unsigned long long)nd->rec.serial,
                             (unsigned long long)g->nodes[w].rec.serial);
            sep = ",";
        }
    }
    wref__buf_printf(b, "],\"truncated\":%s}", g->n > n ? "true" : "false");
}

size_t wref__census(wref__buf *graph)
{
    struct graph g = {0};
    wref__registry_each(collect, &g);
    size_t found = 0;
    if (g.n) {
        build_edges(&g);
        if (g.slots) {
            found += report_callbacks(&g);
            size_t n_scc = tarjan(&g);
            found += report_leaks(&g, n_scc);
        }
    }
    if (graph && (g.slots || !g.n))
        graph_json(&g, graph);
    if (g.oom) {
        static bool once;
        wref__checker_warn(&once, "out of memory in the leak census: leaks or pending callbacks may be missing "
                                  "or reported without their grouping");
    }
    free(g.nodes);
    free(g.slots);
    free(g.edges);
    return found;
}
