/* census.c: findings known only at exit (or at wref_check_leaks): objects still alive
 * (leaks: direct, indirect, cycles) and weakref callbacks whose referent is still alive
 * (callback-never-ran).
 *
 * The object graph comes from the object model's children callback (model.h; wref: the
 * types' traverse functions), never from scanning memory:
 * direct leaks are the roots of the leaked graph's condensation (strongly connected
 * components nobody else leaked holds), indirect leaks are reachable from them, and a root
 * component with more than one member (or a self-reference) is a reference cycle.
 * Snapshots are taken under registry locks and processed with no lock held, because
 * the children callback runs user code (wref: traverse) and the weak callback takes the
 * runtime's stripe locks.
 *
 * Cost: O(N+E) time for N leaked objects and E edges among them, and about 90 bytes per
 * object of memory (node indices are 32-bit; a few arrays of N words are shared by the
 * phases instead of allocated per phase, since fresh memory costs ~1 ms per MB in page
 * faults: at a million objects that was most of the census). */
#include "census.h"
#include "buf.h"
#include "core.h"
#include "finding.h"
#include "model.h"
#include "registry.h"
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX
#define NODES_MAX (UINT32_MAX - 1)   /* the census takes at most this many objects */

/* What the census keeps of a record: its immutable fields (a full copy is made only for the
 * few objects a finding names). */
struct leak_rec {
    uintptr_t addr;
    uint64_t serial;
    const void *type;   /* the model's type token */
    uint32_t size;
    wref__stack_id st_created;
    uint16_t tno_created;
};

static const char *tname(const struct leak_rec *r)
{
    return wref__model_type_name(r->type);
}

/* The record shape report.c takes, for a finding's object. */
static wref__rec_copy full_rec(const struct leak_rec *r)
{
    return (wref__rec_copy){.addr = r->addr, .serial = r->serial, .type = r->type, .size = r->size,
                            .state = WREF__ALIVE, .tno_created = r->tno_created, .st_created = r->st_created};
}

/* The leak graph. Node v is rec[v]; after sort_by_serial, nodes are in creation order. */
struct graph {
    struct leak_rec *rec;
    uint32_t n, cap;
    uint32_t *slots;       /* open addressing: object address -> node index + 1 (0: empty) */
    size_t mask;
    uint32_t *first;       /* CSR: node v's children are edges[first[v] .. first[v+1]) */
    uint32_t *edges;
    size_t n_edges, edges_cap;
    uint32_t *scc;         /* node -> component index */
    uint32_t *work;        /* WORK_ARRAYS arrays of n + 1 words, shared by the phases */
    size_t *finding;       /* the JSON graph's nodes (the first n_json): id of the finding, 0: none */
    uint8_t *role;         /* ... and enum wref__leak_shape */
    uint32_t n_json;
    bool oom;
    /* Memory: the collected records' first array once they are sorted into a new one, reused
     * for first, scc and work (fresh memory is what costs, so it is not allocated twice). */
    char *spare;
    size_t spare_left;
    void *owned[4];        /* what take() had to allocate */
    unsigned n_owned;
};

/* `bytes` of memory for the graph's arrays: from the spare records when they have room, else
 * allocated (and freed with the graph). NULL when out of memory. */
static void *take(struct graph *g, size_t bytes)
{
    bytes = (bytes + 15) & ~(size_t)15;
    if (bytes <= g->spare_left) {
        void *p = g->spare;
        g->spare += bytes;
        g->spare_left -= bytes;
        return p;
    }
    void *p = g->n_owned < sizeof g->owned / sizeof g->owned[0] ? malloc(bytes) : NULL;
    if (p)
        g->owned[g->n_owned++] = p;
    return p;
}

#define WORK_ARRAYS 6
static uint32_t *work(const struct graph *g, unsigned i)
{
    return g->work + (size_t)i * ((size_t)g->n + 1);
}

static void collect(wref__rec *r, void *arg)
{
    struct graph *g = arg;
    if (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE) != WREF__ALIVE || (r->reported & WREF__REPORTED(WREF__K_LEAK)))
        return;
    if (g->n == g->cap) {
        size_t c = g->cap ? (size_t)g->cap * 2 : 256;
        if (c > NODES_MAX)
            c = NODES_MAX;
        struct leak_rec *q = c > g->cap ? realloc(g->rec, c * sizeof *q) : NULL;
        if (!q) {
            g->oom = true;
            return;
        }
        g->rec = q;
        g->cap = (uint32_t)c;
    }
    r->reported |= WREF__REPORTED(WREF__K_LEAK);
    g->rec[g->n++] = (struct leak_rec){r->addr, r->serial, r->type, r->size, r->st_created, r->tno_created};
}

