/* intercept.c: the interposed CPython functions and the frontend's start.
 *
 * libwref-check.so exports PyWeakref_GetObject, PyWeakref_NewRef, PyWeakref_NewProxy and
 * PyUnstable_Object_ClearWeakRefsNoCallbacks (3.13). Extension modules reach them
 *   - with a shared libpython (pyenv, --enable-shared): through LD_PRELOAD alone;
 *   - with an executable that has libpython linked in (Debian's python3.11): through
 *     libwref-audit.so (LD_AUDIT), which redirects their bindings to this definition.
 * The frontend starts at the first call, which holds the GIL, never from the preload
 * constructor (before Py_PreInitialize): it resolves the C API, makes the tombstone type and
 * installs the chained allocator. An unsupported interpreter gets one line and runs
 * unchecked, the real function called. A supported one's exact weakref.ref is read by
 * PyWeakref_GetObject's interposer itself (the real function's answer); anything else goes
 * to the real function. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "frontend.h"
#include "origins.h"
#include "pystack.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WREF_PY_INTERPOSE __attribute__((visibility("default"), no_sanitize("thread")))

bool wref__py_active;

enum { NOT_STARTED, STARTED, UNSUPPORTED };
static int start_state;        /* written under the GIL, once */
static size_t n_calls;         /* PyWeakref_GetObject calls seen (GIL held) */

static py_object *weakref_get_object(py_object *ref);
static void python_exit(void);
static py_object *weakref_new_ref(py_object *ob, py_object *callback);
static py_object *weakref_new_proxy(py_object *ob, py_object *callback);
static void clear_weakrefs_no_callbacks(py_object *ob);

/* The C frames that are not the extension's, which the SUMMARY line passes over (report.c):
 * the interpreter's (libpython, or an executable named python*: Debian's python3.11 has
 * libpython linked in; an extension module is a shared object, so "python_ext.so" is not one;
 * and the inline functions of its headers, inlined into an extension) and the C library's (the process's start, below the interpreter's frames). */
static bool frame_is_interpreter(const struct wref__frame_info *fi)
{
    /* a C API inline function of CPython's headers (Py_DECREF inlined into the extension) */
    if (fi->inlined && fi->file && strstr(fi->file, "/include/python3"))
        return true;
    const char *b = fi->module ? strrchr(fi->module, '/') : NULL;
    b = b ? b + 1 : fi->module;
    return b && (!strncmp(b, "libpython", 9) || (!strncmp(b, "python", 6) && !strstr(b, ".so")) ||
                 !strncmp(b, "libc.so", 7) || !strncmp(b, "ld-linux", 8));
}

/* Around fork, the frontend's locks (none is taken while another is held, but for the Python
 * stack depot's, which comes first). Registered after
 * the engine's handlers, so these run before the engine's in the prepare phase and after them
 * in the parent and the child: the frontend's locks come first in the lock order (they are
 * held while the engine allocates, never the other way round). */
static void fork_prepare(void)
{
    wref__py_stack_fork(WREF__FORK_PREPARE);   /* held while a store's C API calls reach the others */
    wref__py_callbacks_fork(WREF__FORK_PREPARE);
    wref__py_objects_fork(WREF__FORK_PREPARE);
    wref__py_wide_fork(WREF__FORK_PREPARE);
    wref__py_origins_fork(WREF__FORK_PREPARE);   /* held while the engine captures: before its locks */
    wref__py_weaklists_fork(WREF__FORK_PREPARE);
}

static void fork_release(enum wref__fork_phase phase)
{
    wref__py_weaklists_fork(phase);
    wref__py_origins_fork(phase);
    wref__py_wide_fork(phase);
    wref__py_objects_fork(phase);
    wref__py_callbacks_fork(phase);
    wref__py_stack_fork(phase);
}

static void fork_parent(void) { fork_release(WREF__FORK_PARENT); }
static void fork_child(void) { fork_release(WREF__FORK_CHILD); }

