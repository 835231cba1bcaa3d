/* wref-check.c: run a program under the wref checker.
 *
 *   wref-check [options] [--] prog args...
 *   wref-check report [options] FILE|DIR|- ...   (tools/report/cli.c: read, merge, convert)
 *
 * Finds libwref-check.so, prepends it to LD_PRELOAD, merges the command-line options into
 * WREF_CHECK_OPTIONS and execvp()s the program in this very process (no fork), so the exit
 * status is the program's own, or the checker's exitcode when it had findings, and the
 * program's pid is the tool's pid (log files are <log_path>.<that pid>).
 *
 * Public surface only: the tool knows the checker through its documented environment
 * (LD_PRELOAD, WREF_CHECK_OPTIONS and its "name=value" syntax), never through src/.
 *
 * Exit statuses of the tool itself: 0 for --help, --version, --print-env; 2 for a usage
 * error; 1 when the library cannot be found; 126/127 when the program cannot be run.
 * Compile definitions: WREF_VERSION (project version), WREF_INSTALL_LIBDIR (relative
 * CMAKE_INSTALL_LIBDIR), WREF_INSTALL_FULL_LIBDIR (absolute). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "python_env.h"
#include "report/model.h"

#ifndef WREF_VERSION
#define WREF_VERSION "unknown"
#endif
#ifndef WREF_INSTALL_LIBDIR
#define WREF_INSTALL_LIBDIR "lib"
#endif
#ifndef WREF_INSTALL_FULL_LIBDIR
#define WREF_INSTALL_FULL_LIBDIR "/usr/local/lib"
#endif

#define LIBRARY_NAME "libwref-check.so"
#define EXIT_USAGE 2

/* ---- the option table ----------------------------------------------------------------------
 * One row per dedicated flag. `key` is the checker option it sets (options.def spelling);
 * the flag is the key with '_' written as '-'. Value checks here are syntax only; ranges are
 * the checker's (it warns about a bad value and keeps its default). */
enum vtype { V_BOOL, V_INT, V_UINT, V_ENUM, V_PATH };

struct flag {
    const char *key;
    enum vtype type;
    const char *values;   /* V_ENUM: '|'-separated; otherwise the metavariable for --help */
    const char *help;
};

static const struct flag flags[] = {
    {"halt_on_error", V_BOOL, "0|1",
     "Exit with the exitcode at the first finding instead of reporting each one and going on."},
    {"exitcode", V_INT, "N",
     "Exit status of a program that had findings (0 to 255; default 23)."},
    {"log_path", V_PATH, "P",
     "Write reports to P.<pid> instead of stderr ('stderr' and 'stdout' name those streams). "
     "A relative P is made absolute here, so a program that changes directory still writes "
     "where you asked."},
    {"color", V_ENUM, "auto|always|never",
     "Colored reports: auto (default; when the report goes to a terminal), always or never."},
    {"report", V_ENUM, "text|json|text,json|json,text",
     "Report formats: text (default; the human report, to the log path) and/or json "
     "(docs/report-schema.json, written to <log-path>.<pid>.json, or ./wref-check.<pid>.json "
     "when the log path is not a path prefix). Read JSON reports with 'wref-check report'."},
    {"suppressions", V_PATH, "FILE",
     "Suppressions file: lines kind:pattern, e.g. leak:legacy_cache_* or "
     "dangling-borrow:type=Widget ('wref-check report --gen-suppressions' writes them)."},
    {"print_suppressions", V_BOOL, "0|1",
     "At exit, print the suppressions that matched and how many findings each silenced (default 1)."},
    {"leak_format", V_ENUM, "wref|lsan",
     "lsan: also print leaks in LeakSanitizer's shape, for ctest -T memcheck with "
     "CTEST_MEMORYCHECK_TYPE=LeakSanitizer (LSAN_OPTIONS=log_path is then honoured)."},
    {"flush_on_signal", V_BOOL, "0|1",
     "On SIGTERM, SIGINT or SIGHUP (unless the program handles it), run the exit-time work "
     "(leak census, summary, JSON complete=true) before dying by the signal (default 0)."},
    {"leak_check", V_BOOL, "0|1",
     "At exit, report objects still alive and callbacks that never ran (default 1)."},
    {"quarantine_mb", V_UINT, "N",
     "Megabytes of freed objects kept poisoned and unreused to catch use after free "
     "(default 64; 0 disables the quarantine)."},
    {"guard", V_ENUM, "none|sample|all",
     "Put objects on their own page, made inaccessible when freed, so a raw access through a "
     "stale pointer faults: none (default), sample (one object in sample-rate) or all."},
    {"sample_rate", V_UINT, "N", "With --guard=sample, one object in N gets a guard page (default 100)."},
    {"stack_depth", V_UINT, "N", "Frames kept per recorded backtrace (1 to 64; default 16)."},
    {"fast_unwind", V_BOOL, "0|1",
     "1: unwind by frame pointers, falling back to libunwind (default); 0: always libunwind."},
    {"verbosity", V_INT, "N",
     "Diagnostics about the checker itself: 0 none (default), 1 startup and statistics, 2 more."},
};
#define NFLAGS (sizeof flags / sizeof flags[0])

