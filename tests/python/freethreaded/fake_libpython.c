/* fake_libpython.c: just enough of a free-threaded CPython 3.13 ("3.13t") for the checker's
 * start-up to look at, as libpython3.13t.so.
 *
 * The checker's CPython frontend starts at the first interposed call (PyWeakref_GetObject),
 * reads Py_GetVersion and must refuse a free-threaded build (another object header) with one
 * line, then call the interpreter's own function and stay out of the way. No free-threaded
 * build is installed on these machines, so this library stands in for one: its version string
 * is the one CPython 3.13's free-threaded build reports, and its PyWeakref_GetObject is a
 * plain function the checker must reach through RTLD_NEXT. */
#include <stddef.h>

#define EXPORT __attribute__((visibility("default")))

EXPORT const char *Py_GetVersion(void)
{
    return "3.13.0 experimental free-threading build (main, Oct  7 2024, 12:00:00) [GCC 12.2.0]";
}

/* A "weakref" here is a pointer to its referent. */
EXPORT void *PyWeakref_GetObject(void *ref)
{
    return ref ? *(void **)ref : NULL;
}

EXPORT void *PyWeakref_NewRef(void *ob, void *callback)
{
    (void)ob;
    (void)callback;
    return NULL;
}
