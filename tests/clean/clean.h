/* clean.h: shared by the clean programs: correct uses of wref that the checker must stay
 * silent about (no finding, no output on stderr, exit status 0).
 *
 * Silence proves nothing when the checker is not there, so every program that includes this
 * header proves it first (run_clean.py asserts both):
 *   - its first line of stdout is "wref-check active: 1" (wref_check_active(): 0 with the
 *     release library, e.g. when LD_PRELOAD names the wrong file);
 *   - with WREF_CLEAN_CANARY=1 it commits two known bugs instead of its work and exits: a
 *     leaked CleanCanary object and an invalid-object use of a pointer wref never allocated.
 *     run_clean.py runs that sibling first, with the same environment and options, and
 *     requires exactly those two findings on stderr and exit status 23: so options that
 *     send the reports elsewhere (log_path), turn checks off (leak_check=0) or change the
 *     exit status (exitcode=0) fail the clean test instead of making it vacuous. */
#ifndef WREF_CLEAN_H
#define WREF_CLEAN_H

#include <wref.h>
#include <wref/check.h>

#include <stdio.h>
#include <stdlib.h>

/* Like assert(), also in Release builds. */
#define CHECK(cond) \
    ((cond) ? (void)0 : (fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond), exit(1)))

/* A number from the environment (for timing runs), or a default. */
static inline long env_long(const char *name, long dflt)
{
    const char *s = getenv(name);
    return s && *s ? strtol(s, NULL, 10) : dflt;
}

/* The canary's two bugs. noinline: they are named in the report's stacks. */
__attribute__((noinline)) static void clean_canary_leak(void)
{
    static const wref_type canary_type = {.name = "CleanCanary", .size = sizeof(wref_object)};
    wref_object *leaked = wref_new(&canary_type);   /* BUG (on purpose): never released */
    CHECK(leaked != NULL);
}

__attribute__((noinline)) static void clean_canary_invalid(void)
{
    static union {
        wref_object ob;
        char bytes[64];
    } not_an_object;   /* zeroed static memory wref never allocated */
    wref_object *volatile p = &not_an_object.ob;
    wref_incref(p);   /* BUG (on purpose): invalid-object */
}

/* Runs before main: the proof that the checker is there. */
__attribute__((constructor)) static void clean_prove_checker(void)
{
    const char *canary = getenv("WREF_CLEAN_CANARY");
    if (canary && *canary == '1') {
        clean_canary_leak();
        clean_canary_invalid();
        exit(0);   /* the exit census reports the leak; the checker's exit status follows */
    }
    printf("wref-check active: %d\n", wref_check_active());
    fflush(stdout);
}

#endif
