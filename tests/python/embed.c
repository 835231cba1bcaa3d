/* embed.c: a test program that embeds Debian's libpython3.11 (issue 12's case (c)) and runs
 * one case of cases.py in it: the checker reaches the extension's calls through LD_PRELOAD
 * (libpython is a shared library here), and wref-check recognises the program as CPython by
 * its DT_NEEDED libpython3.11.so.
 *
 * Built three ways (tests/python/CMakeLists.txt): plainly; with -fsanitize=address (a program
 * with its own ASan runtime, which wref-check must put first); and with -fsanitize=address and
 * libpython3.11-pic.a linked in (the executable defines the C API, so LD_AUDIT loads
 * libwref-audit.so before anything, as for Debian's python3.11).
 *
 * usage: embed CASES_PY CASE MODULE_DIR [--then-overflow]
 * --then-overflow: after the case and Py_FinalizeEx, write one byte past a heap block (ASan,
 * when built in, must still report it). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    int overflow = argc == 5 && !strcmp(argv[4], "--then-overflow");
    if (argc != 4 && !overflow) {
        fprintf(stderr, "usage: %s CASES_PY CASE MODULE_DIR [--then-overflow]\n", argv[0]);
        return 2;
    }
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.parse_argv = 0;                       /* sys.argv as given, as for `python cases.py ...` */
    char *args[] = {argv[1], argv[2], argv[3]};
    PyStatus st = PyConfig_SetBytesArgv(&config, 3, args);
    if (!PyStatus_Exception(st))
        st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st))
        Py_ExitStatusException(st);
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    int rc = PyRun_SimpleFileEx(f, argv[1], 1);
    if (Py_FinalizeEx() < 0)
        rc = 120;
    if (overflow) {
        volatile size_t n = 8;   /* not a constant: no compile-time bounds warning */
        volatile char *block = malloc(n);   /* volatile: the store is not dead before free */
        block[n] = 1;                       /* heap-buffer-overflow */
        free((void *)block);
    }
    return rc ? 1 : 0;
}
