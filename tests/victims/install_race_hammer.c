/* install_race_hammer.c: the library of install_race.c. The program links it after the checker,
 * and the loader runs the constructors of independent libraries in reverse order, so this one
 * runs before libwref-check's: it starts a thread that alternates two SIGSEGV handlers through
 * sigaction (the checker's interposer, not yet installed) and returns once that thread is
 * busy, so the checker installs its own handler while the thread keeps calling. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

void install_race_h1(int sig);
void install_race_h2(int sig);
void install_race_h1(int sig) { (void)sig; _exit(71); }
void install_race_h2(int sig) { (void)sig; _exit(72); }

static pthread_t thread;
static int stop;                   /* atomic */
static long calls;                 /* atomic */
static void (*last)(int);          /* atomic: the handler of the last completed call */
static int started;                /* the thread was started */
static int kernel_had_handler;     /* SIGSEGV had a handler before the thread started */

static void *hammer(void *arg)
{
    (void)arg;
    struct sigaction sa[2];
    memset(sa, 0, sizeof sa);
    sa[0].sa_handler = install_race_h1;
    sa[1].sa_handler = install_race_h2;
    for (long n = 0; !__atomic_load_n(&stop, __ATOMIC_ACQUIRE); n++) {
        if (sigaction(SIGSEGV, &sa[n & 1], NULL) != 0)
            break;
        __atomic_store_n(&last, sa[n & 1].sa_handler, __ATOMIC_RELEASE);
        __atomic_store_n(&calls, n + 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

__attribute__((constructor)) static void start(void)
{
    struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } k;
    if (syscall(SYS_rt_sigaction, SIGSEGV, NULL, &k, sizeof k.mask) == 0)
        kernel_had_handler = k.handler != (void *)SIG_DFL;
    if (pthread_create(&thread, NULL, hammer, NULL) != 0)
        return;
    started = 1;
    while (__atomic_load_n(&calls, __ATOMIC_ACQUIRE) < 200)
        sched_yield();
}

/* Stops the thread: the number of calls it made (-1: it never ran, or the checker's handler
 * was already in place when it started), *handler: the one it installed last. */
long install_race_stop(void (**handler)(int));
long install_race_stop(void (**handler)(int))
{
    if (!started || kernel_had_handler)
        return -1;
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    pthread_join(thread, NULL);
    *handler = __atomic_load_n(&last, __ATOMIC_ACQUIRE);
    return __atomic_load_n(&calls, __ATOMIC_ACQUIRE);
}
