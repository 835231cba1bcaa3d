/* json.h: the JSON report (json.c, docs/report-schema.json). */
#ifndef WREF_CHECK_ENGINE_JSON_H
#define WREF_CHECK_ENGINE_JSON_H

#include "finding.h"
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The file is valid JSON after every finding: each finding and the document's tail are
 * written in one pwrite at the end of the findings array. Called under report.c's lock. */
/* Asks for a JSON report at <prefix>.<pid>.json; the file is created (O_EXCL|O_NOFOLLOW) at
 * the first finding or at exit. */
void wref__json_open(const char *prefix);
/* Appends finding `id` (written with the next tail). With fold_repeats=1 it ends with a
 * "repeats" field of fixed width, 0 until wref__json_set_repeats: returns the file offset of
 * its value (-1: none, or the finding could not be added). */
off_t wref__json_finding(size_t id, const wref__finding *f, const wref__rstack *stacks, size_t n_stacks,
                         const char *summary);
/* Sets the "repeats" value at `slot` (from wref__json_finding) to n, in place: the document
 * stays valid. A slot not written yet is changed in the pending findings. */
void wref__json_set_repeats(off_t slot, size_t n);
/* Rewrites the tail: counts (total: every finding, repeats included; repeats: of them, those
 * folded into an earlier one), suppressions used, the leak graph; complete=true when final. */
void wref__json_tail(const size_t *by_kind, size_t total, size_t suppressed, size_t repeats, const char *leak_graph,
                     bool final, int exit_status);

/* From a signal handler (fault.c), for a process about to die: appends one finding (JSON
 * object text, no separator) and a tail with the counts, complete=false. Async-signal-safe:
 * no allocation, no lock; returns false (and writes nothing) when the document is not open. */
bool wref__json_signal_finding(const char *finding, size_t len, const size_t *by_kind, size_t total,
                               size_t suppressed, size_t repeats);
/* From a signal handler: rewrites the tail only (a suppressed fault: the counts and the
 * suppressions used), complete=false. Async-signal-safe; false when the document is not open. */
bool wref__json_signal_tail(const size_t *by_kind, size_t total, size_t suppressed, size_t repeats);
/* Opens the document now (guard pages: the signal handler cannot create it). */
void wref__json_open_now(void);

void wref__json_after_fork(void);   /* child: a new document, opened lazily */

#endif /* WREF_CHECK_ENGINE_JSON_H */
