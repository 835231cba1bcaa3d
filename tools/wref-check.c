/* wref-check.c: run a program under the wref checker.
 *
 *   wref-check [options] [--] prog args...
 *   wref-check report [options] FILE|DIR|- ...   (tools/report/cli.c: read, merge, convert)
 *
 * Finds libwref-check.so, prepends it to LD_PRELOAD, merges the command-line options into
 * WREF_CHECK_OPTIONS and execvp()s the program in this very process (no fork), so the exit
 * status is the program's own, or the checker's exitcode when it had findings, and the
 * program's pid is the tool's pid (log files are <log_path>.<that pid>). Before that it reads
 * the program's ELF dynamic section: an ASan runtime it needs goes first in LD_PRELOAD, and a
 * libwref.so.N it needs is preloaded from next to the checker library; and the checker
 * library's own: the sanitizer runtime of a sanitizer-built checker goes first as well.
 *
 * The tool talks to the checker through its documented environment (LD_PRELOAD,
 * WREF_CHECK_OPTIONS and its "name=value" syntax). The one piece of src/ it shares is the
 * option table and its parser (src/check/engine/options.def, options.c): the flags, --help, the man
 * page (--help-man) and the value checks come from them, so they cannot drift apart.
 *
 * Exit statuses of the tool itself: 0 for --help, --help-man, --version, --print-env; 2 for a
 * usage error; 1 when the library cannot be found; 126/127 when the program cannot be run.
 * Warnings (the run goes on) are one line "==PID==WARNING: wref-check: ...", as the checker's.
 * Compile definitions: WREF_VERSION (project version), WREF_INSTALL_LIBDIR (relative
 * CMAKE_INSTALL_LIBDIR), WREF_INSTALL_FULL_LIBDIR (absolute). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check/engine/options.h"
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
 * The checker's own table, src/check/engine/options.def, gives every row: one flag per option (the
 * name with '_' written as '-'; both spellings are accepted), except `help`, which is the
 * tool's own --help (the checker's table is --option help=1). A value is judged by the
 * checker's own parser (wref__options_parse, src/check/engine/options.c, compiled into the tool), so
 * a flag accepts exactly what WREF_CHECK_OPTIONS accepts, and the tool refuses before running
 * anything what the checker would only warn about. */
enum otype { T_bool, T_int, T_uint, T_size, T_string, T_enum };

struct flag {
    const char *key;       /* the checker option, options.def spelling */
    enum otype type;
    const char *def;       /* the default as written in options.def */
    const char *help;      /* options.def's help sentence */
    size_t offset;         /* of its field in struct wref__options */
};

static const struct flag flags[] = {
#define WREF__OPTION(type, name, default_, help) {#name, T_##type, #default_, help, offsetof(struct wref__options, name)},
#include "check/engine/options.def"
};
#define NFLAGS (sizeof flags / sizeof flags[0])

/* String options that name a file: a relative value is made absolute here, so a program that
 * changes directory still finds it. log_path's "stderr" and "stdout" are stream names. */
static int is_path_option(const char *key)
{
    return !strcmp(key, "log_path") || !strcmp(key, "suppressions");
}

/* The only option the tool does not offer as a flag of its own. */
static int has_flag(const struct flag *f)
{
    return strcmp(f->key, "help") != 0;
}

/* '|'-separated values of an enum option, into buf. */
static void enum_list(const struct flag *f, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    const char *v;
    for (size_t i = 0; (v = wref__option_enum_value(f->key, i)) != NULL && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? "|" : "", v);
}

/* The default for --help and the man page: an enum's as its value name, the others as
 * options.def writes them. */
static const char *default_text(const struct flag *f)
{
    if (f->type != T_enum)
        return f->def;
    static struct wref__options defaults;
    wref__options_defaults(&defaults);
    return wref__option_value_name(*(const enum wref__option_value *)((const char *)&defaults + f->offset));
}

/* What the value may be (for --help, the man page and the refusal), into buf. */
static void expected_text(const struct flag *f, char *buf, size_t cap)
{
    const char *what = NULL;
    long long min, max;
    if (wref__option_range(f->key, &min, &max)) {
        snprintf(buf, cap, "%s from %lld to %lld", f->type == T_size ? "a size" : "an integer", min, max);
        return;
    }
    switch (f->type) {
    case T_bool: what = "0 or 1 (also true/false, yes/no)"; break;
    case T_int: what = "an integer"; break;
    case T_uint: what = "a non-negative integer"; break;
    case T_size: what = "a size in bytes (k, m, g suffixes)"; break;
    case T_string:
        if (!strcmp(f->key, "report"))
            what = "a comma-separated list of text and json";
        else
            what = is_path_option(f->key) ? "a path" : "a string";
        break;
    case T_enum: {
        char list[256];
        enum_list(f, list, sizeof list);
        snprintf(buf, cap, "one of %s", list);
        return;
    }
    }
    snprintf(buf, cap, "%s", what);
}

