/* guard_recover.c: a program that survives a guard-page fault. Its own SIGSEGV handler (as a
 * crash-tolerant runtime has) siglongjmps back out of the stale read, and the program then
 * ends by returning from main: the checker's exit path runs after the fault (check_guard_log.py,
 * "recover"). Run with guard=all. Prints "recovered" after the fault, "not faulted" without. */
#include "victim.h"
#include "stale_read.h"

#include <setjmp.h>
#include <signal.h>
#include <string.h>

static sigjmp_buf back;

static void program_handler(int sig)
{
    (void)sig;
    siglongjmp(back, 1);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = program_handler;
    sigemptyset(&sa.sa_mask);
    VCHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
    struct widget *w = (struct widget *)wref_new(&widget_type);
    VCHECK(w);
    wref_decref(&w->ob_base);
    if (sigsetjmp(back, 1) == 0) {
        (void)victim_read_stale(w);
        puts("not faulted");
        return 1;
    }
    puts("recovered");
    return 0;
}
