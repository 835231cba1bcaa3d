/* fault.h: the signal-safe fault path (fault.c): guard-page and poison-pointer faults become
 * findings from the SIGSEGV handler, with no lock and no allocation; the interposed
 * sigaction/signal keep the program's own handlers chained behind it. */
#ifndef WREF_CHECK_ENGINE_FAULT_H
#define WREF_CHECK_ENGINE_FAULT_H

#include "core.h"

void wref__fault_install(void);
void wref__fault_fork(enum wref__fork_phase phase);     /* the interposed sigaction's slot lock */
/* Sets sig's action to SIG_DFL through libc's sigaction (past the interposer of fault.c).
 * Async-signal-safe. */
void wref__signal_default(int sig);

#endif /* WREF_CHECK_ENGINE_FAULT_H */