static int serial_cmp(const void *a, const void *b)
{
    const struct leak_rec *x = a, *y = b;
    return x->serial < y->serial ? -1 : x->serial > y->serial;
}

/* Puts the nodes in creation order (serial), in O(N): an LSD radix sort (11 bits a pass) of
 * keys "(serial - min) << 32 | index", then the records are gathered into a new array (the
 * old one becomes the spare memory of take()), or, without memory for it, permuted in place
 * along the permutation's cycles (slower: each step waits for the previous one's miss). Objects created together are usually linked together and adjacent in
 * memory, so the walks below then touch memory in order instead of in the registry's hash
 * order, and every component's first member is its oldest object, whatever the hash order.
 * Returns the key block (16 bytes per node), which build_edges reuses for its map; NULL when
 * out of memory (then unsorted, which is still correct, only slower). */
static uint64_t *sort_by_serial(struct graph *g)
{
    size_t n = g->n;
    uint64_t min = UINT64_MAX, max = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t s = g->rec[i].serial;
        min = s < min ? s : min;
        max = s > max ? s : max;
    }
    uint64_t *block = malloc((n < 4 ? 4 : n) * 2 * sizeof *block);
    if (!block)
        return NULL;
    if (max - min > UINT32_MAX) {
        /* more than 4 billion objects were created while these lived: O(N log N), once */
        qsort(g->rec, n, sizeof *g->rec, serial_cmp);
        return block;
    }
    size_t *count = malloc(2048 * sizeof *count);   /* not on the stack: the census may run on a signal's */
    if (!count) {
        free(block);
        return NULL;
    }
    uint64_t *a = block, *b = block + n;
    for (size_t i = 0; i < n; i++)
        a[i] = (g->rec[i].serial - min) << 32 | i;
    for (unsigned shift = 32; shift < 64 && ((max - min) >> (shift - 32)); shift += 11) {
        memset(count, 0, 2048 * sizeof *count);
        for (size_t i = 0; i < n; i++)
            count[(a[i] >> shift) & 2047]++;
        for (size_t d = 0, sum = 0; d < 2048; d++) {
            size_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            b[count[(a[i] >> shift) & 2047]++] = a[i];
        uint64_t *t = a;
        a = b;
        b = t;
    }
    free(count);
    /* position i takes the record at (uint32_t)a[i] */
    struct leak_rec *sorted = malloc(n * sizeof *sorted);
    if (sorted) {
        for (size_t i = 0; i < n; i++) {
            if (i + 8 < n)
                __builtin_prefetch(&g->rec[(uint32_t)a[i + 8]]);
            sorted[i] = g->rec[(uint32_t)a[i]];
        }
        g->spare = (char *)g->rec;
        g->spare_left = (size_t)g->cap * sizeof *g->rec;
        g->owned[g->n_owned++] = g->rec;
        g->rec = sorted;
        g->cap = g->n;
        return block;
    }
    /* a done position is marked by a[i] = i */
    for (size_t i = 0; i < n; i++) {
        if ((uint32_t)a[i] == i)
            continue;
        struct leak_rec tmp = g->rec[i];
        size_t j = i;
        for (;;) {
            size_t k = (uint32_t)a[j];
            a[j] = j;
            if (k == i)
                break;
            g->rec[j] = g->rec[k];
            j = k;
        }
        g->rec[j] = tmp;
    }
    return block;
}

static size_t slot_hash(uintptr_t a)
{
    return (size_t)(((uint64_t)(a >> 4) * 0x9E3779B97F4A7C15ull) >> 20);
}

static uint32_t find_node(const struct graph *g, uintptr_t a)
{
    for (size_t i = slot_hash(a) & g->mask;; i = (i + 1) & g->mask) {
        uint32_t v = g->slots[i];
        if (!v)
            return NONE;
        if (g->rec[v - 1].addr == a)
            return v - 1;
    }
}

static int visit_child(uintptr_t child, void *arg)
{
    struct graph *g = arg;
    uint32_t j = child ? find_node(g, child) : NONE;
    if (j == NONE)
        return 0;
    if (g->n_edges == g->edges_cap) {
        size_t c = g->edges_cap * 2;
        uint32_t *q = c <= UINT32_MAX ? realloc(g->edges, c * sizeof *q) : NULL;
        if (!q) {
            g->oom = true;
            return 0;
        }
        g->edges = q;
        g->edges_cap = c;
    }
    g->edges[g->n_edges++] = j;
    return 0;
}

