/* core.h: what every layer of the checker uses (core.c): thread numbers, the checker's own
 * warnings, its own address range and stack capture without its own frames, the ready flag
 * and the fork phases. It knows no record, no finding and no object model. */
#ifndef WREF_CHECK_ENGINE_CORE_H
#define WREF_CHECK_ENGINE_CORE_H

#include "stack.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

extern bool wref__checker_ready;         /* init done (checker.c): hooks may record */
unsigned wref__thread_no(void);          /* T0, T1, ... in order of first contact */
int wref__tid(void);                     /* kernel thread id */
void wref__self_locate(void);            /* at init: finds the checker's own address range */
bool wref__self_contains(uintptr_t pc);  /* pc is inside libwref-check itself */
/* One-line warning about the checker itself (not a finding), printed once per `once` flag. */
void wref__checker_warn(bool *once, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The caller's stack, starting at the outermost checker frame (the public API function the
 * program called), trimmed to the stack_depth option. */
wref__stack_id wref__capture(void);

/* fork(): the checker's locks are taken before fork and released after it in both processes
 * (the registry's bucket locks are re-initialized in the child instead), so a child never
 * inherits a lock held by a thread that does not exist there. checker.c calls each layer's
 * fork function in the checker's lock order: heap, report, registry, symbolize, fault. */
enum wref__fork_phase { WREF__FORK_PREPARE, WREF__FORK_PARENT, WREF__FORK_CHILD };

/* The fork work of a layer whose state one mutex guards: taken before fork, released in the
 * parent, made anew in the child (whose only thread is the one that took it). */
void wref__fork_mutex(pthread_mutex_t *m, enum wref__fork_phase phase);

#endif /* WREF_CHECK_ENGINE_CORE_H */
