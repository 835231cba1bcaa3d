/* python_env.c: recognising a CPython program and the environment it needs
 * (docs/python.md "How it gets in"). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "python_env.h"
#include "install_dir.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef WREF_BUILD_TOOLS_DIR
#define WREF_BUILD_TOOLS_DIR ""
#endif
#ifndef WREF_SOURCE_PYTHON_DIR
#define WREF_SOURCE_PYTHON_DIR ""
#endif
#ifndef WREF_INSTALL_DATADIR
#define WREF_INSTALL_DATADIR "share"
#endif
#ifndef WREF_INSTALL_FULL_DATADIR
#define WREF_INSTALL_FULL_DATADIR "/usr/local/share"
#endif

#define AUDIT_NAME "libwref-audit.so"
#define PLUGIN "wref_pytest"
#define TLS_TUNABLE "glibc.rtld.optional_static_tls="
#define TLS_BASE 16384   /* the checker and libc's own initial-exec TLS, with room to spare */

/* The file execvp would run for prog, or NULL; malloc'd. */
static char *resolve(const char *prog)
{
    if (strchr(prog, '/'))
        return strdup(prog);
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t len = strcspn(path, ":");
        char *cand = NULL;
        if (asprintf(&cand, "%.*s%s%s", (int)len, path, len ? "/" : "", prog) < 0)
            return NULL;
        if (access(cand, X_OK) == 0)
            return cand;
        free(cand);
        path += len + (path[len] == ':');
    }
    return NULL;
}

static int mentions_python(const char *file)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    int found = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 4 && st.st_size < (1L << 30)) {
        const char *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            if (!memcmp(m, "\177ELF", 4))
                found = memmem(m, (size_t)st.st_size, "Py_BytesMain", 13) != NULL ||
                        memmem(m, (size_t)st.st_size, "libpython3", 10) != NULL;
            munmap((void *)m, (size_t)st.st_size);
        }
    }
    close(fd);
    return found;
}

/* The words of file's "#!" line (split at blanks, at most max; line holds them), and in *interp
 * the index of the interpreter among them as the kernel and /usr/bin/env would pick it (env's
 * options skipped: -S, -i, ..., and NAME=value); 0 words when file is not a "#!" script. */
static size_t shebang_words(const char *file, char *line, int size, char **words, size_t max, size_t *interp)
{
    FILE *f = fopen(file, "re");
    if (!f)
        return 0;
    char *got = fgets(line, size, f);
    fclose(f);
    if (!got || strncmp(line, "#!", 2) != 0)
        return 0;
    size_t n = 0;
    char *save = NULL;
    for (char *w = strtok_r(line + 2, " \t\r\n", &save); w && n < max; w = strtok_r(NULL, " \t\r\n", &save))
        words[n++] = w;
    size_t k = 0;
    if (n && !strcmp(strrchr(words[0], '/') ? strrchr(words[0], '/') + 1 : words[0], "env"))
        for (k = 1; k < n && (words[k][0] == '-' || strchr(words[k], '=')); k++)
            ;   /* env's own options and NAME=value assignments */
    *interp = k;
    return n;
}

/* The interpreter a "#!" script names, or NULL; malloc'd. */
static char *script_interpreter(const char *file)
{
    char line[512], *words[32];
    size_t k, n = shebang_words(file, line, sizeof line, words, 32, &k);
    return k < n ? strdup(words[k]) : NULL;
}

/* depth: how many "#!" interpreters may still be followed (a script run by a script...). */
static int is_cpython(const char *prog, int depth)
{
    const char *base = strrchr(prog, '/');
    base = base ? base + 1 : prog;
    if (!strncmp(base, "python", 6))
        return 1;
    char *file = resolve(prog);
    int r = file && mentions_python(file);
    if (file && !r && depth > 0) {
        char *interp = script_interpreter(file);
        r = interp && is_cpython(interp, depth - 1);
        free(interp);
    }
    free(file);
    return r;
}

int wref_tool_is_cpython(const char *prog)
{
    return is_cpython(prog, 4);
}

int wref_tool_python_env(const char *checker_lib, size_t extra_tls, int print)
{
    const char *slash = strrchr(checker_lib, '/');
    char *audit = NULL;
    if (asprintf(&audit, "%.*s" AUDIT_NAME, slash ? (int)(slash - checker_lib + 1) : 0, checker_lib) < 0)
        return -1;
    if (access(audit, R_OK) != 0) {
        fprintf(stderr, "==%ld==WARNING: wref-check: %s not found: calls from CPython extension modules into "
                        "an executable that defines the C API (Debian's python3) will not be seen\n",
                (long)getpid(), audit);
        free(audit);
        return -1;
    }
    const char *old_audit = getenv("LD_AUDIT");
    char *new_audit = NULL, *tunables = NULL;
    if (old_audit && strstr(old_audit, audit))
        new_audit = strdup(old_audit);
    else if (asprintf(&new_audit, "%s%s%s", audit, old_audit && *old_audit ? ":" : "", old_audit ? old_audit : "") < 0)
        new_audit = NULL;
    const char *old_tun = getenv("GLIBC_TUNABLES");
    size_t tls = (TLS_BASE + extra_tls + 4095) / 4096 * 4096;
    if (old_tun && strstr(old_tun, TLS_TUNABLE))
        tunables = strdup(old_tun);
    else if (asprintf(&tunables, "%s%s" TLS_TUNABLE "%zu", old_tun ? old_tun : "", old_tun && *old_tun ? ":" : "", tls) < 0)
        tunables = NULL;
    free(audit);
    if (!new_audit || !tunables) {
        free(new_audit);
        free(tunables);
        return -1;
    }
    int r = 0;
    if (print) {
        printf("LD_AUDIT='%s'\nGLIBC_TUNABLES='%s'\n", new_audit, tunables);
    } else if (setenv("LD_AUDIT", new_audit, 1) != 0 || setenv("GLIBC_TUNABLES", tunables, 1) != 0) {
        perror("wref-check: setenv");
        r = -1;
    }
    free(new_audit);
    free(tunables);
    return r;
}