/* The map (in `block`, 16 bytes per node, or its own memory) and the edges, from the model's
 * children callback. */
static void build_edges(struct graph *g, uint64_t *block)
{
    size_t n_slots = 16;
    while (n_slots < (size_t)g->n * 2)
        n_slots *= 2;   /* < 4 n slots of 4 bytes: fits in the 16 n bytes of the block */
    if (block && n_slots * sizeof *g->slots <= ((g->n < 4 ? 4 : g->n) * 2 * sizeof *block)) {
        g->slots = (uint32_t *)block;
        memset(g->slots, 0, n_slots * sizeof *g->slots);
    } else {
        free(block);
        g->slots = calloc(n_slots, sizeof *g->slots);
    }
    g->first = take(g, ((size_t)g->n + 1) * sizeof *g->first);
    g->edges_cap = (size_t)g->n + 16;   /* most leaked graphs are trees: about one edge a node */
    g->edges = malloc(g->edges_cap * sizeof *g->edges);
    if (!g->slots || !g->first || !g->edges) {
        free(g->slots);
        g->slots = NULL;
        g->oom = true;
        return;
    }
    g->mask = n_slots - 1;
    for (uint32_t i = 0; i < g->n; i++) {
        size_t s = slot_hash(g->rec[i].addr) & g->mask;
        while (g->slots[s])
            s = (s + 1) & g->mask;
        g->slots[s] = i + 1;
    }
    const wref__model *m = wref__model_get();
    for (uint32_t i = 0; i < g->n; i++) {
        if (i + 4 < g->n)
            __builtin_prefetch((const void *)g->rec[i + 4].addr);   /* the callback reads it */
        g->first[i] = (uint32_t)g->n_edges;
        if (m->children)
            m->children(g->rec[i].addr, g->rec[i].type, visit_child, g);
    }
    g->first[g->n] = (uint32_t)g->n_edges;
}

/* Tarjan's algorithm, iterative (leaked graphs can be long chains), in the work arrays.
 * A node is on Tarjan's stack while it has an index and no component yet. */
static uint32_t tarjan(struct graph *g)
{
    uint32_t n = g->n, n_scc = 0, counter = 0, sp = 0, cs = 0;
    uint32_t *index = work(g, 0), *low = work(g, 1), *stack = work(g, 2), *call = work(g, 3), *pos = work(g, 4);
    memset(index, 0xff, (size_t)n * sizeof *index);
    memset(g->scc, 0xff, (size_t)n * sizeof *g->scc);
    for (uint32_t root = 0; root < n; root++) {
        if (index[root] != NONE)
            continue;
        call[cs++] = root;
        index[root] = low[root] = counter++;
        pos[root] = g->first[root];
        stack[sp++] = root;
        while (cs) {
            uint32_t v = call[cs - 1];
            if (pos[v] < g->first[v + 1]) {
                uint32_t w = g->edges[pos[v]++];
                if (index[w] == NONE) {
                    index[w] = low[w] = counter++;
                    pos[w] = g->first[w];
                    stack[sp++] = w;
                    call[cs++] = w;
                } else if (g->scc[w] == NONE && index[w] < low[v]) {
                    low[v] = index[w];
                }
                continue;
            }
            if (low[v] == index[v]) {
                uint32_t w;
                do {
                    w = stack[--sp];
                    g->scc[w] = n_scc;
                } while (w != v);
                n_scc++;
            }
            cs--;
            if (cs) {
                uint32_t parent = call[cs - 1];
                if (low[v] < low[parent])
                    low[parent] = low[v];
            }
        }
    }
    return n_scc;
}

/* ---- findings ---------------------------------------------------------------------------- */

