/* dl.c: dlopen and dlclose, interposed so that the module map (symbolize.h) sees every load
 * and unload: a stack captured in a plugin is still named after the plugin's file once it
 * is dlclose'd, and not after whatever library is loaded at its address later.
 *
 * The checker's own definitions come before libc's in symbol lookup (LD_PRELOAD, or a
 * program linked against libwref-check); each forwards to the next definition
 * (RTLD_NEXT: libc, or a sanitizer's interceptor that forwards to libc in turn). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "core.h"
#include "symbolize.h"

#include <dlfcn.h>

typedef void *(*dlopen_fn)(const char *, int);
typedef int (*dlclose_fn)(void *);

#define WREF_INTERPOSE __attribute__((visibility("default"), no_sanitize("thread")))

WREF_INTERPOSE void *dlopen(const char *file, int mode)
{
    static dlopen_fn next_fn;   /* atomic: resolved once, any thread may race to it */
    dlopen_fn next = __atomic_load_n(&next_fn, __ATOMIC_ACQUIRE);
    if (next == NULL) {
        next = (dlopen_fn)dlsym(RTLD_NEXT, "dlopen");
        __atomic_store_n(&next_fn, next, __ATOMIC_RELEASE);
    }
    void *h = next != NULL ? next(file, mode) : NULL;
    if (h != NULL && wref__checker_ready)
        wref__symbolize_snapshot_modules();
    return h;
}

WREF_INTERPOSE int dlclose(void *handle)
{
    static dlclose_fn next_fn;
    dlclose_fn next = __atomic_load_n(&next_fn, __ATOMIC_ACQUIRE);
    if (next == NULL) {
        next = (dlclose_fn)dlsym(RTLD_NEXT, "dlclose");
        __atomic_store_n(&next_fn, next, __ATOMIC_RELEASE);
    }
    if (wref__checker_ready)
        wref__symbolize_snapshot_modules();   /* a library dlopen'd behind our back */
    int r = next != NULL ? next(handle) : -1;
    if (wref__checker_ready)
        wref__symbolize_snapshot_modules();
    return r;
}
