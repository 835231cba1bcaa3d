/* fault_chain_race.c: the checker's SIGSEGV handler reads the program's handler (to chain to
 * it) while another thread of the program replaces that handler through the interposed
 * sigaction (issue 10: "the previous handler is read safely against the sigaction interposer").
 *
 * An installer thread alternates two handlers as fast as it can: A, an sa_sigaction with
 * SA_SIGINFO, and B, an sa_handler without it. The main thread faults FAULT_RACE_FAULTS times
 * (default 200000) on a PROT_NONE page of its own, on an alternate signal stack; the checker's
 * handler finds no object there and chains. Every fault must reach A or B called as its own
 * flags say; both siglongjmp back. A handler copied half old, half new pairs A's function
 * with B's flags: A is then called as A(sig), and its info argument is not the siginfo the
 * kernel put on the alternate stack. Then the interposer must report the last handler
 * installed, and the kernel's handler must still be the checker's (not A or B).
 *
 * Self-checking: prints "PASS fault_chain_race ..." or "FAIL ..." (exit 1). Run under the
 * checker only (linked). */
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <wref/check.h>

static sigjmp_buf env;
static char *page;                 /* PROT_NONE: every read faults */
static char *alt;                  /* the main thread's alternate signal stack */
static size_t alt_size;
static long via_a, via_b, torn;    /* main thread only (its handlers) */
static int stop;                   /* atomic */
static int last_a;                 /* atomic: the installer's last install was A */

static void on_a(int sig, siginfo_t *info, void *ctx)
{
    (void)ctx;
    /* called as A(sig) after a torn copy: info is whatever was in the register, not the kernel's */
    if ((char *)info >= alt && (char *)info < alt + alt_size && info->si_signo == sig && info->si_addr == page)
        via_a++;
    else
        torn++;
    siglongjmp(env, 1);
}

static void on_b(int sig)
{
    (void)sig;
    via_b++;
    siglongjmp(env, 1);
}

static void *installer(void *arg)
{
    (void)arg;
    struct sigaction a, b;
    memset(&a, 0, sizeof a);
    a.sa_sigaction = on_a;
    a.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&a.sa_mask);
    memset(&b, 0, sizeof b);
    b.sa_handler = on_b;
    b.sa_flags = SA_NODEFER | SA_ONSTACK;
    sigfillset(&b.sa_mask);
    unsigned long n = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        bool use_a = n++ & 1;
        if (sigaction(SIGSEGV, use_a ? &a : &b, NULL) != 0)
            return (void *)1;
        __atomic_store_n(&last_a, use_a, __ATOMIC_RELEASE);
    }
    return NULL;
}

static int fail(const char *what)
{
    printf("FAIL fault_chain_race: %s (A %ld, B %ld, torn %ld)\n", what, via_a, via_b, torn);
    return 1;
}

int main(void)
{
    if (!wref_check_active())
        return fail("not run under the checker");
    const char *env_n = getenv("FAULT_RACE_FAULTS");
    long faults = env_n ? atol(env_n) : 200000;
    page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    alt_size = 1 << 16;
    alt = malloc(alt_size);
    stack_t ss = {.ss_sp = alt, .ss_size = alt_size};
    if (page == MAP_FAILED || !alt || sigaltstack(&ss, NULL) != 0)
        return fail("set-up");
    /* the first install, before the race: a fault always has a handler to reach */
    struct sigaction b;
    memset(&b, 0, sizeof b);
    b.sa_handler = on_b;
    b.sa_flags = SA_NODEFER | SA_ONSTACK;
    if (sigaction(SIGSEGV, &b, NULL) != 0)
        return fail("sigaction");
    pthread_t t;
    if (pthread_create(&t, NULL, installer, NULL) != 0)
        return fail("pthread_create");
    for (long i = 0; i < faults; i++)
        if (sigsetjmp(env, 0) == 0) {
            (void)*(volatile char *)page;
            return fail("a read of a PROT_NONE page did not fault");
        }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    void *rc;
    pthread_join(t, &rc);
    if (rc)
        return fail("the installer's sigaction failed");
    if (torn)
        return fail("a fault chained to a handler copied half old, half new");
    if (via_a + via_b != faults)
        return fail("a fault reached neither handler");
    struct sigaction now;
    if (sigaction(SIGSEGV, NULL, &now) != 0)
        return fail("sigaction query");
    bool now_a = (now.sa_flags & SA_SIGINFO) && now.sa_sigaction == on_a;
    bool now_b = !(now.sa_flags & SA_SIGINFO) && now.sa_handler == on_b;
    if (!(__atomic_load_n(&last_a, __ATOMIC_ACQUIRE) ? now_a : now_b))
        return fail("the interposer does not report the last handler installed");
    /* the kernel's own view (the raw call, past every interposer): still the checker's handler */
    struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } k;
    if (syscall(SYS_rt_sigaction, SIGSEGV, NULL, &k, sizeof k.mask) != 0)
        return fail("rt_sigaction");
    if (k.handler == (void *)on_a || k.handler == (void *)on_b)
        return fail("the program's handler replaced the checker's in the kernel");
    printf("PASS fault_chain_race: %ld faults, %ld chained to A, %ld to B while the other thread installed them\n",
           faults, via_a, via_b);
    return 0;
}
