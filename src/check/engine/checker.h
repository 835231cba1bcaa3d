/* checker.h: the life of the checker (checker.c): start-up (options, report, stacks, poison,
 * fault handler), fork order, flush_on_signal and the exit-time work (frontends' exit hooks,
 * census, quarantine check, the reports' last words). The top of the engine: it calls every
 * layer, and no engine file but checker.c calls it.
 *
 * The engine's layers, bottom up (a module includes only headers of the rows above it):
 *   options, stats, symbolize, buf, kinds, model   leaves
 *   stack                 capture and the depot
 *   core                  thread numbers, warnings, capture, fork phases
 *   registry, dl          records and states; the module map's dlopen/dlclose
 *   borrow, finding, poison
 *   suppress -> json -> report   the report pipeline
 *   heap, census          quarantine heap; leaks
 *   fault                 the signal-safe fault path
 *   checker               this file: calls every layer; no engine file calls it
 * Frontends (../wref/, ../python/) include these headers; no engine header includes theirs
 * (tests/repo/check_layers.py). */
#ifndef WREF_CHECK_ENGINE_CHECKER_H
#define WREF_CHECK_ENGINE_CHECKER_H

void wref__checker_init(void);           /* idempotent; runs from the constructor */
/* A frontend's exit-time work (findings known only at exit, statistics), run first at exit,
 * before the census, in the order added. At most 4; thread-safe. */
void wref__checker_at_exit(void (*fn)(void));

#endif /* WREF_CHECK_ENGINE_CHECKER_H */