/* The metavariable of a valued flag ("N", "auto|always|never", "PATH"). */
static void metavar(const struct flag *f, char *buf, size_t cap)
{
    switch (f->type) {
    case T_bool: snprintf(buf, cap, "0|1"); return;
    case T_int:
    case T_uint: snprintf(buf, cap, "N"); return;
    case T_size: snprintf(buf, cap, "SIZE"); return;
    case T_enum: enum_list(f, buf, cap); return;
    case T_string:
        snprintf(buf, cap, "%s", !strcmp(f->key, "report") ? "text|json|text,json"
                                 : is_path_option(f->key) ? "PATH" : "VALUE");
        return;
    }
}

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

/* "==PID==WARNING: wref-check: ...": the prefix of every warning, the tool's and the
 * checker's (the run goes on). */
static void tool_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void tool_warning(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "==%ld==WARNING: wref-check: ", (long)getpid());
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
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

/* Refuses (usage error, exit 2) a value the checker would not accept for `f`: the checker's
 * own parser judges "key=value", quoted as the tool will pass it. `shown` is the flag as the
 * user wrote it. */
static void check_value(const struct flag *f, const char *shown, const char *value)
{
    char *item = NULL;
    append_item(&item, f->key, value);
    static struct wref__options o;   /* ~5 KB of string fields: not on the stack */
    wref__options_defaults(&o);
    int bad = wref__options_parse(&o, item, NULL, NULL) != 0;
    free(item);
    if (!bad && !strcmp(f->key, "report")) {
        /* the checker's type is a string; its values are a list of formats */
        for (const char *p = value; *p && !bad;) {
            size_t n = strcspn(p, ",");
            bad = !((n == 4 && !memcmp(p, "text", 4)) || (n == 4 && !memcmp(p, "json", 4)));
            p += n + (p[n] == ',');
        }
        bad = bad || !*value;
    }
    if (bad) {
        char expected[320];
        expected_text(f, expected, sizeof expected);
        usage_error("bad value '%s' for %s: expected %s", value, shown, expected);
    }
}

static void set_flag(const struct flag *f, const char *flagname, const char *value)
{
    check_value(f, flagname, value);
    if (f->type == T_string && is_path_option(f->key) && value[0] && strcmp(value, "stderr") &&
        strcmp(value, "stdout")) {
        char *abs = absolute(value);
        set_option(f->key, strlen(f->key), abs);
        free(abs);
        return;
    }
    set_option(f->key, strlen(f->key), value);
}

/* Returns the row of `name` (name_len bytes, '-' or '_' between words), or NULL. */
static const struct flag *find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < NFLAGS; i++) {
        const char *k = flags[i].key;
        if (strlen(k) != len)
            continue;
        size_t j = 0;
        while (j < len && (name[j] == k[j] || (name[j] == '-' && k[j] == '_')))
            j++;
        if (j == len)
            return &flags[i];
    }
    return NULL;
}

/* --option KEY=VALUE: any checker option ('-' in KEY is read as '_'). A name of the table is
 * checked like its flag; an unknown name is passed on with a warning (a --library from
 * another version may know it; the checker warns about it again if not). */
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
    const struct flag *f = find_option(key, len);
    if (f) {
        char shown[160];
        snprintf(shown, sizeof shown, "--option %s", key);
        set_flag(f, shown, eq + 1);
    } else {
        tool_warning("--option %s: '%s' is not an option of this wref-check's checker "
                     "(wref-check --help lists them); passed on unchecked", arg, key);
        set_option(key, len, eq + 1);
    }
    free(key);
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

/* ---- what the program needs (its ELF dynamic section) ----------------------------------------- */

struct program_info {
    char *asan_soname;    /* DT_NEEDED libasan.so.N, or NULL */
    char *tsan_soname;    /* DT_NEEDED libtsan.so.N, or NULL */
    int asan_undefined;   /* __asan_init is referenced but not defined: ASan-instrumented */
    int elf_read;         /* the fields below come from a readable ELF file */
    int defines_capi;     /* PyWeakref_GetObject is defined in it: libpython is linked in */
    char *wref_soname;    /* DT_NEEDED libwref.so.N, or NULL */
};

