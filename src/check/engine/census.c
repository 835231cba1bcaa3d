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

/* What the census keeps of a record: its immutable fields (a full copy is made only for the
 * few objects a finding names). */
struct leak_rec {
    uintptr_t addr;
    uint64_t serial;
    const wref_type *type;
    uint32_t size;
    wref__stack_id st_created;
    uint16_t tno_created;
};

static const char *tname(const struct leak_rec *r)
{
    return r->type && r->type->name ? r->type->name : "?";
}

/* The record shape report.c takes, for a finding's object. */
static wref__rec_copy full_rec(const struct leak_rec *r)
{
    return (wref__rec_copy){.addr = r->addr, .serial = r->serial, .type = r->type, .size = r->size,
                            .state = WREF__ALIVE, .tno_created = r->tno_created, .st_created = r->st_created};
}

struct node {
    struct leak_rec rec;
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
    size_t *scc_first;    /* component c's members: members[scc_first[c] .. scc_first[c+1]) */
    size_t *members;
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
    g->nodes[g->n++] = (struct node){.rec = {r->addr, r->serial, r->type, r->size, r->st_created, r->tno_created},
                                     .owner = SIZE_MAX};
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
        const struct leak_rec *r = &g->nodes[i].rec;
        if (!wref__is_weakref_type(r->type))
            continue;
        wref__weakref *w = (wref__weakref *)r->addr;
        wref__lock(w->stripe);
        wref_object *cb = w->callback, *referent = w->referent;
        wref__unlock(w->stripe);
        if (!cb || !referent)
            continue;
        size_t j = find_node(g, (uintptr_t)referent);
        wref__rec_copy ref_copy = j == SIZE_MAX ? (wref__rec_copy){0} : full_rec(&g->nodes[j].rec);
        const wref__rec_copy *ref = j == SIZE_MAX ? NULL : &ref_copy;
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
        found += wref__report(&f) != 0;   /* a suppressed finding is not reported */
    }
    return found;
}

/* Groups the nodes by component (counting sort): members[] and scc_first[], O(N). */
static bool index_members(struct graph *g, size_t n_scc)
{
    g->scc_first = calloc(n_scc + 1, sizeof *g->scc_first);
    g->members = malloc((g->n ? g->n : 1) * sizeof *g->members);
    if (!g->scc_first || !g->members) {
        g->oom = true;
        return false;
    }
    for (size_t v = 0; v < g->n; v++)
        g->scc_first[g->nodes[v].scc + 1]++;
    for (size_t c = 0; c < n_scc; c++)
        g->scc_first[c + 1] += g->scc_first[c];
    size_t *fill = malloc((n_scc ? n_scc : 1) * sizeof *fill);
    if (!fill) {
        g->oom = true;
        return false;
    }
    memcpy(fill, g->scc_first, n_scc * sizeof *fill);
    for (size_t v = 0; v < g->n; v++)
        g->members[fill[g->nodes[v].scc]++] = v;
    free(fill);
    return true;
}

/* Marks every node reachable from component `root` (not yet owned) as owned by it; returns
 * how many and their bytes. Cost: the component's members plus the nodes it claims and their
 * edges, so that claiming from every root in turn is O(N+E) in all (a claimed node is never
 * visited again). */
