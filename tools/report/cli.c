/* cli.c: `wref-check report [options] FILE|DIR|- ...` (docs/report-tool.md).
 *
 * Contract: loads every input; one that cannot be read or is not a valid report is skipped
 * with a warning naming it, and the others are still merged and written. Writes one format
 * to stdout or -o. Exit status (REPORT_EXIT_*, docs/report-tool.md):
 *   0  every input read; no findings (or --exit-zero, --gen-suppressions, symbolize)
 *   1  every input read; findings, for the report formats only (not with --exit-zero)
 *   2  usage error; no report at all (nothing given could be read, an empty directory);
 *      output that cannot be written
 *   3  some inputs skipped; the report of the others was written (wins over 0 and 1) */
#include "model.h"
#include "../install_dir.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef int (*writer)(const struct merged *, const struct out_opts *);

static const struct format {
    const char *name;
    writer write;
    const char *help;
} formats[] = {
    {"text", report_write_text, "human report grouped by fingerprint (default)"},
    {"sarif", report_write_sarif, "SARIF 2.1.0 for code scanning"},
    {"junit", report_write_junit, "JUnit XML: a testsuite per kind, a failed testcase per finding"},
    {"github", report_write_github, "GitHub Actions annotations (::error / ::warning lines)"},
    {"dot", report_write_dot, "Graphviz graph of the objects alive at exit (leak_graph)"},
    {"svg", report_write_svg, "that graph drawn by Graphviz's dot -Tsvg"},
    {"json", report_write_json, "the merged, de-duplicated findings as JSON"},
    {"symbolize", NULL, "the input report(s) with function/file/line filled from DWARF"},
};
#define NFORMATS (sizeof formats / sizeof formats[0])

struct args {
    const struct format *format;
    const char *output, *color, *source_root, *help_uri_base, *information_uri;
    int exit_zero, gen_suppressions;
    char **inputs;
    int ninputs;
};

static void help(void)
{
    printf("Usage: wref-check report [options] FILE|DIR|- ...\n\n"
           "Reads JSON reports written by libwref-check (report=json), merges them,\n"
           "de-duplicates findings by fingerprint (kind + top 3 user frames) and writes one\n"
           "format. A DIR means every *.json in it; '-' reads stdin.\n\n"
           "Options:\n"
           "  --format=FORMAT      output format (default text):\n");
    for (size_t i = 0; i < NFORMATS; i++)
        printf("                         %-10s %s\n", formats[i].name, formats[i].help);
    printf("  -o, --output=FILE    write to FILE instead of stdout (symbolize with several\n"
           "                       inputs: an existing directory, one file per input)\n"
           "  --color=WHEN         text colours: auto (stdout is a terminal), always, never\n"
           "  --source-root=DIR    file paths under DIR are written relative to it (sarif:\n"
           "                       uriBaseId SRCROOT; github: file=; text)\n"
           "  --help-uri-base=URI  sarif: each rule's helpUri is URI#<kind> (URI: where\n"
           "                       docs/reports.md is published; empty: no helpUri).\n"
           "                       Default: file:// of this machine's reports.md, if any\n"
           "  --information-uri=URI  sarif: the tool's informationUri (empty: none).\n"
           "                       Default: file:// of this machine's wref-check.md, if any\n"
           "  --gen-suppressions   print suppression entries (kind:function) for each finding\n"
           "                       instead of a report (exit 0 whatever the findings)\n"
           "  --exit-zero          exit 0 even when there are findings\n"
           "  -h, --help           print this help and exit 0\n\n"
           "An input that cannot be read or is not a valid report is skipped with a warning\n"
           "naming it; the others are still merged and written.\n\n"
           "Exit status: 0 every input read, no findings; 1 findings (report formats only,\n"
           "unless --exit-zero; never for --gen-suppressions or --format=symbolize); 2 usage\n"
           "error, no report at all (e.g. an empty directory), or output that cannot be\n"
           "written; 3 some inputs were skipped (the rest was written).\n");
}

static int usage(const char *fmt, const char *arg)
{
    fputs("wref-check report: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("; see wref-check report --help\n", stderr);
    return REPORT_EXIT_ERROR;
}

/* Matches "--name=VALUE" or "--name VALUE" at argv[*i]; stores VALUE. 1: matched, 0: not,
 * -1: value missing. */
static int valued(char **argv, int argc, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n))
        return 0;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n])
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