/* The directory holding wref_pytest.py, or NULL: the source tree's python/ for the build
 * tree's tool, else TOOLDIR/../<datadir>/wref/python (an install moved as a whole), else the
 * configured install's. Malloc'd. */
static char *plugin_dir(void)
{
    return wref_tool_install_dir(WREF_BUILD_TOOLS_DIR, WREF_SOURCE_PYTHON_DIR, WREF_INSTALL_DATADIR "/wref/python",
                                 WREF_INSTALL_FULL_DATADIR "/wref/python", PLUGIN ".py");
}

/* value, with item appended after a separator unless it is among value's items already. */
static char *with_item(const char *value, const char *item, char sep)
{
    char *out = NULL;
    if (!value || !*value)
        return strdup(item);
    size_t len = strlen(item);
    for (const char *p = value; *p;) {
        size_t n = strcspn(p, (char[]){sep, 0});
        if (n == len && !strncmp(p, item, len))
            return strdup(value);
        p += n + (p[n] == sep);
    }
    return asprintf(&out, "%s%c%s", value, sep, item) < 0 ? NULL : out;
}

int wref_tool_pytest_env(int print)
{
    char *dir = plugin_dir();
    if (!dir)
        return -1;   /* a build without the plugin: pytest runs as it would */
    char *plugins = with_item(getenv("PYTEST_PLUGINS"), PLUGIN, ',');
    char *path = with_item(getenv("PYTHONPATH"), dir, ':');
    free(dir);
    int r = plugins && path ? 0 : -1;
    if (r == 0 && print)
        printf("PYTEST_PLUGINS='%s'\nPYTHONPATH='%s'\n", plugins, path);
    else if (r == 0 && (setenv("PYTEST_PLUGINS", plugins, 1) != 0 || setenv("PYTHONPATH", path, 1) != 0)) {
        perror("wref-check: setenv");
        r = -1;
    }
    free(plugins);
    free(path);
    return r;
}

static int is_pytest_module(const char *m)
{
    return !strcmp(m, "pytest") || !strcmp(m, "py.test");
}

/* The interpreter's options in argv (argv[0] the interpreter), as wref_tool_python_cmdline. */
static int python_options(char *const *argv)
{
    int r = 0;
    for (size_t i = 1; argv[0] && argv[i]; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !strcmp(a, "-") || !strcmp(a, "--"))
            return r;   /* the script, stdin, or the end of the options */
        if (a[1] == '-') {   /* long options: one of them takes a value */
            if (!strcmp(a, "--check-hash-based-pycs") && argv[i + 1])
                i++;
            continue;
        }
        for (const char *c = a + 1; *c; c++) {
            if (*c == 'I' || *c == 'E')
                r |= WREF_PY_IGNORES_ENV;
            if (*c == 'm') {   /* the module: the rest of this argument, or the next one */
                const char *m = c[1] ? c + 1 : argv[i + 1];
                return m && is_pytest_module(m) ? r | WREF_PY_RUNS_PYTEST : r;
            }
            if (*c == 'c')
                return r;
            if (*c == 'W' || *c == 'X') {   /* a value: the rest of this argument, or the next one */
                if (!c[1] && argv[i + 1])
                    i++;
                break;
            }
        }
    }
    return r;
}

int wref_tool_python_cmdline(char *const *argv)
{
    if (!argv[0])
        return 0;
    const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    if (!strncmp(base, "python", 6))
        return python_options(argv);
    /* A script run through its "#!" line: the options written there are the interpreter's
     * (#!/usr/bin/python3 -I, #!/usr/bin/env -S python3 -E); a script named pytest* or
     * py.test* is pytest's entry point. */
    char *file = resolve(argv[0]);
    char line[512], *words[32];
    size_t k = 0, n = file ? shebang_words(file, line, sizeof line, words, 31, &k) : 0;
    int r = 0;
    if (k < n && is_cpython(words[k], 3)) {
        words[n] = NULL;   /* the options end at the script, which follows them */
        r = python_options(words + k);
        if (!strncmp(base, "pytest", 6) || !strncmp(base, "py.test", 7))
            r |= WREF_PY_RUNS_PYTEST;
    }
    free(file);
    return r;
}
