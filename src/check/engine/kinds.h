/* kinds.h: the finding kinds, as data (the table is kinds.def; names and bits: kinds.c). */
#ifndef WREF_CHECK_ENGINE_KINDS_H
#define WREF_CHECK_ENGINE_KINDS_H

enum wref__kind {
#define WREF__KIND(ID, name, rule, once, severity, short_desc, full_desc) WREF__K_##ID,
#include "kinds.def"
    WREF__K_COUNT
};

const char *wref__kind_name(enum wref__kind k);       /* "use-after-free"; "unknown" if out of range */
const char *wref__kind_severity(enum wref__kind k);   /* "error" or "warning" */

/* The record's `reported` bit of a kind reported at most once per object (kinds.def's
 * `once`; registry.h's wref__rec.reported is 8 bits, so such kinds are among the first 8:
 * kinds.c checks it at compile time). */
#define WREF__REPORTED(kind) ((unsigned)(1u << (kind)))

#endif /* WREF_CHECK_ENGINE_KINDS_H */
