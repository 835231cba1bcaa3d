/* junit.c: --format=junit, JUnit XML for CI test dashboards.
 *
 * Contract: <testsuites> holds one <testsuite> per kind that has findings, in report_kinds
 * order; each group is a <testcase name="<fingerprint summary>" classname="<program
 * basename>"> with a <failure> whose body is the group's text report (with its Python frames
 * and pytest test, text.c); a finding made while a pytest test ran also has
 * <properties><property name="test" value="<test>"/></properties>. Text is escaped for
 * XML 1.0: markup characters as entities, control characters other than tab and newline
 * (which XML cannot carry) as '?'. */
#include "model.h"

#include <stdlib.h>
#include <string.h>

static void xml_escape(FILE *out, const char *s, int attribute)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs(attribute ? "&quot;" : "\"", out); break;
        case '\n': fputs(attribute ? "&#10;" : "\n", out); break;
        case '\t': fputs(attribute ? "&#9;" : "\t", out); break;
        default: fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, out);
        }
    }
}

static size_t count_kind(const struct merged *m, const struct kind *k)
{
    size_t n = 0;
    for (size_t i = 0; i < m->ngroups; i++)
        n += m->groups[i].occ[0]->kind == k;
    return n;
}

static void write_case(FILE *out, const struct merged *m, const struct group *g)
{
    const struct finding *f = g->occ[0];
    fputs("    <testcase name=\"", out);
    xml_escape(out, f->fp_summary, 1);
    fputs("\" classname=\"", out);
    xml_escape(out, report_basename(f->report->program), 1);
    fputs("\">\n", out);
    if (f->test) {   /* as pytest's own record_property writes it */
        fputs("      <properties>\n        <property name=\"test\" value=\"", out);
        xml_escape(out, f->test, 1);
        fputs("\"/>\n      </properties>\n", out);
    }
    fputs("      <failure type=\"", out);
    xml_escape(out, f->kind->id, 1);
    fputs("\" message=\"", out);
    xml_escape(out, f->message, 1);
    fputs("\">", out);
    char *text = report_group_text(m, g);
    xml_escape(out, text, 0);
    free(text);
    fputs("</failure>\n    </testcase>\n", out);
}

int report_write_junit(const struct merged *m, const struct out_opts *o)
{
    FILE *out = o->out;
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<testsuites name=\"wref-check\" tests=\"%zu\" failures=\"%zu\">\n",
            m->ngroups, m->ngroups);
    for (size_t k = 0; k < report_nkinds; k++) {
        size_t n = count_kind(m, &report_kinds[k]);
        if (!n)
            continue;
        fprintf(out, "  <testsuite name=\"%s\" tests=\"%zu\" failures=\"%zu\" errors=\"0\">\n",
                report_kinds[k].id, n, n);
        for (size_t i = 0; i < m->ngroups; i++)
            if (m->groups[i].occ[0]->kind == &report_kinds[k])
                write_case(out, m, &m->groups[i]);
        fputs("  </testsuite>\n", out);
    }
    fputs("</testsuites>\n", out);
    return 0;
}