/* ---- small helpers -------------------------------------------------------------------------- */

static void die(int status, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void die(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("wref-check: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(status);
}

static void usage_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("wref-check: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("; see wref-check --help\n", stderr);
    exit(EXIT_USAGE);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die(EXIT_FAILURE, "out of memory");
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

/* Returns a new string: a, then b (either may be NULL for ""). */
static char *concat(const char *a, const char *b)
{
    a = a ? a : "";
    b = b ? b : "";
    size_t la = strlen(a), lb = strlen(b);
    char *s = xmalloc(la + lb + 1);
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

/* Returns a new absolute spelling of `path` (cwd prepended when relative; symlinks and ".."
 * are kept as written). */
static char *absolute(const char *path)
{
    if (path[0] == '/')
        return xstrdup(path);
    char *cwd = getcwd(NULL, 0);
    if (!cwd)
        die(EXIT_FAILURE, "cannot get the current directory: %s", strerror(errno));
    char *dir = concat(cwd, "/");
    char *s = concat(dir, path);
    free(cwd);
    free(dir);
    return s;
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

/* ---- checker options --------------------------------------------------------------------- */

/* The options set on the command line, in order; a later setting of a key replaces an earlier
 * one in place. */
static struct setting {
    char *key;
    char *value;
} *settings;
static size_t nsettings;

static void set_option(const char *key, size_t key_len, const char *value)
{
    for (size_t i = 0; i < nsettings; i++) {
        if (strlen(settings[i].key) == key_len && memcmp(settings[i].key, key, key_len) == 0) {
            free(settings[i].value);
            settings[i].value = xstrdup(value);
            return;
        }
    }
    settings = realloc(settings, (nsettings + 1) * sizeof *settings);
    if (!settings)
        die(EXIT_FAILURE, "out of memory");
    char *k = xmalloc(key_len + 1);
    memcpy(k, key, key_len);
    k[key_len] = 0;
    settings[nsettings++] = (struct setting){k, xstrdup(value)};
}

/* The checker's separators between name=value items (its parser's, documented in help=1). */
static int is_separator(char c)
{
    return c == ':' || c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_decimal(const char *s, int allow_sign)
{
    if (allow_sign && (*s == '-' || *s == '+'))
        s++;
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static int in_list(const char *value, const char *list)
{
    size_t n = strlen(value);
    for (const char *p = list; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && memcmp(p, value, n) == 0)
            return 1;
        p += len + (bar ? 1 : 0);
    }
    return 0;
}

static void set_flag(const struct flag *f, const char *flagname, const char *value)
{
    switch (f->type) {
    case V_BOOL:
        if (strcmp(value, "0") && strcmp(value, "1"))
            usage_error("%s expects 0 or 1, not '%s'", flagname, value);
        break;
    case V_INT:
    case V_UINT:
        if (!is_decimal(value, f->type == V_INT))
            usage_error("%s expects %s, not '%s'", flagname,
                        f->type == V_INT ? "an integer" : "a non-negative integer", value);
        break;
    case V_ENUM:
        if (!in_list(value, f->values))
            usage_error("%s expects one of %s, not '%s'", flagname, f->values, value);
        break;
    case V_PATH:
        if (value[0] && strcmp(value, "stderr") && strcmp(value, "stdout")) {
            char *abs = absolute(value);
            set_option(f->key, strlen(f->key), abs);
            free(abs);
            return;
        }
        break;
    }
    set_option(f->key, strlen(f->key), value);
}

/* --option KEY=VALUE: any checker option, passed through unchecked ('-' in KEY becomes '_'). */
static void set_passthrough(const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        usage_error("--option expects KEY=VALUE, not '%s'", arg);
    size_t len = (size_t)(eq - arg);
    char *key = xmalloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        char c = arg[i] == '-' ? '_' : arg[i];
        if (is_separator(c) || c == '\'' || c == '"')
            usage_error("bad option name in --option '%s'", arg);
        key[i] = c;
    }
    key[len] = 0;
    set_option(key, len, eq + 1);
    free(key);
}

/* Appends `s` to the growing string *out (may be NULL). */
static void append(char **out, const char *s)
{
    char *t = concat(*out, s);
    free(*out);
    *out = t;
}

/* Appends key=value, quoting the value when it holds a separator or starts with a quote. */
static void append_item(char **out, const char *key, const char *value)
{
    if (*out && **out)
        append(out, ":");
    append(out, key);
    append(out, "=");
    int plain = value[0] != '"' && value[0] != '\'';
    for (const char *p = value; plain && *p; p++)
        plain = !is_separator(*p);
    if (plain) {
        append(out, value);
        return;
    }
    const char *quote = !strchr(value, '"') ? "\"" : !strchr(value, '\'') ? "'" : NULL;
    if (!quote)
        usage_error("the value of %s holds both kinds of quote and a separator, "
                    "which WREF_CHECK_OPTIONS cannot express", key);
    append(out, quote);
    append(out, value);
    append(out, quote);
}

/* Returns the WREF_CHECK_OPTIONS value for the program (NULL for none): the items of
 * `existing` whose name the command line does not set, verbatim and in order, then the
 * command line's. Items are split exactly as the checker splits them. */
static char *merge_options(const char *existing)
{
    char *out = NULL;
    const char *p = existing ? existing : "";
    for (;;) {
        while (is_separator(*p))
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && *p != '=' && !is_separator(*p))
            p++;
        size_t key_len = (size_t)(p - start);
        if (*p == '=') {
            p++;
            if (*p == '\'' || *p == '"') {
                char q = *p++;
                while (*p && *p != q)
                    p++;
                if (*p == q)
                    p++;
            } else {
                while (*p && !is_separator(*p))
                    p++;
            }
        }
        int overridden = 0;
        for (size_t i = 0; i < nsettings && !overridden; i++)
            overridden = strlen(settings[i].key) == key_len &&
                         memcmp(settings[i].key, start, key_len) == 0;
        if (overridden)
            continue;
        size_t len = (size_t)(p - start);
        char *item = xmalloc(len + 1);
        memcpy(item, start, len);
        item[len] = 0;
        if (out && *out)
            append(&out, ":");
        append(&out, item);
        free(item);
    }
    for (size_t i = 0; i < nsettings; i++)
        append_item(&out, settings[i].key, settings[i].value);
    return out;
}

/* ---- finding the library -------------------------------------------------------------------- */

/* Returns the directory holding this executable (from /proc/self/exe), or NULL. */
static char *exe_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return NULL;
    buf[n] = 0;
    char *slash = strrchr(buf, '/');
    if (!slash)
        return NULL;
    *slash = 0;
    return xstrdup(buf[0] ? buf : "/");
}

/* Returns `dir` without its last component ("/a/b" -> "/a"). /proc/self/exe has no symlinks
 * and no "..", so this is the real parent directory. */
static char *parent(const char *dir)
{
    char *s = xstrdup(dir);
    char *slash = strrchr(s, '/');
    if (slash && slash != s)
        *slash = 0;
    else
        strcpy(s, "/");
    return s;
}

static char *join(const char *dir, const char *rest)
{
    char *d = concat(dir, strcmp(dir, "/") ? "/" : "");
    char *s = concat(d, rest);
    free(d);
    return s;
}

/* Returns the absolute path of libwref-check.so or exits with the list of places tried. An
 * explicit choice (--library, WREF_CHECK_LIBRARY) that does not exist is an error, not a
 * reason to fall back to another copy. */
static char *find_library(const char *option)
{
    if (option) {
        if (!is_file(option))
            die(EXIT_FAILURE, "--library %s: %s", option,
                access(option, F_OK) ? strerror(errno) : "not a readable file");
        return absolute(option);
    }
    const char *env = getenv("WREF_CHECK_LIBRARY");
    if (env && *env) {
        if (!is_file(env))
            die(EXIT_FAILURE, "WREF_CHECK_LIBRARY=%s: %s", env,
                access(env, F_OK) ? strerror(errno) : "not a readable file");
        return absolute(env);
    }

    char *tried[3];
    size_t ntried = 0;
    char *dir = exe_dir();
    if (dir) {
        char *up = parent(dir);
        tried[ntried++] = join(up, "src/" LIBRARY_NAME);                          /* build tree */
        tried[ntried++] = join(up, WREF_INSTALL_LIBDIR "/" LIBRARY_NAME);         /* relocated install */
        free(up);
        free(dir);
    }
    tried[ntried++] = xstrdup(WREF_INSTALL_FULL_LIBDIR "/" LIBRARY_NAME);        /* configured install */
    for (size_t i = 0; i < ntried; i++) {
        if (is_file(tried[i])) {
            char *found = tried[i];
            for (size_t j = 0; j < ntried; j++)
                if (j != i)
                    free(tried[j]);
            return found;
        }
    }
    fputs("wref-check: cannot find " LIBRARY_NAME "; looked in:\n"
          "  --library PATH (not given)\n"
          "  $WREF_CHECK_LIBRARY (not set)\n", stderr);
    for (size_t i = 0; i < ntried; i++)
        fprintf(stderr, "  %s\n", tried[i]);
    fputs("use --library PATH or set WREF_CHECK_LIBRARY\n", stderr);
    exit(EXIT_FAILURE);
}

/* Returns the LD_PRELOAD value: `lib` first, then the existing entries (':' or ' '
 * separated, as ld.so reads them) except other spellings of `lib` itself. */
static char *merge_preload(const char *lib, const char *existing)
{
    if (strpbrk(lib, ": "))
        die(EXIT_FAILURE, "cannot preload '%s': LD_PRELOAD cannot hold a path with ':' or ' '", lib);
    char *real_lib = realpath(lib, NULL);
    char *out = xstrdup(lib);
    const char *p = existing ? existing : "";
    while (*p) {
        size_t len = strcspn(p, ": ");
        if (len) {
            char *entry = xmalloc(len + 1);
            memcpy(entry, p, len);
            entry[len] = 0;
            char *real = realpath(entry, NULL);
            int same = !strcmp(entry, lib) || (real && real_lib && !strcmp(real, real_lib));
            if (!same) {
                append(&out, ":");
                append(&out, entry);
            }
            free(real);
            free(entry);
        }
        p += len;
        if (*p)
            p++;
    }
    free(real_lib);
    return out;
}

/* ---- help ------------------------------------------------------------------------------------ */

/* Prints `text` wrapped at 78 columns, every line indented by `indent` spaces. */
static void print_wrapped(const char *text, int indent)
{
    int col = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t word = strcspn(p, " ");
        if (!word)
            break;
        if (col > indent && col + 1 + (int)word > 78) {
            putchar('\n');
            col = 0;
        }
        if (col == 0) {
            printf("%*s", indent, "");
            col = indent;
        } else {
            putchar(' ');
            col++;
        }
        printf("%.*s", (int)word, p);
        col += (int)word;
        p += word;
    }
    if (col)
        putchar('\n');
}

static void flag_name(char *buf, size_t cap, const char *key)
{
    snprintf(buf, cap, "--%s", key);
    for (char *c = buf; *c; c++)
        if (*c == '_')
            *c = '-';
}

static void print_help(void)
{
    printf("Usage: wref-check [options] [--] program [args...]\n"
           "       wref-check report [options] FILE|DIR|- ...   (see wref-check report --help)\n\n");
    print_wrapped("Runs program with the wref checker (libwref-check.so) preloaded: sets "
                  "LD_PRELOAD and WREF_CHECK_OPTIONS, then executes the program in place of "
                  "this process. The exit status is the program's, or the checker's exitcode "
                  "(23 unless --exitcode) when it reported findings. Options end at '--' or at "
                  "the first argument that does not start with '-'.", 0);
    printf("\nChecker options (each sets the checker option of the same name, '-' for '_'):\n");
    for (size_t i = 0; i < NFLAGS; i++) {
        const struct flag *f = &flags[i];
        char name[64];
        flag_name(name, sizeof name, f->key);
        if (f->type == V_BOOL)
            printf("  %s[=0|1], --no-%s\n", name, name + 2);
        else
            printf("  %s=%s\n", name, f->values);
        print_wrapped(f->help, 6);
    }
    printf("  --option KEY=VALUE\n");
    print_wrapped("Set any checker option, passed through unchecked (KEY as in WREF_CHECK_OPTIONS; "
                  "'-' in KEY is read as '_'). Options without a flag of their own: "
                  "print_summary (0|1), help (1 prints the checker's option table). "
                  "Repeatable.", 6);
    printf("\nTool options:\n");
    printf("  --library PATH\n");
    print_wrapped("Preload this libwref-check.so. Otherwise: $WREF_CHECK_LIBRARY, then "
                  "TOOLDIR/../src/" LIBRARY_NAME " (build tree), TOOLDIR/../"
                  WREF_INSTALL_LIBDIR "/" LIBRARY_NAME ", " WREF_INSTALL_FULL_LIBDIR "/"
                  LIBRARY_NAME ".", 6);
    printf("  --print-env\n");
    print_wrapped("Print the LD_PRELOAD and WREF_CHECK_OPTIONS the program would get and exit 0 "
                  "(no program needed).", 6);
    printf("  -h, --help\n");
    print_wrapped("Print this help and exit 0.", 6);
    printf("  --version\n");
    print_wrapped("Print the version and exit 0.", 6);
    putchar('\n');
    print_wrapped("Valued options take --name=VALUE or --name VALUE. WREF_CHECK_OPTIONS already "
                  "in the environment is kept; the command line wins for the names it sets.", 0);
    printf("\nExit status: the program's; the checker's exitcode after findings; 1 if the\n"
           "library is not found; 2 for a usage error; 126 if the program cannot be\n"
           "executed; 127 if it is not found.\n");
    printf("\nExample: wref-check --halt-on-error --log-path=/tmp/wref -- ./mytest -v\n");
}

/* ---- printing the environment -------------------------------------------------------------- */

/* Prints NAME=value, single-quoting the value when a POSIX shell would need it. */
static void print_assignment(const char *name, const char *value)
{
    static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                               "/._-+:,=@%";
    if (value[0] && strspn(value, safe) == strlen(value)) {
        printf("%s=%s\n", name, value);
        return;
    }
    printf("%s='", name);
    for (const char *p = value; *p; p++) {
        if (*p == '\'')
            fputs("'\\''", stdout);
        else
            putchar(*p);
    }
    printf("'\n");
}

/* ---- main ------------------------------------------------------------------------------------ */

static const struct flag *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < NFLAGS; i++) {
        char buf[64];
        flag_name(buf, sizeof buf, flags[i].key);
        if (strlen(buf + 2) == len && memcmp(buf + 2, name, len) == 0)
            return &flags[i];
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *library = NULL;
    int print_env = 0;
    int i = 1;

    if (argc > 1 && !strcmp(argv[1], "report"))
        return report_main(argc - 1, argv + 1);

    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--")) {
            i++;
            break;
        }
        if (arg[0] != '-' || !arg[1])
            break;   /* the program */
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            print_help();
            return 0;
        }
        if (!strcmp(arg, "--version")) {
            printf("wref-check %s\n", WREF_VERSION);
            return 0;
        }
        if (arg[1] != '-')
            usage_error("unknown option '%s'", arg);

        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const char *value = eq ? eq + 1 : NULL;

        if (name_len == 9 && !memcmp(name, "print-env", 9) && !value) {
            print_env = 1;
            continue;
        }

        /* --no-<bool flag> */
        if (name_len > 3 && !memcmp(name, "no-", 3)) {
            const struct flag *f = find_flag(name + 3, name_len - 3);
            if (f && f->type == V_BOOL) {
                if (value)
                    usage_error("%.*s takes no value", (int)(name_len + 2), arg);
                set_flag(f, arg, "0");
                continue;
            }
        }

        const struct flag *f = find_flag(name, name_len);
        int is_library = name_len == 7 && !memcmp(name, "library", 7);
        int is_option = name_len == 6 && !memcmp(name, "option", 6);
        if (!f && !is_library && !is_option)
            usage_error("unknown option '%.*s'", (int)(name_len + 2), arg);

        char flagname[64];
        snprintf(flagname, sizeof flagname, "%.*s", (int)(name_len + 2), arg);
        if (!value && f && f->type == V_BOOL)
            value = "1";   /* a bare boolean flag; it never takes the next argument */
        if (!value) {
            if (i + 1 >= argc)
                usage_error("%s needs a value", flagname);
            value = argv[++i];
        }
        if (is_library) {
            if (!*value)
                usage_error("--library needs a path");
            library = value;
        } else if (is_option) {
            set_passthrough(value);
        } else {
            set_flag(f, flagname, value);
        }
    }

    if (!print_env && i >= argc)
        usage_error("no program to run");

    char *lib = find_library(library);
    char *preload = merge_preload(lib, getenv("LD_PRELOAD"));
    char *options = merge_options(getenv("WREF_CHECK_OPTIONS"));

    /* A CPython program also gets the rtld-audit module (docs/python.md). */
    int cpython = i < argc && wref_tool_is_cpython(argv[i]);
    if (print_env) {
        print_assignment("LD_PRELOAD", preload);
        if (cpython)
            (void)wref_tool_python_env(lib, 1);
        if (options && *options)
            print_assignment("WREF_CHECK_OPTIONS", options);
        return fflush(stdout) == 0 ? 0 : 1;
    }

    if (setenv("LD_PRELOAD", preload, 1) != 0 ||
        (options && *options && setenv("WREF_CHECK_OPTIONS", options, 1) != 0))
        die(EXIT_FAILURE, "cannot set the environment: %s", strerror(errno));
    if (cpython)
        (void)wref_tool_python_env(lib, 0);   /* missing: said once, the program still runs */

    fflush(NULL);
    execvp(argv[i], argv + i);
    int err = errno;
    fprintf(stderr, "wref-check: cannot run '%s': %s\n", argv[i], strerror(err));
    return err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG || err == ELOOP ? 127 : 126;
}