static void start(void)
{
    start_state = UNSUPPORTED;
    wref__checker_init();
    wref__py_self self = {(void *)weakref_get_object, (void *)weakref_new_ref, (void *)weakref_new_proxy,
                          (void *)clear_weakrefs_no_callbacks};   /* ours, not PLT slots */
    if (!wref__py_api_resolve(&self))
        return;
    if (!wref__py_tombstone_init() || !wref__py_callbacks_init()) {
        wref__checker_warn(NULL, "CPython %s: cannot create the tombstone type; running unchecked", wref__py.version);
        return;
    }
    wref__lang_stack_get = wref__py_stack_get;
    wref__lang_frame_is_runtime = frame_is_interpreter;
    /* CPython is built without frame pointers: a frame-pointer walk stops in the interpreter,
     * before the extension's frames. Unwind with libunwind (DWARF CFI) from now on. */
    wref__stack_init(wref__opt.stack_depth, 0);
    pthread_atfork(fork_prepare, fork_parent, fork_child);   /* before the allocator hook takes a lock */
    wref__py_alloc_install();
    wref__py_tracemalloc_watch();
    wref__py_wide_init();
    wref__py_weaklists_init();
    wref__py_active = true;
    if (wref__py.weakref_get_object) {   /* else each call aborts with its message */
        start_state = STARTED;
        wref__py_thread_state_init();   /* from now on a thread's slot may be set: it means STARTED */
    }
    wref__checker_at_exit(python_exit);
    if (wref__opt.verbosity >= 1)
        wref__checker_warn(NULL, "python frontend: CPython %s (pid %d)", wref__py.version, (int)getpid());
}

void wref__py_start(void)
{
    if (start_state == NOT_STARTED)
        start();
}

/* An exact weakref.ref's answer, as the real function gives it on every supported version
 * (3.9-3.13, GIL builds): its referent (wr_object, right after the object header), or None when
 * that has no references left; None itself when cleared. A referent returned has a count above
 * 0: it is not dying (wref__py_check_dying has nothing to see). */
static inline __attribute__((always_inline)) py_object *ref_referent(py_object *ref)
{
    py_object *o = ((py_object **)ref)[2];
    return o->ob_refcnt <= 0 ? wref__py.none : o;
}

/* PyWeakref_GetObject past the inline path of weakref_get_object below, from the start: the
 * first calls (the start), an unsupported interpreter (the real function, unchecked), an
 * argument that is not an exact weakref.ref (the real function, its answer checked), and a
 * borrow the inline path did not find known. pc: the extension's call site. */
__attribute__((noinline, no_sanitize("thread"))) static py_object *get_object_slow(py_object *ref, uintptr_t pc)
{
    if (__builtin_expect(start_state != STARTED, 0)) {
        if (start_state == NOT_STARTED)
            start();
        if (!wref__py.weakref_get_object) {
            static const char msg[] = "wref-check: PyWeakref_GetObject called, but no CPython defines it\n";
            (void)!write(2, msg, sizeof msg - 1);
            abort();
        }
        if (start_state != STARTED)   /* unsupported: unchecked */
            return wref__py.weakref_get_object(ref);
    }
    py_object *o;
    if (ref && ref->ob_type == wref__py.weakref_ref_type) {
        o = ref_referent(ref);
        if (o == wref__py.none)
            return o;
    } else {   /* NULL, a subclass, a proxy, no weakref at all (its error): the real function */
        o = wref__py.weakref_get_object(ref);
        if (!o || o == wref__py.none)
            return o;
        wref__py_check_dying(o, "PyWeakref_GetObject", pc, WREF__PY_BORROWED);
    }
    n_calls++;
    uint64_t gen = __atomic_load_n(&wref__py_seq.generation, __ATOMIC_ACQUIRE);
    void *ts = wref__py_thread_state();
    wref__py_site_key k = {pc, 0, 0};
    /* as in weakref_get_object; then the checked key (the C API's when the read fails) */
    bool read = ts && wref__py_innermost_read(ts, &k.code, &k.where, false);
    if (read && wref__py_borrow_known(o, (uintptr_t)ref, k, gen))
        return o;
    k = wref__py_site_key_of(pc);
    if (read || !wref__py_borrow_known(o, (uintptr_t)ref, k, gen))
        wref__py_watch_borrow_at(o, (uintptr_t)ref, k.pc, k.code, k.where, WREF__PY_BORROWED);
    return o;
}

/* No frame pointer in this function: the frontend unwinds with DWARF CFI (start above). Clang
 * has no such attribute: there the function keeps it (a push and a pop more). */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_FRAME_POINTER __attribute__((optimize("omit-frame-pointer")))
