/* suppress.h: suppressions (suppress.c; option suppressions=FILE). */
#ifndef WREF_CHECK_ENGINE_SUPPRESS_H
#define WREF_CHECK_ENGINE_SUPPRESS_H

#include "buf.h"
#include "finding.h"
#include <stdbool.h>
#include <stddef.h>

void wref__suppress_load(const char *path);    /* warns about bad lines; idempotent */
/* The suppression matching f, counted; false when none. */
bool wref__suppress_match(const wref__finding *f, const wref__rstack *stacks, size_t n_stacks);
/* For the fault handler, which cannot symbolize: only 'kind:type=Pattern' entries apply. */
bool wref__suppress_match_type(enum wref__kind kind, const char *type_name);
void wref__suppress_table_text(wref__buf *b);  /* "suppressions used:" table, or nothing */
void wref__suppress_table_json(wref__buf *b);  /* [{"kind","pattern","count"}...] */
/* The same table through put; allocates nothing: async-signal-safe when put is (the fault
 * handler's JSON tail). */
void wref__suppress_table_json_put(void (*put)(void *ctx, const char *p, size_t n), void *ctx);

#endif /* WREF_CHECK_ENGINE_SUPPRESS_H */