static size_t report_callbacks(struct graph *g)
{
    size_t found = 0;
    const wref__model *m = wref__model_get();
    for (uint32_t i = 0; i < g->n && m->weak; i++) {
        const struct leak_rec *r = &g->rec[i];
        uintptr_t referent;
        bool cb;
        if (!m->weak(r->addr, r->type, &referent, &cb) || !cb || !referent)
            continue;
        uint32_t j = find_node(g, referent);
        wref__rec_copy ref_copy = j == NONE ? (wref__rec_copy){0} : full_rec(&g->rec[j]);
        const wref__rec_copy *ref = j == NONE ? NULL : &ref_copy;
        char what[300];
        snprintf(what, sizeof what,
                 "a weakref callback never ran: its referent %s#%llu is still alive at exit "
                 "(usually because the referent leaked)",
                 ref ? wref__type_name(ref) : "?", ref ? (unsigned long long)ref->serial : 0ull);
        wref__finding f = {.kind = WREF__K_CALLBACK_NEVER_RAN, .what = what, .object = ref,
                           .address = referent, .where = 0};
        f.history[f.n_history++] = (wref__labelled){"callback registered (weakref created)", r->st_created, r->tno_created};
        if (ref)
            f.history[f.n_history++] = (wref__labelled){"referent created", ref->st_created, ref->tno_created};
        found += wref__report(&f) != 0;   /* a suppressed finding is not reported */
    }
    return found;
}

/* report_leaks' use of the work arrays (tarjan's are dead by then) */
enum { W_MEMBERS, W_SCC_FIRST, W_QUEUE, W_GROUP, W_PREV, W_OWNER };

/* per-component flags */
#define C_HAS_IN 1u            /* held by another leaked component (or: already reported) */
#define C_SELF_LOOP 2u
#define C_SUPPRESSED 4u        /* its finding was suppressed: so are the objects it owns */

/* Marks every node reachable from component `root` (not yet owned) as owned by it; returns
 * how many and their bytes. Cost: the component's members plus the nodes it claims and their
 * edges, so that claiming from every root in turn is O(N+E) in all (a claimed node is never
 * visited again). */
static void claim(struct graph *g, uint32_t root_scc, size_t *count, size_t *bytes)
{
    uint32_t *members = work(g, W_MEMBERS), *scc_first = work(g, W_SCC_FIRST), *queue = work(g, W_QUEUE);
    uint32_t *owner = work(g, W_OWNER);
    size_t head = 0, tail = 0;
    for (uint32_t m = scc_first[root_scc]; m < scc_first[root_scc + 1]; m++)
        queue[tail++] = members[m];
    while (head < tail) {
        uint32_t v = queue[head++];
        for (uint32_t e = g->first[v]; e < g->first[v + 1]; e++) {
            uint32_t w = g->edges[e];
            if (g->scc[w] == root_scc || owner[w] != NONE)
                continue;
            owner[w] = root_scc;
            (*count)++;
            *bytes += g->rec[w].size;
            queue[tail++] = w;
        }
    }
}

/* Text "A#1 -> B#2 -> A#1": a cycle through the component's first member; its serials in
 * serials[] (at most 18: the start, 16 more, the start again), their number in *n_serials.
 * prev[] is NONE everywhere on entry and on return. Cost: the component's members and their
 * edges, never the whole graph. */
static void cycle_path(struct graph *g, uint32_t start, wref__buf *b, uint64_t *serials, size_t *n_serials)
{
    uint32_t *prev = work(g, W_PREV), *queue = work(g, W_QUEUE);
    uint32_t scc = g->scc[start];
    /* BFS inside the component from start until an edge returns to start */
    size_t head = 0, tail = 0;
    uint32_t last = NONE;
    queue[tail++] = start;
    while (head < tail && last == NONE) {
        uint32_t v = queue[head++];
        for (uint32_t e = g->first[v]; e < g->first[v + 1]; e++) {
            uint32_t w = g->edges[e];
            if (g->scc[w] != scc)
                continue;
            if (w == start) {
                last = v;
                break;
            }
            if (prev[w] == NONE) {
                prev[w] = v;
                queue[tail++] = w;
            }
        }
    }
    uint32_t path[17];
    size_t n = 0;
    for (uint32_t v = last; v != NONE && v != start && n < 16; v = prev[v])
        path[n++] = v;
    for (size_t i = 0; i < tail; i++)
        prev[queue[i]] = NONE;
    const struct leak_rec *s0 = &g->rec[start];
    wref__buf_printf(b, "  reference cycle: %s#%llu", tname(s0), (unsigned long long)s0->serial);
    *n_serials = 0;
    serials[(*n_serials)++] = s0->serial;
    while (n) {
        const struct leak_rec *r = &g->rec[path[--n]];
        wref__buf_printf(b, " -> %s#%llu", tname(r), (unsigned long long)r->serial);
        serials[(*n_serials)++] = r->serial;
    }
    serials[(*n_serials)++] = s0->serial;
    wref__buf_printf(b, " -> %s#%llu\n", tname(s0), (unsigned long long)s0->serial);
}

