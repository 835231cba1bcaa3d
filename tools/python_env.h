/* python_env.h: what `wref-check -- prog` adds for a CPython program (python_env.c). */
#ifndef WREF_TOOLS_PYTHON_ENV_H
#define WREF_TOOLS_PYTHON_ENV_H

#include <stddef.h>

/* True when prog (as execvp would find it) looks like CPython: its name starts with
 * "python", or it is an ELF file that mentions Py_BytesMain or libpython3 (an interpreter or
 * a program that embeds libpython), or it is a "#!" script whose interpreter is one of these
 * (also through /usr/bin/env; Debian's /usr/bin/pytest, a ./tests.py). */
int wref_tool_is_cpython(const char *prog);

/* The environment a CPython program needs beyond LD_PRELOAD, given the checker library's
 * path: LD_AUDIT=<its directory>/libwref-audit.so (prepended to an existing LD_AUDIT), so that
 * extension modules reach the checker even when the executable defines the C API, and
 * GLIBC_TUNABLES gains glibc.rtld.optional_static_tls (with an audit module loaded, every
 * initial-exec TLS block of the main namespace comes out of that surplus: 16 KiB for the checker
 * and libc, plus extra_tls, the PT_TLS size of a preloaded sanitizer runtime: TSan's is 768
 * KiB). A value the user already set stays. Sets them, or with print != 0 prints them as
 * VAR='value' lines. Returns 0, or -1 (after a message on stderr) when libwref-audit.so is
 * missing. */
int wref_tool_python_env(const char *checker_lib, size_t extra_tls, int print);

/* The environment that loads the wref_pytest plugin into a pytest run (pytest reads
 * PYTEST_PLUGINS; every other program ignores it): PYTEST_PLUGINS gains "wref_pytest" and
 * PYTHONPATH, at its end, the plugin's directory (the source tree's python/ for the build
 * tree's tool, else TOOLDIR/../<datadir>/wref/python, else the configured install's). Items
 * already there stay, once. `pytest -p no:wref_pytest` still turns it off. Sets them, or with
 * print != 0 prints them as VAR='value' lines. Returns 0, or -1 when the plugin is not found
 * or the environment cannot be set (nothing is changed then). */
int wref_tool_pytest_env(int print);

/* How a python command line (argv[0] the interpreter) treats the environment: bit
 * WREF_PY_IGNORES_ENV when its options include -I or -E (PYTHONPATH is ignored, so the
 * plugin's directory would not be on sys.path and pytest would fail to import it), bit
 * WREF_PY_RUNS_PYTEST when it runs `-m pytest` (or py.test). Only the interpreter's own
 * options are read: they end at -c, -m, "-", "--" or the script. argv[0] may also be a
 * script whose "#!" line names a python: the options on that line are read, and a script
 * named pytest* or py.test* runs pytest. */
#define WREF_PY_IGNORES_ENV 1
#define WREF_PY_RUNS_PYTEST 2
int wref_tool_python_cmdline(char *const *argv);

#endif /* WREF_TOOLS_PYTHON_ENV_H */
