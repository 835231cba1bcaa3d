/* guard_forged.c: under guard=all, a SIGSEGV the program sends itself (rt_tgsigqueueinfo,
 * si_code SI_QUEUE) whose si_addr names the guarded memory of a destroyed object. It is not an
 * access fault, so the checker passes it on untouched: no finding, and the program's own
 * SA_SIGINFO handler gets it with the siginfo it sent and exits 42 (issue 10: "si_code is
 * checked"). A handler that trusted si_addr without looking at si_code would report a
 * use-after-free on Widget#1 here. */
#include "victim.h"

#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *g_stale;   /* the destroyed object's address, sent as si_addr */

static void program_handler(int sig, siginfo_t *info, void *ctx)
{
    (void)ctx;
    static const char ok[] = "the program's handler got its own SIGSEGV\n";
    static const char bad[] = "the program's handler got a different siginfo\n";
    if (sig == SIGSEGV && info->si_code == SI_QUEUE && info->si_addr == g_stale) {
        (void)!write(1, ok, sizeof ok - 1);
        _exit(42);
    }
    (void)!write(1, bad, sizeof bad - 1);
    _exit(43);
}

static NOINLINE void victim_send_forged_segv(void *addr)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGSEGV;
    si.si_code = SI_QUEUE;   /* sent, not a fault: the kernel lets a process forge its own */
    si.si_addr = addr;
    VCHECK(syscall(SYS_rt_tgsigqueueinfo, getpid(), (pid_t)syscall(SYS_gettid), SIGSEGV, &si) == 0);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = program_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    VCHECK(sigaction(SIGSEGV, &sa, NULL) == 0);   /* after the checker's: chained */
    wref_object *w = wref_new(&widget_type);
    VCHECK(w);
    g_stale = (char *)w + 8;
    wref_decref(w);   /* destroyed: its page is inaccessible (guard=all) */
    victim_send_forged_segv(g_stale);
    return 1;   /* not reached: the handler exits */
}