struct group {
    wref__stack_id stack;
    const void *type;   /* the model's type token */
    bool direct;
    uint32_t first;          /* a member, for the header */
    size_t count, bytes, indirect_count, indirect_bytes;
    size_t finding;          /* id of its finding */
    size_t orig;             /* index before sorting (node -> group map in W_GROUP) */
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

static size_t group_hash(wref__stack_id st, const void *t, bool direct)
{
    uint64_t h = ((uint64_t)st * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)(uintptr_t)t * 0xC2B2AE3D27D4EB4Full) ^ direct;
    return (size_t)(h ^ (h >> 29));
}

/* The group of node v, created when new. Both the groups and their index grow by doubling
 * (most leaks form a few groups, so neither is sized by the number of objects); NONE when
 * out of memory. */
static uint32_t group_of(struct group_index *ix, struct group **groups, size_t *n_groups, size_t *cap, uint32_t v,
                         const struct leak_rec *r, bool direct)
{
    if ((*n_groups + 1) * 2 > ix->mask + 1) {   /* keep the index at most half full */
        size_t n_slots = (ix->mask + 1) * 2;
        size_t *slots = calloc(n_slots, sizeof *slots);
        if (!slots)
            return NONE;
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
    for (size_t i = group_hash(r->st_created, r->type, direct) & ix->mask;; i = (i + 1) & ix->mask) {
        size_t k = ix->slots[i];
        if (!k) {
            if (*n_groups == *cap) {
                size_t c = *cap ? *cap * 2 : 16;
                struct group *q = realloc(*groups, c * sizeof *q);
                if (!q)
                    return NONE;
                *groups = q;
                *cap = c;
            }
            k = (*n_groups)++;
            (*groups)[k] = (struct group){r->st_created, r->type, direct, v, 0, 0, 0, 0, 0, k};
            ix->slots[i] = k + 1;
            return (uint32_t)k;
        }
        k--;
        const struct group *gr = &(*groups)[k];
        if (gr->stack == r->st_created && gr->type == r->type && gr->direct == direct)
            return (uint32_t)k;
    }
}

static void set_role(struct graph *g, uint32_t v, enum wref__leak_shape role, size_t finding, bool with_finding)
{
    if (v >= g->n_json)
        return;
    g->role[v] = (uint8_t)role;
    if (with_finding)
        g->finding[v] = finding;
}

/* Reports the groups of one pass (sorted: direct first, then by bytes) and gives each of
 * their objects its finding; a direct object whose finding was suppressed marks its
 * component, so that what it owns is left out too. */
static size_t report_groups(struct graph *g, struct group *groups, size_t n_groups, bool want_direct, uint8_t *flags)
{
    size_t found = 0;
    if (n_groups)   /* groups may still be NULL */
        qsort(groups, n_groups, sizeof *groups, group_cmp);
    for (size_t k = 0; k < n_groups; k++) {
        struct group *gr = &groups[k];
        wref__rec_copy obj = full_rec(&g->rec[gr->first]);
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
    /* the group numbers in W_GROUP are those before sorting: map them to sorted positions,
     * in the W_QUEUE array (free between claims) */
    uint32_t *sorted_pos = work(g, W_QUEUE), *group = work(g, W_GROUP);
    for (size_t k = 0; k < n_groups; k++)
        sorted_pos[groups[k].orig] = (uint32_t)k;
    bool suppressed_any = false;
    for (size_t k = 0; k < n_groups && !suppressed_any; k++)
        suppressed_any = groups[k].finding == 0;
    if (!suppressed_any && g->n_json == 0)
        return found;
    for (uint32_t v = 0; v < g->n; v++) {
        bool direct = !(flags[g->scc[v]] & C_HAS_IN);
        if (group[v] == NONE || direct != want_direct)
            continue;
        size_t id = groups[sorted_pos[group[v]]].finding;
        if (v < g->n_json)
            g->finding[v] = id;
        if (direct && !id)
            flags[g->scc[v]] |= C_SUPPRESSED;
        if (!suppressed_any && v >= g->n_json)
            break;
    }
    return found;
}

/* Groups the nodes by component (counting sort): members and scc_first, O(N). */
static void index_members(struct graph *g, uint32_t n_scc)
{
    uint32_t *members = work(g, W_MEMBERS), *scc_first = work(g, W_SCC_FIRST), *fill = work(g, W_QUEUE);
    memset(scc_first, 0, ((size_t)n_scc + 1) * sizeof *scc_first);
    for (uint32_t v = 0; v < g->n; v++)
        scc_first[g->scc[v] + 1]++;
    for (uint32_t c = 0; c < n_scc; c++)
        scc_first[c + 1] += scc_first[c];
    memcpy(fill, scc_first, (size_t)n_scc * sizeof *fill);
    for (uint32_t v = 0; v < g->n; v++)
        members[fill[g->scc[v]]++] = v;
}

/* Leak findings: one per reference cycle nobody else holds, then one per group of the other
 * leaked objects (direct: nobody leaked holds them; indirect: reachable only from leaked
 * objects). Every step is O(N+E): components are walked through their member lists, claims
 * never revisit a node, and groups are found by hash. */
static size_t report_leaks(struct graph *g, uint32_t n_scc)
{
    size_t found = 0;
    uint8_t *flags = calloc(n_scc ? n_scc : 1, 1);
    struct group *groups = NULL;
    size_t groups_cap = 0, n_groups = 0;
    struct group_index ix = {calloc(16, sizeof *ix.slots), 15};
    if (!flags || !ix.slots) {
        g->oom = true;
        goto out;
    }
    index_members(g, n_scc);
    uint32_t *members = work(g, W_MEMBERS), *scc_first = work(g, W_SCC_FIRST), *owner = work(g, W_OWNER);
    uint32_t *group = work(g, W_GROUP);
    memset(owner, 0xff, (size_t)g->n * sizeof *owner);
    memset(group, 0xff, (size_t)g->n * sizeof *group);
    memset(work(g, W_PREV), 0xff, (size_t)g->n * sizeof(uint32_t));
    for (uint32_t v = 0; v < g->n; v++) {
        uint32_t s = g->scc[v];
        for (uint32_t e = g->first[v]; e < g->first[v + 1]; e++) {
            uint32_t w = g->edges[e];
            if (g->scc[w] != s)
                flags[g->scc[w]] |= C_HAS_IN;
            else if (w == v)
                flags[s] |= C_SELF_LOOP;
        }
    }

    /* Cycles first: one finding each, named from its oldest member (the first: the nodes are
     * in creation order), so the report does not depend on the registry's hash order. */
    for (uint32_t s = 0; s < n_scc; s++) {
        uint32_t v = members[scc_first[s]], size = scc_first[s + 1] - scc_first[s];
        if ((flags[s] & C_HAS_IN) || (size < 2 && !(flags[s] & C_SELF_LOOP)))
            continue;
        flags[s] |= C_HAS_IN;   /* reported: not again for the other members */
        size_t ind = 0, ind_bytes = 0, bytes = 0;
        claim(g, s, &ind, &ind_bytes);
        for (uint32_t m = scc_first[s]; m < scc_first[s + 1]; m++) {
            bytes += g->rec[members[m]].size;
            owner[members[m]] = s;
        }
        wref__buf b = {0};
        wref__buf_printf(&b, "a reference cycle of %u object(s), %zu byte(s), is alive at exit; "
                         "%zu more object(s) (%zu byte(s)) are reachable only from it (indirect)",
                         size, bytes, ind, ind_bytes);
        wref__buf ex = {0};
        uint64_t serials[18];
        wref__leak_info li = {WREF__LEAK_CYCLE, size, bytes, ind, ind_bytes, serials, 0};
        cycle_path(g, v, &ex, serials, &li.cycle_len);
        wref__rec_copy obj = full_rec(&g->rec[v]);
        wref__finding f = {.kind = WREF__K_LEAK, .what = b.data, .object = &obj,
                           .address = g->rec[v].addr, .where = 0, .extra = ex.data, .leak = &li};
        f.history[f.n_history++] = (wref__labelled){"created", g->rec[v].st_created, g->rec[v].tno_created};
        size_t id = wref__report(&f);
        if (!id)
            flags[s] |= C_SUPPRESSED;
        for (uint32_t m = scc_first[s]; m < scc_first[s + 1]; m++)
            set_role(g, members[m], WREF__LEAK_CYCLE, id, true);
        wref__buf_free(&b);
        wref__buf_free(&ex);
        found += id != 0;
    }

    /* The direct roots (components nobody leaked holds that are no cycle: single objects)
     * claim what they reach, in creation order, and are grouped by creation stack and type
     * as they go; then the indirect objects, of the roots whose finding was not suppressed
     * (a suppression of a leak covers what only that leak keeps alive). */
    for (uint32_t v = 0; v < g->n; v++) {
        uint32_t s = g->scc[v];
        if ((flags[s] & C_HAS_IN) || owner[v] != NONE)
            continue;
        owner[v] = s;
        size_t ind = 0, ind_bytes = 0;
        claim(g, s, &ind, &ind_bytes);
        uint32_t k = group_of(&ix, &groups, &n_groups, &groups_cap, v, &g->rec[v], true);
        if (k == NONE) {
            g->oom = true;   /* this object is then in no finding */
            continue;
        }
        group[v] = k;
        set_role(g, v, WREF__LEAK_DIRECT, 0, false);
        groups[k].count++;
        groups[k].bytes += g->rec[v].size;
        groups[k].indirect_count += ind;
        groups[k].indirect_bytes += ind_bytes;
    }
    found += report_groups(g, groups, n_groups, true, flags);

    n_groups = 0;
    memset(ix.slots, 0, (ix.mask + 1) * sizeof *ix.slots);
    for (uint32_t v = 0; v < g->n; v++) {
        uint32_t s = g->scc[v];
        if (!(flags[s] & C_HAS_IN) || owner[v] == s)
            continue;   /* direct, or a member of a cycle */
        set_role(g, v, WREF__LEAK_INDIRECT, 0, false);
        if (owner[v] != NONE && (flags[owner[v]] & C_SUPPRESSED))
            continue;   /* covered by its owner's suppression */
        uint32_t k = group_of(&ix, &groups, &n_groups, &groups_cap, v, &g->rec[v], false);
        if (k == NONE) {
            g->oom = true;
            continue;
        }
        group[v] = k;
        groups[k].count++;
        groups[k].bytes += g->rec[v].size;
    }
    found += report_groups(g, groups, n_groups, false, flags);
out:
    free(flags);
    free(groups);
    free(ix.slots);
    return found;
}

/* ---- the leak graph, for pictures (JSON: docs/report-schema.json#/$defs/leak_graph) ------------ */

#define GRAPH_MAX_OBJECTS 10000

/* The objects frontends added (wref__census_add_graph), already in JSON, each preceded by a
 * comma; written after the registry's. Exit-time only: one thread. */
static struct {
    wref__buf json;
    size_t n;
    bool dropped;   /* more than GRAPH_MAX_OBJECTS were added */
} added;

/* A registry object's weakref fields (the model's weak callback), for object_json. */
struct weak_fields {
    bool referent_known;
    uint64_t referent;   /* its serial, when known */
    bool callback;
};

/* One object of leak_graph.objects: a registry object (o->frontend NULL; wf its weakref
 * fields when it is a weakref) or a frontend's (wref__census_add_graph). The one writer of
 * both, so that they stay one shape. */
static void object_json(wref__buf *b, const wref__graph_obj *o, const struct weak_fields *wf)
{
    static const char *const roles[] = {"direct", "indirect", "cycle"};
    wref__buf_printf(b, "{\"serial\":%llu,\"type\":", (unsigned long long)o->serial);
    wref__buf_json_string(b, o->type ? o->type : "?");
    wref__buf_printf(b, ",\"size\":%u,\"address\":\"0x%lx\",\"role\":\"%s\",\"finding\":", o->size,
                     (unsigned long)o->addr, roles[o->role]);
    if (o->finding)
        wref__buf_printf(b, "%zu", o->finding);
    else
        wref__buf_printf(b, "null");
    if (o->frontend) {
        wref__buf_printf(b, ",\"frontend\":");
        wref__buf_json_string(b, o->frontend);
    }
    if (o->created) {
        wref__buf_printf(b, ",\"created\":");
        wref__buf_json_string(b, o->created);
    }
    if (wf) {
        if (wf->referent_known)
            wref__buf_printf(b, ",\"weakref\":{\"referent\":%llu", (unsigned long long)wf->referent);
        else
            wref__buf_printf(b, ",\"weakref\":{\"referent\":null");
        wref__buf_printf(b, ",\"callback\":%s}", wf->callback ? "true" : "false");
    }
    if (o->n_weak) {
        wref__buf_printf(b, ",\"weakrefs\":[");
        for (size_t i = 0; i < o->n_weak; i++) {
            const wref__graph_weak *w = &o->weak[i];
            wref__buf_printf(b, "%s{\"type\":", i ? "," : "");
            wref__buf_json_string(b, w->type);
            if (w->addr)
                wref__buf_printf(b, ",\"address\":\"0x%lx\",\"callback\":", (unsigned long)w->addr);
            else
                wref__buf_printf(b, ",\"address\":null,\"callback\":");
            wref__buf_json_string(b, w->callback ? w->callback : "?");
            wref__buf_printf(b, ",\"api\":");
            wref__buf_json_string(b, w->api);
            if (w->finding)
                wref__buf_printf(b, ",\"finding\":%zu}", w->finding);
            else
                wref__buf_printf(b, ",\"finding\":null}");
        }
        wref__buf_printf(b, "]");
    }
    wref__buf_printf(b, "}");
}

void wref__census_add_graph(const wref__graph_obj *o)
{
    if (added.n >= GRAPH_MAX_OBJECTS) {
        added.dropped = true;
        return;
    }
    wref__buf_printf(&added.json, ",\n");
    object_json(&added.json, o, NULL);
    added.n++;
}

static void graph_json(struct graph *g, wref__buf *b)
{
    const wref__model *m = wref__model_get();
    uint32_t n = g->n_json;
    wref__buf_printf(b, "{\"objects\":[");
    for (uint32_t i = 0; i < n; i++) {
        const struct leak_rec *r = &g->rec[i];
        wref__graph_obj o = {.serial = r->serial, .type = tname(r), .size = r->size, .addr = r->addr,
                             .role = (enum wref__leak_shape)g->role[i], .finding = g->finding[i]};
        uintptr_t referent;
        bool cb;
        struct weak_fields wf = {0};
        bool weak = m->weak && m->weak(r->addr, r->type, &referent, &cb);
        if (weak) {
            uint32_t j = referent ? find_node(g, referent) : NONE;
            wf = (struct weak_fields){j != NONE, j != NONE ? g->rec[j].serial : 0, cb && referent};
        }
        wref__buf_printf(b, "%s\n", i ? "," : "");
        object_json(b, &o, weak ? &wf : NULL);
    }
    if (added.n && !added.json.failed)   /* its first comma goes when no registry object came first */
        wref__buf_printf(b, "%s", added.json.data + (n ? 0 : 1));
    wref__buf_printf(b, "],\n\"edges\":[");
    const char *sep = "";
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t e = g->first[i]; e < g->first[i + 1]; e++) {
            uint32_t w = g->edges[e];
            if (w >= n)
                continue;
            wref__buf_printf(b, "%s[%llu,%llu]", sep, (unsigned long long)g->rec[i].serial,
                             (unsigned long long)g->rec[w].serial);
            sep = ",";
        }
    }
    bool cut = g->n > n || added.dropped || added.json.failed;
    wref__buf_printf(b, "],\"truncated\":%s}", cut ? "true" : "false");
}

