/* guard_onstack.c: under guard=all, a program that catches its own stack overflow with a
 * SIGSEGV handler on an alternate stack (SA_ONSTACK), installed after the checker. The
 * kernel can only deliver the overflow's SIGSEGV on the alternate stack, so the checker's own
 * handler must be SA_ONSTACK too, or the process dies without the program's handler. No
 * finding: the overflow is not a checker matter; the program's handler exits 42. */
#include "victim.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static void program_handler(int sig)
{
    (void)sig;
    static const char msg[] = "stack overflow caught on the alternate stack\n";
    (void)!write(1, msg, sizeof msg - 1);
    _exit(42);
}

static volatile int limit = -1;   /* never reached: the stack overflows first */

static NOINLINE int victim_recurse(volatile char *prev, int depth)
{
    volatile char frame[512];
    frame[0] = (char)depth;
    frame[511] = prev ? prev[0] : 0;
    if (depth == limit)
        return 0;
    return victim_recurse(frame, depth + 1) + frame[0];   /* BUG: unbounded recursion */
}

int main(void)
{
    static char alt[64 * 1024];
    stack_t ss = { .ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0 };
    VCHECK(sigaltstack(&ss, NULL) == 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = program_handler;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    VCHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
    wref_object *w = wref_new(&widget_type);   /* the checker is active */
    VCHECK(w);
    wref_decref(w);
    return victim_recurse(NULL, 0);
}
