/* fuzz_report.c: `wref-check report` on hostile JSON.
 *
 * The input is one report file. wref_report_load_buffer must never crash, leak or read out of
 * bounds on it; when it accepts it, the report is merged and written in every format that
 * runs in-process (text, sarif, junit, github, dot, json, suppressions) to /dev/null, so the
 * writers meet whatever the loader let through. svg (runs Graphviz) and symbolize (opens the
 * files the report names) are left out. */
#include "../../tools/report/model.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    if (!devnull && !(devnull = fopen("/dev/null", "w")))
        abort();
    struct report *r = NULL;
    char err[512];
    if (wref_report_load_buffer((const char *)data, size, "fuzz.json", &r, err, sizeof err) != 0) {
        if (!err[0])
            abort();   /* a rejection always says why */
        return 0;
    }
    struct report *reports[1] = {r};
    struct merged m;
    report_merge(&m, reports, 1);
    struct out_opts o = {.out = devnull, .color = 1, .source_root = "/src", .help_uri_base = "/doc"};
    int (*const writers[])(const struct merged *, const struct out_opts *) = {
        report_write_text, report_write_sarif, report_write_junit, report_write_github,
        report_write_dot,  report_write_json,  report_write_suppressions};
    for (size_t i = 0; i < sizeof writers / sizeof writers[0]; i++)
        (void)writers[i](&m, &o);
    report_merged_free(&m);
    report_free(r);
    return 0;
}
