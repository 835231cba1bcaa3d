/* uaf_guard_user_handler.c: like uaf_guard, in a program that installs its own SIGSEGV handler
 * after the checker started (as crash reporters do). Run with guard=all: the checker still
 * reports the guard-page fault, then chains to the program's handler, which exits 42. */
#include "victim.h"
#include "stale_read.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static void program_handler(int sig, siginfo_t *info, void *ctx)
{
    (void)sig;
    (void)info;
    (void)ctx;
    static const char msg[] = "program's SIGSEGV handler ran\n";
    (void)!write(1, msg, sizeof msg - 1);
    _exit(42);
}

int main(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = program_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    VCHECK(sigaction(SIGSEGV, &sa, &old) == 0);
    struct sigaction now;
    VCHECK(sigaction(SIGSEGV, NULL, &now) == 0 && now.sa_sigaction == program_handler);   /* as installed */
    struct widget *w = (struct widget *)wref_new(&widget_type);
    VCHECK(w);
    wref_decref(&w->ob_base);
    return victim_read_stale(w);
}