#else
#define NO_FRAME_POINTER
#endif

/* The definition, under a local name so that its address is ours whatever the bindings:
 * libwref-check's own references to PyWeakref_GetObject bind to the executable's.
 *
 * The common call is answered inline, calling nothing, so with no frame and no saved register
 * (measured: bench/python/notes.md): STARTED (this thread's thread state slot is set, pystack.h),
 * an exact weakref.ref (ref_referent) and a borrow that changes nothing (frontend.h
 * wref__py_borrow_cached), the thread state read through the slot. Anything else starts over in
 * get_object_slow, called, not jumped to: this frame must be the outermost checker frame of a
 * stack captured there (frame #0 of the reports, engine/core.c wref__capture). */
__attribute__((no_sanitize("thread"))) NO_FRAME_POINTER static py_object *weakref_get_object(py_object *ref)
{
    uintptr_t pc = (uintptr_t)__builtin_return_address(0);
    void *const *slot = __atomic_load_n(&wref__py_ts_global, __ATOMIC_RELAXED);   /* set: STARTED (pystack.h) */
    if (!slot)
        slot = wref__py_ts_slot;   /* 3.12+, or this interpreter's global not found */
    if (__builtin_expect(slot && ref && ref->ob_type == wref__py.weakref_ref_type, 1)) {
        py_object *o = ref_referent(ref);
        if (o == wref__py.none)
            return o;
        uint64_t gen = __atomic_load_n(&wref__py_seq.generation, __ATOMIC_ACQUIRE);
        void *ts = __atomic_load_n(slot, __ATOMIC_RELAXED);
        /* The frame's code address unchecked: equal to the last site's, it is that code object
         * (the site's stored Python stack pins it); anything else takes the checked key. */
        wref__py_site_key k = {pc, 0, 0};
        if (__builtin_expect(ts && wref__py_innermost_read(ts, &k.code, &k.where, false) &&
                             wref__py_borrow_cached(o, (uintptr_t)ref, k, gen), 1)) {
            n_calls++;
            return o;
        }
    }
    py_object *r = get_object_slow(ref, pc);
    __asm__ volatile("" ::: "memory");   /* not a tail call (above) */
    return r;
}

static void no_real(const char *name)
{
    char msg[160];
    int n = snprintf(msg, sizeof msg, "wref-check: %s called, but no CPython defines it\n", name);
    (void)!write(2, msg, n > 0 ? (size_t)n : 0);
    abort();
}

/* A weakref made from C: its referent is watched too, so that its free is seen (a use after
 * it is then use-after-free, and a non-empty weakref list at the free is dangling-weakref). A
 * callback is registered through a wrapper (callbacks.c) that sees it raise or never run. */
__attribute__((no_sanitize("thread"))) static py_object *new_weakref(py_object *(*real)(py_object *, py_object *),
                                                                     const char *api, py_object *ob,
                                                                     py_object *callback, uintptr_t pc)
{
    py_object *wrap = wref__py_active ? wref__py_callback_wrap(ob, callback, pc, api) : NULL;
    py_object *r = real(ob, wrap ? wrap : callback);
    if (wrap)
        wref__py.decref(wrap);   /* the weakref holds it now (or it dies with a failed call) */
    if (wref__py_active && r && ob && ob != wref__py.none) {
        int how = real == wref__py.weakref_new_proxy ? WREF__PY_PROXY_CREATED : WREF__PY_WEAKREF_CREATED;
        wref__py_check_dying(ob, api, pc, how);
        wref__py_watch_borrow(ob, pc, how);
    }
    return r;
}

__attribute__((no_sanitize("thread"))) static py_object *weakref_new_ref(py_object *ob, py_object *callback)
{
    if (start_state == NOT_STARTED)
        start();
    if (!wref__py.weakref_new_ref)
        no_real("PyWeakref_NewRef");
    return new_weakref(wref__py.weakref_new_ref, "PyWeakref_NewRef", ob, callback,
                       (uintptr_t)__builtin_return_address(0));
}

