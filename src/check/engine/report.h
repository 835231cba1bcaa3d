/* report.h: the report pipeline (report.c), the one place findings go out: their stacks
 * resolved, suppressions applied (suppress.c), then each format the `report` option asks for:
 * text, JSON (json.c) and, for leaks, LeakSanitizer's shape. */
#ifndef WREF_CHECK_ENGINE_REPORT_H
#define WREF_CHECK_ENGINE_REPORT_H

#include "core.h"
#include "finding.h"
#include "kinds.h"

#include <stddef.h>

/* Reports f in every format the options ask for (text, json, lsan), unless a suppression
 * matches it. Returns the finding's id (1, 2, ... in this process) or 0 when suppressed.
 * Halts the process when halt_on_error=1. */
size_t wref__report(const wref__finding *f);
size_t wref__report_count(void);
size_t wref__report_count_unlocked(void);   /* for the signal handler */
void wref__report_dying_by_signal(void);    /* flush_on_signal: no exit status of ours */
/* A finding formatted by the fault handler: counted and written as text and JSON with no lock
 * and no allocation. Async-signal-safe (for a process about to die). */
void wref__report_signal_finding(enum wref__kind kind, const char *text, size_t text_len, const char *json,
                                 size_t json_len);
/* A fault the fault handler found suppressed (wref__suppress_match_type counted the entry): the
 * summary's "suppressed" count and the JSON tail with the suppressions used. Async-signal-safe,
 * as wref__report_signal_finding. */
void wref__report_signal_suppressed(void);
void wref__report_init(void);     /* at checker init: formats, the JSON file, suppressions */
/* At exit (or halt): the LeakSanitizer-shaped block, the suppressions table, the JSON
 * document's final tail (leak_graph: JSON text of the leak graph or NULL) and the SUMMARY
 * line. Idempotent. */
void wref__report_finish(const char *leak_graph);
void wref__report_fork(enum wref__fork_phase phase);    /* the child starts its own report */

#endif /* WREF_CHECK_ENGINE_REPORT_H */
