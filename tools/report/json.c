/* json.c: --format=json, the merged and de-duplicated data (shape in docs/report-tool.md).
 *
 * Contract: {"format": "wref-check-merged", "version": 1, "reports": [...], "findings": [...],
 * "totals": {...}}; each finding is a group: fingerprint, summary, kind, severity,
 * occurrences, processes, instances ([{"report": index into reports, "id": finding id}]),
 * "cycle" for a leaked reference cycle ("Node#1 -> Node#2 -> Node#1", with type names) and
 * "first", the first occurrence exactly as its report holds it. */
#include "model.h"

#include <stdlib.h>

static json_t *reports_json(const struct merged *m)
{
    json_t *a = json_array();
    for (size_t i = 0; i < m->nreports; i++) {
        const struct report *r = m->reports[i];
        json_array_append_new(a, json_pack("{s:s,s:s,s:I,s:b,s:I}", "file", r->name, "program",
                                           r->program, "pid", (json_int_t)r->pid, "complete",
                                           r->complete, "findings", (json_int_t)r->nfindings));
    }
    return a;
}

static json_t *group_json(const struct group *g)
{
    const struct finding *f = g->occ[0];
    json_t *inst = json_array();
    for (size_t i = 0; i < g->nocc; i++)
        json_array_append_new(inst, json_pack("{s:I,s:I}", "report", (json_int_t)g->occ[i]->report->index,
                                              "id", (json_int_t)g->occ[i]->id));
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:o}", "fingerprint", f->fingerprint, "summary",
                          f->fp_summary, "kind", f->kind->id, "severity", f->severity, "occurrences",
                          (json_int_t)g->count, "processes", (json_int_t)g->nprocesses, "instances", inst);
    char *cycle = report_cycle_text(f);
    if (cycle) {
        json_object_set_new(o, "cycle", json_string(cycle));
        free(cycle);
    }
    json_object_set(o, "first", f->json);
    return o;
}

static json_t *totals_json(const struct merged *m)
{
    json_t *by_kind = json_object();
    for (size_t i = 0; i < m->ngroups; i++) {
        const char *k = m->groups[i].occ[0]->kind->id;
        json_t *n = json_object_get(by_kind, k);
        json_object_set_new(by_kind, k, json_integer(n ? json_integer_value(n) + 1 : 1));
    }
    return json_pack("{s:I,s:I,s:I,s:o}", "distinct", (json_int_t)m->ngroups, "occurrences",
                     (json_int_t)m->noccurrences, "reports", (json_int_t)m->nreports, "by_kind", by_kind);
}

int report_write_json(const struct merged *m, const struct out_opts *o)
{
    json_t *findings = json_array();
    for (size_t i = 0; i < m->ngroups; i++)
        json_array_append_new(findings, group_json(&m->groups[i]));
    json_t *doc = json_pack("{s:s,s:i,s:o,s:o,s:o}", "format", "wref-check-merged", "version", 1,
                            "reports", reports_json(m), "findings", findings, "totals", totals_json(m));
    int rc = json_dumpf(doc, o->out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', o->out);
    json_decref(doc);
    return rc ? -1 : 0;
}
