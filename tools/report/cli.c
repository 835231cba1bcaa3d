/* cli.c: `wref-check report [options] FILE|DIR|- ...` (docs/report-tool.md).
 *
 * Contract: loads every input (all or nothing), merges, writes one format to stdout or -o,
 * and returns 0 without findings, 1 with findings (0 with --exit-zero), 2 for a usage error,
 * an unreadable or invalid input, or an output that cannot be written. */
#include "model.h"

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
    const char *output, *color, *source_root;
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
           "  --gen-suppressions   print suppression entries (kind:function) for each finding\n"
           "                       instead of a report\n"
           "  --exit-zero          exit 0 even when there are findings\n"
           "  -h, --help           print this help and exit 0\n\n"
           "Exit status: 0 no findings; 1 findings (unless --exit-zero); 2 usage error,\n"
           "unreadable or invalid input, or output that cannot be written.\n");
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
                   (m = valued(argv, argc, &i, "--output", &v)) || (m = valued(argv, argc, &i, "-o", &v))) {
            if (m < 0)
                return usage("%s needs a value", arg);
            const char **slot = arg[2] == 'f' ? &fmt : arg[2] == 'c' ? &a->color
                                : arg[2] == 's' ? &a->source_root : &a->output;
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

/* Returns the absolute spelling of `dir` without trailing '/' (malloc'ed). */
static char *absolute_dir(const char *dir)
{
    char cwd[PATH_MAX];
    char *s;
    if (dir[0] == '/' || !getcwd(cwd, sizeof cwd))
        s = report_xstrdup(dir);
    else if (asprintf(&s, "%s/%s", cwd, dir) < 0)
        s = report_xstrdup(dir);
    size_t n = strlen(s);
    while (n > 1 && s[n - 1] == '/')
        s[--n] = 0;
    return s;
}

static int close_output(FILE *out, const char *path)
{
    int bad = ferror(out);
    if (out == stdout ? fflush(out) : fclose(out))
        bad = 1;
    if (bad)
        report_warn("%s: write error: %s", path ? path : "<stdout>", strerror(errno));
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
        report_warn("--format=symbolize with %zu inputs needs -o DIR (an existing directory)", n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char *path = NULL;
        const char *base = strcmp(reports[i]->name, "<stdin>") ? report_basename(reports[i]->name) : "stdin.json";
        if (to_dir && asprintf(&path, "%s/%s", output, base) < 0)
            return -1;
        const char *target = to_dir ? path : output;
        FILE *out = target ? fopen(target, "w") : stdout;
        if (!out) {
            report_warn("%s: %s", target, strerror(errno));
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

static int write_report(const struct args *a, const struct merged *m)
{
    struct out_opts o = {0};
    o.out = a->output ? fopen(a->output, "w") : stdout;
    if (!o.out) {
        report_warn("%s: %s", a->output, strerror(errno));
        return -1;
    }
    const char *color = a->color ? a->color : "auto";
    o.color = !strcmp(color, "always") || (!strcmp(color, "auto") && !a->output && isatty(1));
    char *root = a->source_root ? absolute_dir(a->source_root) : NULL;
    o.source_root = root;
    writer w = a->gen_suppressions ? report_write_suppressions : a->format->write;
    int rc = w(m, &o);
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
    for (int i = 0; !status && i < a.ninputs; i++)
        if (report_load_path(a.inputs[i], &reports, &n))
            status = REPORT_EXIT_ERROR;
    if (!status) {
        struct merged m;
        report_merge(&m, reports, n);
        int rc = a.format->write || a.gen_suppressions ? write_report(&a, &m)
                                                       : report_symbolize(reports, n) ||
                                                             write_symbolized(reports, n, a.output);
        status = rc ? REPORT_EXIT_ERROR
                    : m.noccurrences && !a.exit_zero ? REPORT_EXIT_FINDINGS : REPORT_EXIT_CLEAN;
        report_merged_free(&m);
    }
    for (size_t i = 0; i < n; i++)
        report_free(reports[i]);
    free(reports);
    free(a.inputs);
    return status;
}