static int parse(int argc, char **argv, struct args *a)
{
    const char *fmt = "text", *v = NULL;
    a->inputs = report_xcalloc((size_t)argc, sizeof *a->inputs);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int m;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            help();
            return -1;
        } else if (!strcmp(arg, "--exit-zero")) {
            a->exit_zero = 1;
        } else if (!strcmp(arg, "--gen-suppressions")) {
            a->gen_suppressions = 1;
        } else if ((m = valued(argv, argc, &i, "--format", &v)) || (m = valued(argv, argc, &i, "--color", &v)) ||
                   (m = valued(argv, argc, &i, "--source-root", &v)) ||
                   (m = valued(argv, argc, &i, "--help-uri-base", &v)) ||
                   (m = valued(argv, argc, &i, "--information-uri", &v)) ||
                   (m = valued(argv, argc, &i, "--output", &v)) || (m = valued(argv, argc, &i, "-o", &v))) {
            if (m < 0)
                return usage("%s needs a value", arg);
            const char **slot = arg[2] == 'f' ? &fmt : arg[2] == 'c' ? &a->color
                                : arg[2] == 's' ? &a->source_root
                                : arg[2] == 'h' ? &a->help_uri_base
                                : arg[2] == 'i' ? &a->information_uri : &a->output;
            *slot = v;
        } else if (arg[0] == '-' && arg[1]) {
            return usage("unknown option '%s'", arg);
        } else {
            a->inputs[a->ninputs++] = argv[i];
        }
    }
    for (size_t k = 0; k < NFORMATS; k++)
        if (!strcmp(formats[k].name, fmt))
            a->format = &formats[k];
    if (!a->format)
        return usage("unknown format '%s' (text, sarif, junit, github, dot, svg, json, symbolize)", fmt);
    if (a->color && strcmp(a->color, "auto") && strcmp(a->color, "always") && strcmp(a->color, "never"))
        return usage("--color expects auto, always or never, not '%s'", a->color);
    if (!a->ninputs)
        return usage("%sno report given", "");
    return 0;
}

/* Returns the absolute, normalized spelling of `dir` without trailing '/' (malloc'ed). */
static char *absolute_dir(const char *dir)
{
    char cwd[PATH_MAX];
    char *s = dir[0] == '/' || !getcwd(cwd, sizeof cwd) ? report_xstrdup(dir) : report_join(cwd, dir);
    char *n = report_normalize(s);
    free(s);
    return n;
}

static int close_output(FILE *out, const char *path)
{
    int bad = ferror(out);
    if (out == stdout ? fflush(out) : fclose(out))
        bad = 1;
    if (bad)
        report_error("%s: write error: %s", path ? path : "<stdout>", strerror(errno));
    return bad ? -1 : 0;
}

static int dump(json_t *root, FILE *out, const char *path)
{
    int rc = json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', out);
    return close_output(out, path) || rc ? -1 : 0;
}

