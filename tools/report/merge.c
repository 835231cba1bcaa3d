/* merge.c: de-duplicates the findings of all reports by fingerprint.
 *
 * Contract: groups come in the order of their first occurrence (reports in load order,
 * findings in file order); a group's nprocesses counts the distinct reports it occurs in.
 * Grouping is a hash table on the fingerprint, linear in the number of findings. */
#include "model.h"

#include <stdlib.h>
#include <string.h>

static size_t slot_of(const char *fp, size_t mask)
{
    return (size_t)strtoull(fp + 8, NULL, 16) & mask;
}

static void add_occurrence(struct group *g, struct finding *f)
{
    /* capacity doubles at powers of two */
    if ((g->nocc & (g->nocc - 1)) == 0) {
        struct finding **grown = realloc(g->occ, (g->nocc ? g->nocc * 2 : 1) * sizeof *g->occ);
        if (!grown) {
            report_error("out of memory");
            exit(REPORT_EXIT_ERROR);
        }
        g->occ = grown;
    }
    if (!g->nocc || g->occ[g->nocc - 1]->report != f->report)
        g->nprocesses++;   /* occurrences of one report are consecutive */
    g->occ[g->nocc++] = f;
    g->count += 1 + (size_t)f->repeats;   /* a finding the checker folded counts as often as it happened */
}

void report_merge(struct merged *m, struct report **reports, size_t nreports)
{
    memset(m, 0, sizeof *m);
    m->reports = reports;
    m->nreports = nreports;
    size_t total = 0;
    for (size_t i = 0; i < nreports; i++) {
        reports[i]->index = i;
        total += reports[i]->nfindings;
    }
    size_t cap = 16;
    while (cap < total * 2)
        cap *= 2;
    size_t *table = report_xcalloc(cap, sizeof *table);   /* group index + 1; 0: empty */
    m->groups = report_xcalloc(total, sizeof *m->groups);
    for (size_t i = 0; i < nreports; i++) {
        for (size_t j = 0; j < reports[i]->nfindings; j++) {
            struct finding *f = &reports[i]->findings[j];
            size_t s = slot_of(f->fingerprint, cap - 1);
            while (table[s] && strcmp(m->groups[table[s] - 1].occ[0]->fingerprint, f->fingerprint))
                s = (s + 1) & (cap - 1);
            if (!table[s])
                table[s] = ++m->ngroups;
            add_occurrence(&m->groups[table[s] - 1], f);
            m->noccurrences += 1 + (size_t)f->repeats;
        }
    }
    free(table);
}

void report_merged_free(struct merged *m)
{
    for (size_t i = 0; i < m->ngroups; i++)
        free(m->groups[i].occ);
    free(m->groups);
}