static void program_info_free(struct program_info *pi)
{
    free(pi->asan_soname);
    free(pi->tsan_soname);
    free(pi->wref_soname);
    memset(pi, 0, sizeof *pi);
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Returns the file execvp would run for `name` (searching PATH when it has no '/'), or NULL. */
static char *resolve_program(const char *name)
{
    if (strchr(name, '/'))
        return xstrdup(name);
    const char *path = getenv("PATH");
    if (!path)
        path = "/bin:/usr/bin";
    for (const char *p = path;;) {
        size_t len = strcspn(p, ":");
        char *dir = xmalloc(len + 1);
        memcpy(dir, p, len);
        dir[len] = 0;
        char *cand = join(len ? dir : ".", name);
        free(dir);
        if (access(cand, X_OK) == 0 && is_file(cand))
            return cand;
        free(cand);
        if (!p[len])
            return NULL;
        p += len + 1;
    }
}

/* Fills *pi from the program's dynamic section and dynamic symbols. Anything that is not a
 * readable ELF file (a script, a missing file) leaves it empty: execvp reports the rest. */
static void inspect_program(const char *name, struct program_info *pi)
{
    memset(pi, 0, sizeof *pi);
    char *path = resolve_program(name);
    if (!path || elf_version(EV_CURRENT) == EV_NONE) {
        free(path);
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return;
    Elf *e = elf_begin(fd, ELF_C_READ, NULL);
    pi->elf_read = e && elf_kind(e) == ELF_K_ELF;
    for (Elf_Scn *scn = NULL; e && elf_kind(e) == ELF_K_ELF && (scn = elf_nextscn(e, scn));) {
        GElf_Shdr sh;
        Elf_Data *data;
        if (!gelf_getshdr(scn, &sh) || !(data = elf_getdata(scn, NULL)) || !sh.sh_entsize)
            continue;
        size_t n = sh.sh_size / sh.sh_entsize;
        if (sh.sh_type == SHT_DYNAMIC) {
            for (size_t k = 0; k < n; k++) {
                GElf_Dyn dyn;
                const char *needed;
                if (!gelf_getdyn(data, (int)k, &dyn) || dyn.d_tag != DT_NEEDED ||
                    !(needed = elf_strptr(e, sh.sh_link, dyn.d_un.d_val)))
                    continue;
                if (starts_with(needed, "libasan.so") && !pi->asan_soname)
                    pi->asan_soname = xstrdup(needed);
                if (starts_with(needed, "libtsan.so") && !pi->tsan_soname)
                    pi->tsan_soname = xstrdup(needed);
                if (starts_with(needed, "libwref.so") && !pi->wref_soname)
                    pi->wref_soname = xstrdup(needed);
            }
        } else if (sh.sh_type == SHT_DYNSYM) {
            for (size_t k = 0; k < n; k++) {
                GElf_Sym sym;
                const char *sname;
                if (!gelf_getsym(data, (int)k, &sym) || !(sname = elf_strptr(e, sh.sh_link, sym.st_name)))
                    continue;
                if (!strcmp(sname, "__asan_init") && sym.st_shndx == SHN_UNDEF)
                    pi->asan_undefined = 1;
                if (!strcmp(sname, "PyWeakref_GetObject") && sym.st_shndx != SHN_UNDEF)
                    pi->defines_capi = 1;
            }
        }
    }
    if (e)
        elf_end(e);
    close(fd);
}

/* ---- sanitizer runtimes ---------------------------------------------------------------------- */

static int is_asan_runtime(const char *entry)
{
    const char *slash = strrchr(entry, '/');
    return starts_with(slash ? slash + 1 : entry, "libasan.so");
}

static int is_sanitizer_runtime(const char *entry)
{
    const char *slash = strrchr(entry, '/');
    return is_asan_runtime(entry) || starts_with(slash ? slash + 1 : entry, "libtsan.so");
}

/* Memory size plus alignment of the PT_TLS segment among phdr[0..n), or 0. */
static size_t tls_of_phdrs(const ElfW(Phdr) *phdr, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (phdr[k].p_type == PT_TLS)
            return (size_t)(phdr[k].p_memsz + phdr[k].p_align);
    return 0;
}

struct loaded_lookup {
    const char *base;     /* basename looked for */
    size_t tls;           /* its PT_TLS when found loaded */
    int found;
    char libc_dir[PATH_MAX];
};

static int loaded_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct loaded_lookup *q = data;
    const char *name = info->dlpi_name, *slash = name ? strrchr(name, '/') : NULL;
    if (!slash)
        return 0;
    if (!strcmp(slash + 1, q->base)) {
        q->tls = tls_of_phdrs(info->dlpi_phdr, info->dlpi_phnum);
        q->found = 1;
        return 1;
    }
    if (!strcmp(slash + 1, "libc.so.6") && (size_t)(slash - name) < sizeof q->libc_dir)
        snprintf(q->libc_dir, sizeof q->libc_dir, "%.*s", (int)(slash - name), name);
    return 0;
}

/* The static TLS a sanitizer runtime needs (`entry` as in LD_PRELOAD: a path, or a soname that
 * ld.so looks up): its PT_TLS size. The file is the one loaded in this process when the tool
 * itself is built with that sanitizer, else the path given, else the soname in libc.so.6's
 * directory (where distributions put the GCC runtimes). Unknown: 1 MiB, above the largest
 * (GCC 12's libtsan.so.2: 768 KiB). Only a CPython program needs the number (python_env.h). */
static size_t runtime_static_tls(const char *entry)
{
    struct loaded_lookup q = {.base = strrchr(entry, '/') ? strrchr(entry, '/') + 1 : entry};
    dl_iterate_phdr(loaded_cb, &q);
    if (q.found)
        return q.tls;
    char *path = strchr(entry, '/') ? xstrdup(entry) : q.libc_dir[0] ? join(q.libc_dir, entry) : NULL;
    size_t tls = 1u << 20;
    int fd = path && elf_version(EV_CURRENT) != EV_NONE ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    free(path);
    if (fd < 0)
        return tls;
    Elf *e = elf_begin(fd, ELF_C_READ, NULL);
    size_t n = 0;
    if (e && elf_kind(e) == ELF_K_ELF && elf_getphdrnum(e, &n) == 0) {
        tls = 0;
        for (size_t k = 0; k < n; k++) {
            GElf_Phdr ph;
            if (gelf_getphdr(e, (int)k, &ph) && ph.p_type == PT_TLS)
                tls = (size_t)(ph.p_memsz + ph.p_align);
        }
    }
    if (e)
        elf_end(e);
    close(fd);
    return tls;
}

/* ---- LD_PRELOAD ----------------------------------------------------------------------------- */

static int same_file(const char *a, const char *b)
{
    if (!strcmp(a, b))
        return 1;
    char *ra = realpath(a, NULL), *rb = realpath(b, NULL);
    int same = ra && rb && !strcmp(ra, rb);
    free(ra);
    free(rb);
    return same;
}

/* Returns the LD_PRELOAD value. Order: a sanitizer runtime (an entry of `existing` that names
 * libasan.so.N or libtsan.so.N, else `runtime`: the soname the program or the checker library
 * needs, which ld.so looks up as it would for them; NULL: none), then `lib`, then `wref_lib`
 * (NULL: none), then the other entries of `existing` (':' or ' ' separated, as ld.so reads
 * them) in their order, without other spellings of the ones already placed. *placed_runtime
 * gets the runtime entry placed first (malloc'd), or NULL. */
static char *merge_preload(const char *lib, const char *existing, const char *runtime,
                           const char *wref_lib, char **placed_runtime)
{
    const char *placed[3] = {NULL, lib, wref_lib};
    char *asan_entry = NULL;
    for (const char *p = existing ? existing : ""; *p;) {
        size_t len = strcspn(p, ": ");
        char *entry = xmalloc(len + 1);
        memcpy(entry, p, len);
        entry[len] = 0;
        if (len && !asan_entry && is_sanitizer_runtime(entry))
            asan_entry = entry;
        else
            free(entry);
        p += len;
        if (*p)
            p++;
    }
    if (!asan_entry && runtime)
        asan_entry = xstrdup(runtime);
    placed[0] = asan_entry;
    char *out = NULL;
    for (size_t k = 0; k < 3; k++) {
        if (!placed[k])
            continue;
        if (strpbrk(placed[k], ": "))
            die(EXIT_FAILURE, "cannot preload '%s': LD_PRELOAD cannot hold a path with ':' or ' '", placed[k]);
        if (out)
            append(&out, ":");
        append(&out, placed[k]);
    }
    for (const char *p = existing ? existing : ""; *p;) {
        size_t len = strcspn(p, ": ");
        if (len) {
            char *entry = xmalloc(len + 1);
            memcpy(entry, p, len);
            entry[len] = 0;
            int dup = 0;
            for (size_t k = 0; k < 3 && !dup; k++)
                dup = placed[k] && same_file(entry, placed[k]);
            if (!dup) {
                append(&out, ":");
                append(&out, entry);
            }
            free(entry);
        }
        p += len;
        if (*p)
            p++;
    }
    *placed_runtime = asan_entry;
    return out;
}

/* The libwref.so.N that sits next to the checker library `lib`, when the program needs one and
 * it exists (build tree: build/src/, install: <libdir>); NULL otherwise. */
static char *wref_next_to(const char *lib, const struct program_info *pi)
{
    if (!pi->wref_soname)
        return NULL;
    char *dir = xstrdup(lib);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    char *cand = join(slash ? (dir[0] ? dir : "/") : ".", pi->wref_soname);
    free(dir);
    if (is_file(cand))
        return cand;
    free(cand);
    return NULL;
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

/* ---- the texts --help and the man page share ------------------------------------------------ */

static const char description[] =
    "Runs program with the wref checker (libwref-check.so) preloaded: sets LD_PRELOAD and "
    "WREF_CHECK_OPTIONS, then executes the program in place of this process. The exit status "
    "is the program's, or the checker's exitcode (23 unless --exitcode) when it reported "
    "findings. Options end at '--' or at the first argument that does not start with '-'.";

static const char adjustments[] =
    "Before it runs the program, the tool reads its ELF dynamic section. A program built with "
    "AddressSanitizer (it needs libasan.so.N) gets that runtime first in LD_PRELOAD, ahead of "
    "the checker, as ASan requires; so does the ASan or TSan runtime a sanitizer-built checker "
    "library needs, in any program (ASAN_OPTIONS then gains detect_leaks=0 for an "
    "uninstrumented program unless it sets detect_leaks). A program that needs libwref.so.0 gets the libwref.so.0 "
    "next to the checker library preloaded after the checker, so it runs without "
    "LD_LIBRARY_PATH or an rpath; the checker provides every wref function either way.";

static const char *const tool_options[][2] = {
    {"--option KEY=VALUE",
     "Set any checker option (KEY as in WREF_CHECK_OPTIONS; '-' in KEY is read as '_'), checked "
     "like its flag; a KEY this tool does not know is passed on with a warning. The checker's "
     "own option list: --option help=1. Repeatable."},
    {"--library PATH",
     "Preload this libwref-check.so. Otherwise: $WREF_CHECK_LIBRARY, then TOOLDIR/../src/"
     LIBRARY_NAME " (build tree), TOOLDIR/../" WREF_INSTALL_LIBDIR "/" LIBRARY_NAME ", "
     WREF_INSTALL_FULL_LIBDIR "/" LIBRARY_NAME "."},
    {"--print-env",
     "Print the LD_PRELOAD and WREF_CHECK_OPTIONS the program would get and exit 0 (no program "
     "needed; with one, its ELF adjustments are shown too)."},
    {"-h, --help", "Print this help and exit 0."},
    {"--help-man", "Print the manual page wref-check(1) in roff (man -l - reads it) and exit 0."},
    {"--version", "Print the version and exit 0."},
};
#define NTOOL_OPTIONS (sizeof tool_options / sizeof tool_options[0])

static const char values_note[] =
    "Valued options take --name=VALUE or --name VALUE; a boolean flag alone means 1. A value "
    "the checker would not accept is refused here (exit 2). WREF_CHECK_OPTIONS already in the "
    "environment is kept; the command line wins for the names it sets.";

static const char exit_status[] =
    "The program's; the checker's exitcode after findings; 1 if the library is not found; 2 "
    "for a usage error; 126 if the program cannot be executed; 127 if it is not found.";

static void flag_name(char *buf, size_t cap, const char *key)
{
    snprintf(buf, cap, "--%s", key);
    for (char *c = buf; *c; c++)
        if (*c == '_')
            *c = '-';
}

/* "--name=META" or "--name[=0|1], --no-name", into buf. */
static void flag_synopsis(const struct flag *f, char *buf, size_t cap)
{
    char name[64], meta[256];
    flag_name(name, sizeof name, f->key);
    metavar(f, meta, sizeof meta);
    if (f->type == T_bool)
        snprintf(buf, cap, "%s[=0|1], --no-%s", name, name + 2);
    else
        snprintf(buf, cap, "%s=%s", name, meta);
}

/* The help sentence, the accepted values and the default, into buf. */
static void flag_description(const struct flag *f, char *buf, size_t cap)
{
    char expected[320];
    expected_text(f, expected, sizeof expected);
    snprintf(buf, cap, "%s Value: %s; default %s.%s", f->help, expected, default_text(f),
             is_path_option(f->key) ? " A relative path is made absolute against the directory "
                                      "wref-check was started in." : "");
}

static void print_help(void)
{
    printf("Usage: wref-check [options] [--] program [args...]\n"
           "       wref-check report [options] FILE|DIR|- ...   (see wref-check report --help)\n\n");
    print_wrapped(description, 0);
    printf("\nChecker options (src/check/engine/options.def; each sets the checker option of\n"
           "the same name, '-' for '_', and --name_with_underscores is accepted too):\n");
    for (size_t i = 0; i < NFLAGS; i++) {
        if (!has_flag(&flags[i]))
            continue;
        char syn[320], desc[1600];
        flag_synopsis(&flags[i], syn, sizeof syn);
        flag_description(&flags[i], desc, sizeof desc);
        printf("  %s\n", syn);
        print_wrapped(desc, 6);
    }
    printf("\nTool options:\n");
    for (size_t i = 0; i < NTOOL_OPTIONS; i++) {
        printf("  %s\n", tool_options[i][0]);
        print_wrapped(tool_options[i][1], 6);
    }
    putchar('\n');
    print_wrapped(values_note, 0);
    putchar('\n');
    print_wrapped(adjustments, 0);
    printf("\nExit status: ");
    print_wrapped(exit_status, 0);
    printf("\nExample: wref-check --halt-on-error --log-path=/tmp/wref -- ./mytest -v\n");
}

/* roff text: a leading '.' or '\'' is escaped, '\' and '-' are written as roff wants them. */
static void roff(const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", stdout);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", stdout);
        else if (*s == '-')
            fputs("\\-", stdout);
        else
            putchar(*s);
    }
}

