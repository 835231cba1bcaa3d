/* intercept.c: the interposed CPython functions and the frontend's start.
 *
 * libwref-check.so exports PyWeakref_GetObject and PyWeakref_NewRef. Extension modules reach them
 *   - with a shared libpython (pyenv, --enable-shared): through LD_PRELOAD alone;
 *   - with an executable that has libpython linked in (Debian's python3.11): through
 *     libwref-audit.so (LD_AUDIT), which redirects their bindings to this definition.
 * The frontend starts at the first call, which holds the GIL, never from the preload
 * constructor (before Py_PreInitialize): it resolves the C API, makes the tombstone type and
 * installs the chained allocator. An unsupported interpreter gets one line and runs
 * unchecked; the real function is always called. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "frontend.h"
#include "python.h"
#include "pystack.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define WREF_PY_INTERPOSE __attribute__((visibility("default"), no_sanitize("thread")))

bool wref__py_active;

enum { NOT_STARTED, STARTED, UNSUPPORTED };
static int start_state;        /* written under the GIL, once */
static size_t n_calls;         /* PyWeakref_GetObject calls seen (GIL held) */

static py_object *weakref_get_object(py_object *ref);
static py_object *weakref_new_ref(py_object *ob, py_object *callback);

static void start(void)
{
    start_state = UNSUPPORTED;
    wref__checker_init();
    if (!wref__py_api_resolve((void *)weakref_get_object, (void *)weakref_new_ref))   /* ours, not PLT slots */
        return;
    if (!wref__py_tombstone_init()) {
        wref__checker_warn(NULL, "CPython %s: cannot create the tombstone type; running unchecked", wref__py.version);
        return;
    }
    wref__lang_stack_get = wref__py_stack_get;
    /* CPython is built without frame pointers: a frame-pointer walk stops in the interpreter,
     * before the extension's frames. Unwind with libunwind (DWARF CFI) from now on. */
    wref__stack_init(wref__opt.stack_depth, 0);
    wref__py_alloc_install();
    wref__py_active = true;
    start_state = STARTED;
    if (wref__opt.verbosity >= 1)
        wref__checker_warn(NULL, "python frontend: CPython %s (pid %d)", wref__py.version, (int)getpid());
}

/* The definition, under a local name so that its address is ours whatever the bindings:
 * libwref-check's own references to PyWeakref_GetObject bind to the executable's. */
__attribute__((no_sanitize("thread"))) static py_object *weakref_get_object(py_object *ref)
{
    if (start_state == NOT_STARTED)
        start();
    if (!wref__py.weakref_get_object) {
        static const char msg[] = "wref-check: PyWeakref_GetObject called, but no CPython defines it\n";
        (void)!write(2, msg, sizeof msg - 1);
        abort();
    }
    py_object *o = wref__py.weakref_get_object(ref);
    if (wref__py_active && o && o != wref__py.none) {
        n_calls++;
        wref__py_watch_borrow(o, (uintptr_t)__builtin_return_address(0), WREF__PY_BORROWED);
    }
    return o;
}

/* A weakref made from C: its referent is watched too, so that its free is seen (a use after
 * it is then use-after-free, and a non-empty weakref list at the free is dangling-weakref). */
__attribute__((no_sanitize("thread"))) static py_object *weakref_new_ref(py_object *ob, py_object *callback)
{
    if (start_state == NOT_STARTED)
        start();
    if (!wref__py.weakref_new_ref) {
        static const char msg[] = "wref-check: PyWeakref_NewRef called, but no CPython defines it\n";
        (void)!write(2, msg, sizeof msg - 1);
        abort();
    }
    py_object *r = wref__py.weakref_new_ref(ob, callback);
    if (wref__py_active && r && ob && ob != wref__py.none)
        wref__py_watch_borrow(ob, (uintptr_t)__builtin_return_address(0), WREF__PY_WEAKREF_CREATED);
    return r;
}

WREF_PY_INTERPOSE py_object *PyWeakref_GetObject(py_object *ref) __attribute__((alias("weakref_get_object")));
WREF_PY_INTERPOSE py_object *PyWeakref_NewRef(py_object *ob, py_object *callback)
    __attribute__((alias("weakref_new_ref")));

void wref__python_exit(void)
{
    if (!wref__py_active)
        return;
    wref__py_objects_exit();
    if (wref__opt.verbosity >= 1) {
        size_t watched, tombstones, dropped;
        wref__py_objects_stats(&watched, &tombstones, &dropped);
        wref__checker_warn(NULL, "python frontend: CPython %s: %zu borrows from PyWeakref_GetObject, %zu objects "
                           "watched, %zu freed while watched (tombstones), %zu not watched (table full)",
                           wref__py.version, n_calls, watched, tombstones, dropped);
    }
}