__attribute__((no_sanitize("thread"))) static py_object *weakref_new_proxy(py_object *ob, py_object *callback)
{
    if (start_state == NOT_STARTED)
        start();
    if (!wref__py.weakref_new_proxy)
        no_real("PyWeakref_NewProxy");
    return new_weakref(wref__py.weakref_new_proxy, "PyWeakref_NewProxy", ob, callback,
                       (uintptr_t)__builtin_return_address(0));
}

/* 3.13's PyUnstable_Object_ClearWeakRefsNoCallbacks: callbacks registered from C that it
 * drops are callback-suppressed. */
__attribute__((no_sanitize("thread"))) static void clear_weakrefs_no_callbacks(py_object *ob)
{
    if (start_state == NOT_STARTED)
        start();
    if (!wref__py.clear_weakrefs_no_callbacks)
        no_real("PyUnstable_Object_ClearWeakRefsNoCallbacks");
    if (wref__py_active)
        wref__py_callbacks_suppressed(ob, wref__py.clear_weakrefs_no_callbacks);
    else
        wref__py.clear_weakrefs_no_callbacks(ob);
}

WREF_PY_INTERPOSE py_object *PyWeakref_GetObject(py_object *ref) __attribute__((alias("weakref_get_object")));
WREF_PY_INTERPOSE py_object *PyWeakref_NewRef(py_object *ob, py_object *callback)
    __attribute__((alias("weakref_new_ref")));
WREF_PY_INTERPOSE py_object *PyWeakref_NewProxy(py_object *ob, py_object *callback)
    __attribute__((alias("weakref_new_proxy")));
WREF_PY_INTERPOSE void PyUnstable_Object_ClearWeakRefsNoCallbacks(py_object *ob)
    __attribute__((alias("clear_weakrefs_no_callbacks")));

/* An executable that defines the C API itself (Debian's python3.11: libpython linked in)
 * binds its extensions' calls to its own definitions, so without libwref-audit.so in LD_AUDIT
 * nothing reaches the interposers above and the frontend never starts: a python3 run by a
 * wrapper script, or LD_PRELOAD set by hand. One line says so at start-up (the dynamic
 * linker's default scope finds the executable's definition first; with a shared libpython it
 * finds the checker's own). */
__attribute__((constructor)) static void python_without_audit(void)
{
    void *found = dlsym(RTLD_DEFAULT, "PyWeakref_GetObject");
    if (!found || found == (void *)weakref_get_object)
        return;
    const char *audit = getenv("LD_AUDIT");
    if (audit && strstr(audit, "libwref-audit.so"))
        return;
    char exe[256];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    wref__checker_init();
    wref__checker_warn(NULL, "%s defines the CPython C API itself and libwref-audit.so is not in "
                       "LD_AUDIT: its extension modules' calls are not checked; run it as "
                       "'wref-check -- %s ...' (docs/python.md, \"How it gets in\")",
                       n > 0 ? exe : "this program", n > 0 ? exe : "python3");
}

/* At exit, before the reports' last words (an exit hook of the engine, checker.h): findings
 * known only then (late Py_INCREFs of freed objects) and, with verbosity >= 1, the frontend's
 * statistics. Registered once CPython is seen, so a process without it does nothing here. */
static void python_exit(void)
{
    if (!wref__py_active)
        return;
    wref__py_callbacks_exit();
    wref__py_objects_exit();
    wref__py_wide_stats();
    wref__py_weaklists_stats();
    wref__py_origins_stats();
    if (wref__opt.verbosity >= 1) {
        size_t watched, tombstones, dropped, registered, errors, suppressed;
        wref__py_objects_stats(&watched, &tombstones, &dropped);
        wref__py_callbacks_stats(&registered, &errors, &suppressed);
        wref__checker_warn(NULL, "python frontend: CPython %s: %zu borrows from PyWeakref_GetObject, %zu objects "
                           "watched, %zu freed while watched (tombstones), %zu not watched (table full), "
                           "%zu callbacks registered from C (%zu raised, %zu suppressed)",
                           wref__py.version, n_calls, watched, tombstones, dropped, registered, errors, suppressed);
        uint32_t stored;
        uint64_t nested;
        wref__py_stack_stats(&stored, &nested);
        wref__checker_warn(NULL, "python frontend: %u Python stacks stored, %llu not (an object freed while one "
                           "was being stored)", stored, (unsigned long long)nested);
    }
}
