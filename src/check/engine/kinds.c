/* kinds.c: the finding kinds' names and severities, from the one table kinds.def. */
#include "kinds.h"

static const char *const names[WREF__K_COUNT] = {
#define WREF__KIND(ID, name, rule, once, severity, short_desc, full_desc) [WREF__K_##ID] = name,
#include "kinds.def"
};

static const char *const severities[WREF__K_COUNT] = {
#define WREF__KIND(ID, name, rule, once, severity, short_desc, full_desc) [WREF__K_##ID] = severity,
#include "kinds.def"
};

/* A kind reported once per object has its bit in the record's 8-bit `reported` field. */
#define WREF__KIND(ID, name, rule, once, severity, short_desc, full_desc) \
    _Static_assert(!(once) || WREF__K_##ID < 8, "kinds.def: a reported-once kind must be among the first 8");
#include "kinds.def"

const char *wref__kind_name(enum wref__kind k)
{
    return (unsigned)k < WREF__K_COUNT ? names[k] : "unknown";
}

const char *wref__kind_severity(enum wref__kind k)
{
    return (unsigned)k < WREF__K_COUNT ? severities[k] : "error";
}
