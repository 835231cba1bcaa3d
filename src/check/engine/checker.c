/* checker.c: the life of the checker (checker.h): options and start-up, fork order,
 * flush_on_signal, and the exit-time work. */
#include "checker.h"
#include "borrow.h"
#include "buf.h"
#include "census.h"
#include "core.h"
#include "fault.h"
#include "heap.h"
#include "options.h"
#include "poison.h"
#include "registry.h"
#include "report.h"
#include "stack.h"
#include "stats.h"
#include "symbolize.h"

#include <pthread.h>

#include <dlfcn.h>
#include <signal.h>
#include <ucontext.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static pthread_once_t init_once_ctl = PTHREAD_ONCE_INIT;

/* ---- start-up and exit --------------------------------------------------------------------- */

/* options.c's warnings start "WARNING: wref-check: "; every checker warning has the prefix
 * "==PID==WARNING: wref-check: ", as the sanitizers' do. */
static void warn_option(const char *line, void *arg)
{
    (void)arg;
    char buf[1100];
    int n = snprintf(buf, sizeof buf, "==%d==%s", (int)getpid(), line);
    if (n < 0)
        return;
    if ((size_t)n > sizeof buf - 2)
        n = (int)sizeof buf - 2;
    if (n && buf[n - 1] != '\n')
        buf[n++] = '\n';
    (void)!write(2, buf, (size_t)n);
}

#define MAX_EXIT_HOOKS 4
static void (*exit_hooks[MAX_EXIT_HOOKS])(void);   /* atomic: filled in order, read at exit */
static unsigned n_exit_hooks;                      /* atomic: slots taken */

void wref__checker_at_exit(void (*fn)(void))
{
    unsigned i = __atomic_fetch_add(&n_exit_hooks, 1, __ATOMIC_RELAXED);
    if (i < MAX_EXIT_HOOKS)
        __atomic_store_n(&exit_hooks[i], fn, __ATOMIC_RELEASE);
    else
        wref__checker_warn(NULL, "internal: more than %d exit hooks; one is not run", MAX_EXIT_HOOKS);
}

/* The exit-time work: the frontends' own, census, quarantine check, the reports' last words. */
static void exit_work(void)
{
    wref__buf graph = {0};
    for (unsigned i = 0; i < MAX_EXIT_HOOKS; i++) {
        void (*fn)(void) = __atomic_load_n(&exit_hooks[i], __ATOMIC_ACQUIRE);
        if (fn)
            fn();
    }
    if (wref__opt.leak_check)
        wref__census(&graph);
    wref__heap_drain_check();
    if (wref__opt.verbosity >= 1)
        wref__borrow_stats_print();
    wref__report_finish(graph.failed ? NULL : graph.data);   /* a cut graph is no JSON */
    wref__buf_free(&graph);
    if (wref__opt.verbosity >= 1)
        wref__stats_print(2);
}

static void at_exit(void)
{
    exit_work();
    if (wref__report_count()) {
        fflush(NULL);
        _exit(wref__opt.exitcode);
    }
}

/* ---- flush_on_signal ------------------------------------------------------------------------
 * Not async-signal-safe by nature (the census allocates, takes locks and calls the types'
 * traverse functions): if the signal interrupted a thread inside the checker, a lock it holds
 * would never be released. So the attempt is bounded by flush_timeout seconds on a timer of our own:
 * a POSIX timer created in the handler (raw syscalls, no allocation) that sends a private
 * real-time signal to the handling thread itself (SIGEV_THREAD_ID). The program's SIGALRM and
 * its alarm() are never touched. Either way the process then dies by the signal it caught
 * (its default action, with the signal unblocked), so the shell sees 128+N. Findings made
 * before the signal are on disk already. The timer's handler is the kernel's to call, past
 * any sanitizer (flush_timeout). */
static volatile sig_atomic_t flushing;
static int timeout_sig;   /* the private real-time signal; 0 when none was free */
static char timeout_msg[128];   /* the timeout's warning, formatted at start-up (no formatting in a handler) */

static void die_by(int sig)
{
    wref__signal_default(sig);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    raise(sig);                               /* pending while blocked in its handler... */
    pthread_sigmask(SIG_UNBLOCK, &set, NULL); /* ...delivered now: default action, death */
    _exit(128 + sig);                         /* not reached */
}

/* "==PID==WARNING: wref-check: " + msg on stderr, async-signal-safe: raw system calls only, so
 * that it may run where ThreadSanitizer does not know a signal handler runs (flush_timeout). */
__attribute__((no_sanitize("thread"))) static void signal_warn(const char *msg)
{
    char line[256], num[16];
    size_t len = 0, n = 0;
    for (unsigned v = (unsigned)syscall(SYS_getpid); v || !n; v /= 10)
        num[n++] = (char)('0' + v % 10);
    line[len++] = '=';
    line[len++] = '=';
    while (n)
        line[len++] = num[--n];
    for (const char *p = "==WARNING: wref-check: "; *p; p++)
        line[len++] = *p;
    for (const char *p = msg; *p && len < sizeof line - 1; p++)
        line[len++] = *p;
    line[len++] = '\n';
    (void)!syscall(SYS_write, 2, line, len);
}

/* Death by sig at once, by raw system calls past every interceptor: the kernel's action for
 * sig becomes SIG_DFL, sig is sent to this thread and unblocked. */
__attribute__((no_sanitize("thread"))) static void die_now(int sig)
{
    struct {   /* the kernel's struct sigaction (x86-64 and the generic layout of aarch64) */
        void (*handler)(int);
        unsigned long flags;
        void (*restorer)(void);
        unsigned long mask;
    } dfl = {SIG_DFL, 0, NULL, 0};
    unsigned long set = 1ul << (sig - 1);
    syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
    syscall(SYS_tgkill, syscall(SYS_getpid), syscall(SYS_gettid), sig);
    syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &set, NULL, sizeof set);
    syscall(SYS_exit_group, 128 + sig);   /* not reached */
}

