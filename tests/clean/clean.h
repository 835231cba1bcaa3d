/* clean.h: shared by the clean programs: correct uses of wref that the checker must stay
 * silent about (no finding, no output on stderr, exit status 0). */
#ifndef WREF_CLEAN_H
#define WREF_CLEAN_H

#include <wref.h>

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

#endif