/* symbolize: one input to -o FILE or stdout; several into the directory -o. */
static int write_symbolized(struct report **reports, size_t n, const char *output)
{
    struct stat st;
    int to_dir = output && stat(output, &st) == 0 && S_ISDIR(st.st_mode);
    if (n > 1 && !to_dir) {
        report_error("--format=symbolize with %zu inputs needs -o DIR (an existing directory)", n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *base = strcmp(reports[i]->name, "<stdin>") ? report_basename(reports[i]->name) : "stdin.json";
        char *path = to_dir ? report_join(output, base) : NULL;
        const char *target = to_dir ? path : output;
        FILE *out = target ? fopen(target, "w") : stdout;
        if (!out) {
            report_error("%s: %s", target, strerror(errno));
            free(path);
            return -1;
        }
        int rc = dump(reports[i]->root, out, target);
        free(path);
        if (rc)
            return -1;
    }
    return 0;
}

#ifndef WREF_BUILD_TOOLS_DIR
#define WREF_BUILD_TOOLS_DIR ""
#endif
#ifndef WREF_SOURCE_DOCS_DIR
#define WREF_SOURCE_DOCS_DIR ""
#endif
#ifndef WREF_INSTALL_DOCDIR
#define WREF_INSTALL_DOCDIR "share/doc/wref"
#endif
#ifndef WREF_INSTALL_FULL_DOCDIR
#define WREF_INSTALL_FULL_DOCDIR "/usr/local/share/doc/wref"
#endif

/* The directory holding this tool's documentation (reports.md, wref-check.md) on this
 * machine, or NULL: the source tree's docs/ for the build tree's tool, else
 * TOOLDIR/../<docdir> (an install moved as a whole), else the configured install docdir. A
 * candidate counts only when its reports.md exists, so a SARIF link never points at nothing.
 * Normalized (it becomes a URI); malloc'ed. */
static char *docs_dir(void)
{
    char *dir = wref_tool_install_dir(WREF_BUILD_TOOLS_DIR, WREF_SOURCE_DOCS_DIR, WREF_INSTALL_DOCDIR,
                                      WREF_INSTALL_FULL_DOCDIR, "reports.md");
    char *norm = dir ? report_normalize(dir) : NULL;
    free(dir);
    return norm;
}

/* "file://" + the percent-encoded dir + "/" + name (malloc'ed). */
static char *doc_uri(const char *dir, const char *name)
{
    char *path = report_join(dir, name);
    char *uri = report_uri_encode("file://", path);
    free(path);
    return uri;
}

static int write_report(const struct args *a, const struct merged *m)
{
    struct out_opts o = {0};
    o.out = a->output ? fopen(a->output, "w") : stdout;
    if (!o.out) {
        report_error("%s: %s", a->output, strerror(errno));
        return -1;
    }
    const char *color = a->color ? a->color : "auto";
    o.color = !strcmp(color, "always") || (!strcmp(color, "auto") && !a->output && isatty(1));
    char *root = a->source_root ? absolute_dir(a->source_root) : NULL;
    o.source_root = root;
    /* SARIF links: the options; by default this machine's copy of the docs, when there is one. */
    char *docs = NULL, *help = NULL, *info = NULL;
    if (!a->gen_suppressions && a->format->write == report_write_sarif &&
        (!a->help_uri_base || !a->information_uri) && (docs = docs_dir())) {
        help = a->help_uri_base ? NULL : doc_uri(docs, "reports.md");
        info = a->information_uri ? NULL : doc_uri(docs, "wref-check.md");
    }
    o.help_uri_base = a->help_uri_base ? (a->help_uri_base[0] ? a->help_uri_base : NULL) : help;
    o.information_uri = a->information_uri ? (a->information_uri[0] ? a->information_uri : NULL) : info;
    writer w = a->gen_suppressions ? report_write_suppressions : a->format->write;
    int rc = w(m, &o);
    free(docs);
    free(help);
    free(info);
    free(root);
    return close_output(o.out, a->output) || rc ? -1 : 0;
}

int report_main(int argc, char **argv)
{
    struct args a = {0};
    int status = parse(argc, argv, &a);
    if (status < 0) {   /* --help */
        free(a.inputs);
        return 0;
    }
    struct report **reports = NULL;
    size_t n = 0;
    int skipped = 0;
    for (int i = 0; !status && i < a.ninputs; i++)
        skipped += report_load_path(a.inputs[i], &reports, &n);
    if (!status && n == 0) {
        if (skipped)
            report_error("no report could be read (%d input%s skipped); nothing written", skipped,
                         skipped == 1 ? "" : "s");
        else
            report_error("no report found in %s; nothing written (were the reports written? "
                         "report=json and log_path decide where)", a.ninputs == 1 ? a.inputs[0] : "the inputs");
        status = REPORT_EXIT_ERROR;
    }
    if (!status) {
        struct merged m;
        report_merge(&m, reports, n);
        int is_report = a.format->write && !a.gen_suppressions;
        int rc = a.format->write || a.gen_suppressions ? write_report(&a, &m)
                                                       : report_symbolize(reports, n) ||
                                                             write_symbolized(reports, n, a.output);
        status = rc        ? REPORT_EXIT_ERROR
                 : skipped ? REPORT_EXIT_SKIPPED
                 : is_report && m.noccurrences && !a.exit_zero ? REPORT_EXIT_FINDINGS
                                                                : REPORT_EXIT_CLEAN;
        if (skipped && !rc)
            report_warning("%d input%s skipped; the report holds the other %zu (exit status %d)",
                           skipped, skipped == 1 ? " was" : "s were", n, REPORT_EXIT_SKIPPED);
        report_merged_free(&m);
    }
    for (size_t i = 0; i < n; i++)
        report_free(reports[i]);
    free(reports);
    free(a.inputs);
    return status;
}