/* The man page wref-check(1), from the same tables as --help (tools/CMakeLists.txt generates
 * build/tools/wref-check.1 with it; cmake/install.cmake installs it). */
static void print_man(void)
{
    printf(".TH WREF\\-CHECK 1 \"\" \"wref %s\" \"User Commands\"\n", WREF_VERSION);
    printf(".SH NAME\nwref\\-check \\- run a program under the wref checker; read its reports\n");
    printf(".SH SYNOPSIS\n.B wref\\-check\n[\\fIoptions\\fR] [\\fB\\-\\-\\fR] \\fIprogram\\fR "
           "[\\fIargs\\fR...]\n.br\n.B wref\\-check report\n[\\fIoptions\\fR] "
           "\\fIFILE\\fR|\\fIDIR\\fR|\\fB\\-\\fR ...\n");
    printf(".SH DESCRIPTION\n");
    roff(description);
    printf("\n.PP\n");
    roff(adjustments);
    printf("\n.PP\n");
    roff("wref-check report reads the JSON reports the checker writes (--report=json), merges "
         "them, de-duplicates the findings and writes text, SARIF, JUnit, GitHub annotations, "
         "Graphviz, merged JSON, symbolized JSON or suppressions; wref-check report --help "
         "lists its options and exit statuses.");
    printf("\n.SH CHECKER OPTIONS\n");
    roff("Generated from the checker's option table (src/check/engine/options.def). Each flag sets "
         "the checker option of the same name, written with '-' for '_' (the '_' spelling is "
         "accepted too).");
    putchar('\n');
    for (size_t i = 0; i < NFLAGS; i++) {
        if (!has_flag(&flags[i]))
            continue;
        char syn[320], desc[1600];
        flag_synopsis(&flags[i], syn, sizeof syn);
        flag_description(&flags[i], desc, sizeof desc);
        printf(".TP\n.B ");
        roff(syn);
        printf("\n(checker option \\fB");
        roff(flags[i].key);
        printf("\\fR) ");
        roff(desc);
        putchar('\n');
    }
    printf(".TP\n.B help\n");
    roff("(checker option help, through --option help=1) ");
    for (size_t i = 0; i < NFLAGS; i++)
        if (!has_flag(&flags[i]))
            roff(flags[i].help);
    printf("\n.SH TOOL OPTIONS\n");
    for (size_t i = 0; i < NTOOL_OPTIONS; i++) {
        printf(".TP\n.B ");
        roff(tool_options[i][0]);
        putchar('\n');
        roff(tool_options[i][1]);
        putchar('\n');
    }
    printf(".PP\n");
    roff(values_note);
    printf("\n.SH ENVIRONMENT\n.TP\n.B WREF_CHECK_OPTIONS\n");
    roff("The checker's options, name=value separated by ':', ',' or spaces; kept, with the "
         "command line's settings merged in.");
    printf("\n.TP\n.B LD_PRELOAD\n");
    roff("The checker library is put first (after an ASan runtime the program needs, or the "
         "sanitizer runtime a sanitizer-built checker library needs); existing "
         "entries follow.");
    printf("\n.TP\n.B WREF_CHECK_LIBRARY\n");
    roff("The libwref-check.so to preload when --library is not given.");
    printf("\n.SH EXIT STATUS\n");
    roff(exit_status);
    printf("\n.SH EXAMPLES\n.nf\n");
    roff("wref-check --halt-on-error --log-path=/tmp/wref -- ./mytest -v\n"
         "wref-check --report=json --log-path=reports/r -- ./mytest\n"
         "wref-check report --format=sarif --source-root=$PWD -o wref.sarif reports\n"
         "wref-check --option help=1 -- /bin/true\n");
    printf(".fi\n.SH SEE ALSO\n");
    roff("docs/wref-check.md, docs/report-tool.md and docs/checker.md in the wref sources.");
    putchar('\n');
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
        if (!strcmp(arg, "--help-man")) {
            print_man();
            return fflush(stdout) == 0 ? 0 : 1;
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
            const struct flag *f = find_option(name + 3, name_len - 3);
            if (f && f->type == T_bool && has_flag(f)) {
                if (value)
                    usage_error("%.*s takes no value", (int)(name_len + 2), arg);
                set_flag(f, arg, "0");
                continue;
            }
        }

        const struct flag *f = find_option(name, name_len);
        if (f && !has_flag(f))
            f = NULL;   /* --help is the tool's; the checker's is --option help=1 */
        int is_library = name_len == 7 && !memcmp(name, "library", 7);
        int is_option = name_len == 6 && !memcmp(name, "option", 6);
        if (!f && !is_library && !is_option)
            usage_error("unknown option '%.*s'", (int)(name_len + 2), arg);

        char flagname[64];
        snprintf(flagname, sizeof flagname, "%.*s", (int)(name_len + 2), arg);
        if (!value && f && f->type == T_bool)
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
    struct program_info pi;
    if (i < argc)
        inspect_program(argv[i], &pi);
    else
        memset(&pi, 0, sizeof pi);
    /* The checker library's own sanitizer runtime (the ASan and TSan trees build it
     * instrumented): it must be loaded first as well, also in an uninstrumented program. */
    struct program_info li;
    inspect_program(lib, &li);
    const char *lib_runtime = li.asan_soname ? li.asan_soname : li.tsan_soname;
    const char *prog_runtime = pi.asan_soname ? pi.asan_soname : pi.tsan_soname;
    if ((li.tsan_soname && (pi.asan_soname || pi.asan_undefined)) || (li.asan_soname && pi.tsan_soname))
        die(EXIT_FAILURE, "%s is built with %s and %s needs %s: the two cannot run in one process; "
            "use a libwref-check.so built without sanitizers (--library PATH)", lib,
            li.tsan_soname ? "ThreadSanitizer" : "AddressSanitizer", argv[i],
            li.tsan_soname ? "AddressSanitizer" : "ThreadSanitizer");
    const char *old_preload = getenv("LD_PRELOAD");
    int asan_preloaded = 0;
    for (const char *p = old_preload ? old_preload : ""; *p && !asan_preloaded; p += strcspn(p, ": "), p += !!*p) {
        char entry[PATH_MAX];
        snprintf(entry, sizeof entry, "%.*s", (int)strcspn(p, ": "), p);
        asan_preloaded = is_asan_runtime(entry);
    }
    if (pi.asan_undefined && !pi.asan_soname && !asan_preloaded && !li.asan_soname)
        tool_warning("%s is built with AddressSanitizer but does not itself need the ASan runtime "
                     "library (DT_NEEDED), so it cannot be put first in LD_PRELOAD here. Preload it "
                     "yourself: LD_PRELOAD=$(gcc -print-file-name=libasan.so) wref-check ... (or the "
                     "libclang_rt.asan library it was linked with), or set "
                     "ASAN_OPTIONS=verify_asan_link_order=0", argv[i]);
    char *wref_lib = wref_next_to(lib, &pi);
    char *runtime = NULL;
    char *preload = merge_preload(lib, old_preload, prog_runtime ? prog_runtime : lib_runtime, wref_lib, &runtime);
    char *options = merge_options(getenv("WREF_CHECK_OPTIONS"));

    /* An uninstrumented program hosting an ASan-built checker: LeakSanitizer would report the
     * program's own memory at exit (CPython never frees all of its own), which is not what
     * runs under test; leak detection stays off unless ASAN_OPTIONS says otherwise. */
    char *asan_options = NULL;
    const char *old_asan = getenv("ASAN_OPTIONS");
    if (li.asan_soname && !pi.asan_soname && !pi.asan_undefined && !(old_asan && strstr(old_asan, "detect_leaks"))) {
        append(&asan_options, old_asan && *old_asan ? old_asan : "");
        append(&asan_options, old_asan && *old_asan ? ":detect_leaks=0" : "detect_leaks=0");
    }

    /* A CPython program whose executable defines the C API itself (libpython linked in, as in
     * Debian's python3.11) also gets the rtld-audit module (docs/python.md), and the static TLS
     * a preloaded sanitizer runtime needs once an audit module is loaded. One with a shared
     * libpython (pyenv, a program that embeds libpython3.X.so) needs neither: LD_PRELOAD comes
     * before libpython. A program that is not a readable ELF file (a wrapper script named
     * python*) gets them, as it may run either. An executable that defines the C API is
     * CPython whatever its name (a test binary linked with libpython3.X.a). */
    int cpython = i < argc && (pi.defines_capi || wref_tool_is_cpython(argv[i])) &&
                  (!pi.elf_read || pi.defines_capi);
    /* Any CPython program, whatever its executable (shared libpython too), gets the pytest
     * plugin: without it pytest's capture swallows the report of a passing test's finding. */
    int python_program = i < argc && (pi.defines_capi || wref_tool_is_cpython(argv[i]));
    /* python -I or -E ignores PYTHONPATH: the plugin would be named but not importable, and
     * pytest stops on a plugin it cannot import. Not loaded then; said when pytest runs. */
    int py_cmdline = python_program ? wref_tool_python_cmdline(argv + i) : 0;
    int pytest_plugin = python_program && !(py_cmdline & WREF_PY_IGNORES_ENV);
    if (!print_env && (py_cmdline & WREF_PY_IGNORES_ENV) && (py_cmdline & WREF_PY_RUNS_PYTEST))
        fprintf(stderr, "wref-check: python -I/-E ignores PYTHONPATH, so the wref_pytest plugin is not "
                        "loaded: a finding in a test that passes may stay in pytest's captured output "
                        "(docs/python.md, \"Under pytest\")\n");
    size_t runtime_tls = runtime ? runtime_static_tls(runtime) : 0;
    int status;
    if (print_env) {
        print_assignment("LD_PRELOAD", preload);
        if (cpython)
            (void)wref_tool_python_env(lib, runtime_tls, 1);
        if (pytest_plugin)
            (void)wref_tool_pytest_env(1);
        if (options && *options)
            print_assignment("WREF_CHECK_OPTIONS", options);
        if (asan_options)
            print_assignment("ASAN_OPTIONS", asan_options);
        status = fflush(stdout) == 0 ? 0 : 1;
    } else {
        /* setenv copies: everything below is freed whether or not the exec comes */
        if (setenv("LD_PRELOAD", preload, 1) != 0 ||
            (options && *options && setenv("WREF_CHECK_OPTIONS", options, 1) != 0) ||
            (asan_options && setenv("ASAN_OPTIONS", asan_options, 1) != 0))
            die(EXIT_FAILURE, "cannot set the environment: %s", strerror(errno));
        if (cpython)
            (void)wref_tool_python_env(lib, runtime_tls, 0);   /* missing: said once, the program still runs */
        if (pytest_plugin)
            (void)wref_tool_pytest_env(0);   /* no plugin found: pytest's capture may hide a report */

        fflush(NULL);
        execvp(argv[i], argv + i);
        int err = errno;
        fprintf(stderr, "wref-check: cannot run '%s': %s\n", argv[i], strerror(err));
        status = err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG || err == ELOOP ? 127 : 126;
    }
    /* The tool's own strings: freed, so that an ASan-built tool's LeakSanitizer has nothing to
     * report on --print-env or a failed exec (tool.print_env runs with detect_leaks=1). */
    free(asan_options);
    free(options);
    free(preload);
    free(runtime);
    free(wref_lib);
    free(lib);
    program_info_free(&li);
    program_info_free(&pi);
    for (size_t k = 0; k < nsettings; k++) {
        free(settings[k].key);
        free(settings[k].value);
    }
    free(settings);
    settings = NULL;
    nsettings = 0;
    return status;
}