static void claim(struct graph *g, size_t root_scc, size_t *count, size_t *bytes, size_t *queue)
{
    size_t head = 0, tail = 0;
    for (size_t m = g->scc_first[root_scc]; m < g->scc_first[root_scc + 1]; m++)
        queue[tail++] = g->members[m];
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
 * serials[] (at most 18: the start, 16 more, the start again), their number in *n_serials.
 * prev[] (g->n entries) is SIZE_MAX everywhere on entry and on return; queue[] has room for
 * g->n. Cost: the component's members and their edges, never the whole graph. */
static void cycle_path(struct graph *g, size_t start, wref__buf *b, size_t *prev, size_t *queue, uint64_t *serials,
                       size_t *n_serials)
{
    size_t scc = g->nodes[start].scc;
    /* BFS inside the component from start until an edge returns to start */
    size_t head = 0, tail = 0, last = SIZE_MAX;
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
    for (size_t i = 0; i < tail; i++)
        prev[queue[i]] = SIZE_MAX;
    wref__buf_printf(b, "  reference cycle: %s#%llu", tname(&g->nodes[start].rec),
                     (unsigned long long)g->nodes[start].rec.serial);
    *n_serials = 0;
    serials[(*n_serials)++] = g->nodes[start].rec.serial;
    while (n) {
        const struct leak_rec *r = &g->nodes[path[--n]].rec;
        wref__buf_printf(b, " -> %s#%llu", tname(r), (unsigned long long)r->serial);
        serials[(*n_serials)++] = r->serial;
    }
    serials[(*n_serials)++] = g->nodes[start].rec.serial;
    wref__buf_printf(b, " -> %s#%llu\n", tname(&g->nodes[start].rec),
                     (unsigned long long)g->nodes[start].rec.serial);
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

/* Open-addressing index of the groups by (creation stack, type, direct), so that grouping N
 * leaked objects is O(N) whatever the number of groups. */
struct group_index {
    size_t *slots;   /* group index + 1; 0: empty */
    size_t mask;
};

static size_t group_hash(wref__stack_id st, const wref_type *t, bool direct)
{
    uint64_t h = ((uint64_t)st * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)(uintptr_t)t * 0xC2B2AE3D27D4EB4Full) ^ direct;
    return (size_t)(h ^ (h >> 29));
}

/* The group of node nv, created when new. Both the groups and their index grow by doubling
 * (most leaks form a few groups, so neither is sized by the number of objects); SIZE_MAX when
 * out of memory. */
static size_t group_of(struct group_index *ix, struct group **groups, size_t *n_groups, size_t *cap, size_t v,
                       const struct node *nv, bool direct)
{
    if ((*n_groups + 1) * 2 > ix->mask + 1) {   /* keep the index at most half full */
        size_t n_slots = (ix->mask + 1) * 2;
        size_t *slots = calloc(n_slots, sizeof *slots);
        if (!slots)
            return SIZE_MAX;
        for (size_t k = 0; k < *n_groups; k++) {
            const struct group *gr = &(*groups)[k];
            size_t i = group_hash(gr->stack, gr->type, gr->direct) & (n_slots - 1);
            while (slots[i])
                i = (i + 1) & (n_slots - 1);
            slots[i] = k + 1;
        }
        free(ix->slots);
        ix->slots = slots;
        ix->mask = n_slots - 1;
    }
    for (size_t i = group_hash(nv->rec.st_created, nv->rec.type, direct) & ix->mask;; i = (i + 1) & ix->mask) {
        size_t k = ix->slots[i];
        if (!k) {
            bool oom = false;
            *groups = grow(*groups, cap, *n_groups + 1, sizeof **groups, &oom);
            if (oom)
                return SIZE_MAX;
            k = (*n_groups)++;
            (*groups)[k] = (struct group){nv->rec.st_created, nv->rec.type, direct, v, 0, 0, 0, 0, 0, k};
            ix->slots[i] = k + 1;
            return k;
        }
        k--;
        const struct group *gr = &(*groups)[k];
        if (gr->stack == nv->rec.st_created && gr->type == nv->rec.type && gr->direct == direct)
            return k;
    }
}

/* Leak findings: one per reference cycle nobody else holds, then one per group of the other
 * leaked objects (direct: nobody leaked holds them; indirect: reachable only from leaked
 * objects). Every step is O(N+E): components are walked through their member lists, claims
 * never revisit a node, and groups are found by hash. */
static size_t report_leaks(struct graph *g, size_t n_scc)
{
    size_t found = 0;
    size_t nn = g->n ? g->n : 1, ns = n_scc ? n_scc : 1;
    bool *has_in = calloc(ns, sizeof *has_in);
    size_t *scc_size = calloc(ns, sizeof *scc_size);
    bool *self_loop = calloc(ns, sizeof *self_loop);
    size_t *scratch = malloc(nn * sizeof *scratch);
    size_t *prev = malloc(nn * sizeof *prev);
    size_t *oldest = malloc(ns * sizeof *oldest);
    bool *owner_suppressed = calloc(ns, sizeof *owner_suppressed);   /* by the owner's component */
    struct group *groups = NULL;
    size_t groups_cap = 0;
    struct group_index ix = {calloc(16, sizeof *ix.slots), 15};
    if (!has_in || !scc_size || !self_loop || !scratch || !prev || !oldest || !owner_suppressed || !ix.slots ||
        !index_members(g, n_scc)) {
        g->oom = true;
        goto out;
    }
    for (size_t v = 0; v < g->n; v++) {
        struct node *nv = &g->nodes[v];
        scc_size[nv->scc]++;
        prev[v] = SIZE_MAX;
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
        for (size_t m = g->scc_first[s]; m < g->scc_first[s + 1]; m++) {
            struct node *nm = &g->nodes[g->members[m]];
            bytes += nm->rec.size;
            nm->owner = s;
        }
        wref__buf b = {0};
        wref__buf_printf(&b, "a reference cycle of %zu object(s), %zu byte(s), is alive at exit; "
                         "%zu more object(s) (%zu byte(s)) are reachable only from it (indirect)",
                         scc_size[s], bytes, ind, ind_bytes);
        wref__buf ex = {0};
        uint64_t serials[18];
        wref__leak_info li = {WREF__LEAK_CYCLE, scc_size[s], bytes, ind, ind_bytes, serials, 0};
        cycle_path(g, v, &ex, prev, scratch, serials, &li.cycle_len);
        wref__rec_copy obj = full_rec(&g->nodes[v].rec);
        wref__finding f = {.kind = WREF__K_LEAK, .what = b.data, .object = &obj,
                           .address = g->nodes[v].rec.addr, .where = 0, .extra = ex.data, .leak = &li};
        f.history[f.n_history++] = (wref__labelled){"created", g->nodes[v].rec.st_created, g->nodes[v].rec.tno_created};
        size_t id = wref__report(&f);
        owner_suppressed[s] = id == 0;
        for (size_t m = g->scc_first[s]; m < g->scc_first[s + 1]; m++) {
            struct node *nm = &g->nodes[g->members[m]];
            nm->finding = id;
            nm->role = WREF__LEAK_CYCLE;
        }
        wref__buf_free(&b);
        wref__buf_free(&ex);
        found += id != 0;
    }

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
    /* Two passes: the direct groups first, then the indirect ones, so that an indirect object
     * whose owner (the cycle or direct root that claimed it) was suppressed is left out: a
     * suppression of a leak covers what only that leak keeps alive. */
    for (int pass = 0; pass < 2; pass++) {
        bool want_direct = pass == 0;
        size_t n_groups = 0;
        memset(ix.slots, 0, (ix.mask + 1) * sizeof *ix.slots);
        for (size_t v = 0; v < g->n; v++) {
            struct node *nv = &g->nodes[v];
            size_t s = nv->scc;
            bool in_cycle = has_in[s] && nv->owner == s;
            bool direct = !has_in[s];   /* otherwise indirect: counted with its owner too */
            if (want_direct)
                scratch[v] = SIZE_MAX;
            if (in_cycle || direct != want_direct)
                continue;
            if (!direct) {
                nv->role = WREF__LEAK_INDIRECT;
                if (nv->owner != SIZE_MAX && owner_suppressed[nv->owner])
                    continue;   /* covered by its owner's suppression */
            }
            size_t k = group_of(&ix, &groups, &n_groups, &groups_cap, v, nv, direct);
            if (k == SIZE_MAX) {
                g->oom = true;   /* this object is then in no finding */
                continue;
            }
            scratch[v] = k;
            nv->role = direct ? WREF__LEAK_DIRECT : WREF__LEAK_INDIRECT;
            groups[k].count++;
            groups[k].bytes += nv->rec.size;
            if (direct) {
                groups[k].indirect_count += nv->ind_count;
                groups[k].indirect_bytes += nv->ind_bytes;
            }
        }
        if (n_groups)   /* groups may still be NULL */
            qsort(groups, n_groups, sizeof *groups, group_cmp);
        for (size_t k = 0; k < n_groups; k++) {
            struct group *gr = &groups[k];
            wref__rec_copy obj = full_rec(&g->nodes[gr->first].rec);
            const wref__rec_copy *r = &obj;
            wref__buf b = {0};
            if (gr->direct)
                wref__buf_printf(&b, "direct leak of %zu byte(s) in %zu %s object(s) alive at exit; %zu more object(s) "
                                 "(%zu byte(s)) are reachable only from them (indirect)",
                                 gr->bytes, gr->count, wref__type_name(r), gr->indirect_count, gr->indirect_bytes);
            else
                wref__buf_printf(&b, "indirect leak of %zu byte(s) in %zu %s object(s), reachable only from other "
                                 "leaked objects", gr->bytes, gr->count, wref__type_name(r));
            wref__leak_info li = {gr->direct ? WREF__LEAK_DIRECT : WREF__LEAK_INDIRECT, gr->count, gr->bytes,
                                  gr->direct ? gr->indirect_count : 0, gr->direct ? gr->indirect_bytes : 0, NULL, 0};
            wref__finding f = {.kind = WREF__K_LEAK, .what = b.data, .object = r, .address = r->addr, .where = 0,
                               .leak = &li};
            f.history[f.n_history++] = (wref__labelled){"created", r->st_created, r->tno_created};
            gr->finding = wref__report(&f);
            wref__buf_free(&b);
            found += gr->finding != 0;
        }
        size_t *sorted_pos = malloc((n_groups ? n_groups : 1) * sizeof *sorted_pos);
        if (!sorted_pos) {
            g->oom = true;   /* the leak graph then names no finding, nor are indirect leaks spared */
            continue;
        }
        for (size_t k = 0; k < n_groups; k++)
            sorted_pos[groups[k].orig] = k;
        for (size_t v = 0; v < g->n; v++) {
            struct node *nv = &g->nodes[v];
            bool direct = !has_in[nv->scc];
            if (scratch[v] == SIZE_MAX || direct != want_direct)
                continue;
            nv->finding = groups[sorted_pos[scratch[v]]].finding;
            if (direct && !nv->finding)
                owner_suppressed[nv->scc] = true;
        }
        free(sorted_pos);
    }
out:
    free(has_in);
    free(scc_size);
    free(self_loop);
    free(scratch);
    free(prev);
    free(oldest);
    free(owner_suppressed);
    free(groups);
    free(ix.slots);
    return found;
}

/* Puts the nodes in creation order (serial), in O(N): an LSD radix sort, 16 bits a pass.
 * Objects created together are usually linked together and adjacent in memory, so the
 * walks below then touch memory in order instead of in the registry's hash order, and every
 * "first member" of a finding is its oldest object, whatever the hash order. */
static void sort_by_serial(struct graph *g)
{
    size_t n = g->n;
    uint64_t max = 0;
    for (size_t i = 0; i < n; i++)
        if (g->nodes[i].rec.serial > max)
            max = g->nodes[i].rec.serial;
    size_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *count = malloc(65537 * sizeof *count);
    struct node *sorted = malloc(n * sizeof *sorted);
    if (!a || !b || !count || !sorted)
        goto out;   /* unsorted is still correct, only slower */
    for (size_t i = 0; i < n; i++)
        a[i] = i;
    for (unsigned shift = 0; shift < 64 && (max >> shift); shift += 16) {
        memset(count, 0, 65537 * sizeof *count);
        for (size_t i = 0; i < n; i++)
            count[((g->nodes[a[i]].rec.serial >> shift) & 0xffff) + 1]++;
        for (size_t d = 0; d < 65536; d++)
            count[d + 1] += count[d];
        for (size_t i = 0; i < n; i++)
            b[count[(g->nodes[a[i]].rec.serial >> shift) & 0xffff]++] = a[i];
        size_t *t = a;
        a = b;
        b = t;
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = g->nodes[a[i]];
    free(g->nodes);
    g->nodes = sorted;
    g->cap = n;
    sorted = NULL;
out:
    free(a);
    free(b);
    free(count);
    free(sorted);
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
        wref__buf_json_string(b, tname(&nd->rec));
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
    size_t live = wref__registry_live_count();   /* a hint: room for them all at once */
    g.nodes = malloc((live + 16) * sizeof *g.nodes);
    g.cap = g.nodes ? live + 16 : 0;
    wref__registry_each(collect, &g);
    size_t found = 0;
    if (g.n) {
        sort_by_serial(&g);
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
    free(g.scc_first);
    free(g.members);
    return found;
}