size_t wref__census(wref__buf *graph)
{
    struct graph g = {0};
    size_t live = wref__registry_live_count();   /* a hint: room for them all at once */
    size_t cap = live + 16 < NODES_MAX ? live + 16 : NODES_MAX;
    g.rec = malloc(cap * sizeof *g.rec);
    g.cap = g.rec ? (uint32_t)cap : 0;
    wref__registry_each(collect, &g);
    size_t found = 0;
    bool built = false;
    if (g.n) {
        uint64_t *block = sort_by_serial(&g);
        build_edges(&g, block);
        g.scc = take(&g, (size_t)g.n * sizeof *g.scc);
        g.work = take(&g, ((size_t)g.n + 1) * WORK_ARRAYS * sizeof *g.work);
        size_t room = GRAPH_MAX_OBJECTS - added.n;   /* the frontends' objects count too */
        g.n_json = graph ? (g.n < room ? g.n : (uint32_t)room) : 0;
        g.finding = calloc(g.n_json ? g.n_json : 1, sizeof *g.finding);
        g.role = calloc(g.n_json ? g.n_json : 1, sizeof *g.role);
        if (g.slots && g.scc && g.work && g.finding && g.role) {
            built = true;
            found += report_callbacks(&g);
            uint32_t n_scc = tarjan(&g);
            found += report_leaks(&g, n_scc);
        } else {
            g.oom = true;
        }
    }
    if (graph && (built || !g.n))
        graph_json(&g, graph);
    if (g.oom) {
        static bool once;
        wref__checker_warn(&once, "out of memory in the leak census: leaks or pending callbacks may be missing "
                                  "or reported without their grouping");
    }
    free(g.rec);
    free(g.slots);

    free(g.edges);
    while (g.n_owned)
        free(g.owned[--g.n_owned]);
    free(g.finding);
    free(g.role);
    return found;
}