/* The timeout. Installed with libc's own sigaction, past a sanitizer's interceptor, so that the
 * kernel calls it directly: ThreadSanitizer runs a handler it installed only when the thread
 * reaches one of its interceptors, which exit work spinning in a loop that calls nothing never
 * does (victim.flush_timeout_spin). So it calls nothing an interceptor stands in front of. */
__attribute__((no_sanitize("thread"))) static void flush_timeout(int sig)
{
    (void)sig;
    signal_warn(timeout_msg);
    die_now((int)flushing);
}

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

/* sigaction as libc defines it (not a sanitizer's interceptor, nor fault.c's interposer). */
static int libc_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    sigaction_fn fn = libc ? (sigaction_fn)dlsym(libc, "sigaction") : NULL;
    if (libc)
        dlclose(libc);
    return fn ? fn(sig, act, old) : sigaction(sig, act, old);
}

/* Arms a one-shot timer that sends timeout_sig to this thread after flush_timeout seconds.
 * Async-signal-safe: two system calls. Returns 0 when it could not. */
static int arm_timeout(void)
{
    if (!timeout_sig)
        return 0;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = timeout_sig;
    sev._sigev_un._tid = wref__tid();
    int timer = -1;   /* the kernel's timer id */
    if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &timer) != 0)
        return 0;
    struct itimerspec when = {.it_value = {.tv_sec = (time_t)wref__opt.flush_timeout}};
    return syscall(SYS_timer_settime, timer, 0, &when, NULL) == 0;
}

static void flush_handler(int sig, siginfo_t *info, void *uctx)
{
    (void)info;
    if (flushing)
        return;   /* already dying */
    flushing = sig;
    wref__report_dying_by_signal();
    /* The exit work runs with the mask this handler would have if the kernel had called it
     * directly: the interrupted code's mask plus `sig` (our sa_mask is empty), and never the
     * timeout signal. A handler may be called with every signal blocked instead:
     * ThreadSanitizer installs its own handler with a full sa_mask and calls ours from it, so
     * the timer's signal (and the program's SIGALRM) stayed pending for as long as the exit
     * work hung (victim.flush_timeout under TSan). */
    sigset_t mask;
    if (uctx)
        mask = ((const ucontext_t *)uctx)->uc_sigmask;
    else
        sigemptyset(&mask);
    sigaddset(&mask, sig);
    if (timeout_sig)
        sigdelset(&mask, timeout_sig);
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
    if (!arm_timeout()) {
        signal_warn("flush_on_signal: no timer to bound the exit work; dying by the signal without it");
        die_by(sig);
    }
    exit_work();
    die_by(sig);
}

/* The highest real-time signal the program leaves at its default action, for the timeout. */
static int pick_timeout_signal(void)
{
    for (int s = SIGRTMAX; s >= SIGRTMIN; s--) {
        struct sigaction old;
        if (sigaction(s, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL)
            return s;
    }
    return 0;
}

static void install_flush_on_signal(void)
{
    snprintf(timeout_msg, sizeof timeout_msg,
             "flush_on_signal: the exit work did not finish in %u s (flush_timeout); dying by the signal without it",
             wref__opt.flush_timeout);
    timeout_sig = pick_timeout_signal();
    if (timeout_sig) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = flush_timeout;
        sigemptyset(&sa.sa_mask);
        libc_sigaction(timeout_sig, &sa, NULL);
    }
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
            continue;   /* the program handles (or ignores) it: its exit runs our atexit */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = flush_handler;
        sa.sa_flags = SA_SIGINFO;   /* for the interrupted code's signal mask */
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

static void fork_prepare(void)
{
    wref__heap_fork(WREF__FORK_PREPARE);
    wref__report_fork(WREF__FORK_PREPARE);
    wref__registry_fork(WREF__FORK_PREPARE);
    wref__symbolize_fork(1);
    wref__fault_fork(WREF__FORK_PREPARE);
}

static void fork_release(enum wref__fork_phase phase)
{
    wref__fault_fork(phase);
    wref__symbolize_fork(0);
    wref__registry_fork(phase);
    wref__report_fork(phase);
    wref__heap_fork(phase);
}

static void fork_parent(void) { fork_release(WREF__FORK_PARENT); }
static void fork_child(void) { fork_release(WREF__FORK_CHILD); }

static void init_once(void)
{
    const char *env = secure_getenv("WREF_CHECK_OPTIONS");
    if (env)
        wref__options_parse(&wref__opt, env, warn_option, NULL);
    if (wref__opt.help)
        wref__options_help(2);
    wref__report_init();
    wref__self_locate();
    wref__stack_init(wref__opt.stack_depth, wref__opt.fast_unwind);
    wref__symbolize_snapshot_modules();
    (void)wref__thread_no();   /* the initialising thread (normally main) is T0 */
    wref__poison_init();
    wref__fault_install();   /* guard pages, and poison pointers in every mode */
    if (wref__opt.flush_on_signal)
        install_flush_on_signal();
    atexit(at_exit);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    if (wref__opt.verbosity >= 1)
        wref__checker_warn(NULL, "active (pid %d)", (int)getpid());
    __atomic_store_n(&wref__checker_ready, true, __ATOMIC_RELEASE);
}

void wref__checker_init(void)
{
    pthread_once(&init_once_ctl, init_once);
}

__attribute__((constructor)) static void checker_constructor(void)
{
    wref__checker_init();
}
