/* checker.c: the life of the checker: options and start-up, thread names, stack capture
 * without the checker's own frames, the control API (wref/check.h), and the exit-time work. */
#include "checker.h"
#include "python/python.h"
#include "stats.h"
#include "symbolize.h"
#include "wref/check.h"

#include <dlfcn.h>
#include <signal.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

bool wref__checker_ready;

static struct {
    pthread_once_t once;
    uintptr_t self_start, self_end;   /* our own text/data segments: frames to trim */
    unsigned next_tno;                /* atomic */
} chk = {.once = PTHREAD_ONCE_INIT};

static __thread __attribute__((tls_model("initial-exec"))) unsigned tno_plus1;   /* 0: not numbered yet */

unsigned wref__thread_no(void)
{
    if (!tno_plus1)
        tno_plus1 = __atomic_fetch_add(&chk.next_tno, 1, __ATOMIC_RELAXED) + 1;
    return tno_plus1 - 1;
}

int wref__tid(void)
{
    return (int)syscall(SYS_gettid);
}

void wref__checker_warn(bool *once, const char *fmt, ...)
{
    if (once) {
        if (__atomic_exchange_n(once, true, __ATOMIC_RELAXED))
            return;
    }
    char line[512];
    int n = snprintf(line, sizeof line, "==%d==WARNING: wref-check: ", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    (void)!write(2, line, (size_t)n);
}

/* ---- our own address range, to trim checker frames from captured stacks ----------------------- */

static int find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uintptr_t probe = *(uintptr_t *)arg;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
        if (s < lo)
            lo = s;
        if (e > hi)
            hi = e;
    }
    if (probe >= lo && probe < hi) {
        chk.self_start = lo;
        chk.self_end = hi;
        return 1;
    }
    return 0;
}

bool wref__self_contains(uintptr_t pc)
{
    return pc >= chk.self_start && pc < chk.self_end;
}

/* The caller's stack, starting at the outermost checker frame (the public API function the
 * program called, e.g. wref_decref), so reports begin where the program entered wref. */
wref__stack_id wref__capture(void)
{
    uintptr_t pcs[WREF__STACK_MAX_DEPTH + 16];
    size_t n = wref__stack_unwind(pcs, WREF__STACK_MAX_DEPTH + 16, 0);
    size_t first = 0;
    while (first + 1 < n && wref__self_contains(pcs[first + 1]))
        first++;
    size_t keep = n - first;
    if (keep > wref__opt.stack_depth)
        keep = wref__opt.stack_depth;
    return wref__stack_store(pcs + first, keep);
}

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

/* The exit-time work: census, quarantine check, the reports' last words. */
static void exit_work(void)
{
    wref__buf graph = {0};
    wref__python_exit();
    if (wref__opt.leak_check)
        wref__census(&graph);
    wref__heap_drain_check();
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
 * Not async-signal-safe by nature (the census allocates and takes locks): if the signal
 * interrupted a thread inside the checker, a lock it holds would never be released, so an
 * alarm bounds the attempt. Findings made before the signal are on disk either way. */
static volatile sig_atomic_t flushing;

static void die_by(int sig)
{
    signal(sig, SIG_DFL);
    raise(sig);   /* pending until the handler returns, then delivered with the default action */
}

static void flush_timeout(int sig)
{
    (void)sig;
    static const char msg[] = "==WARNING: wref-check: flush_on_signal: exit work did not finish in 2 s; dying\n";
    char pid[24], *p = pid + sizeof pid;   /* "==PID" without stdio: a signal handler */
    for (unsigned long v = (unsigned long)getpid(); p == pid + sizeof pid || v; v /= 10)
        *--p = (char)('0' + v % 10);
    *--p = '=';
    *--p = '=';
    (void)!write(2, p, (size_t)(pid + sizeof pid - p));
    (void)!write(2, msg, sizeof msg - 1);
    signal((int)flushing, SIG_DFL);
    raise((int)flushing);   /* SIGALRM's handler: the original signal, default action */
    _exit(128 + (int)flushing);
}

static void flush_handler(int sig)
{
    if (flushing)
        return;   /* already dying */
    flushing = sig;
    wref__report_dying_by_signal();
    signal(SIGALRM, flush_timeout);
    alarm(2);
    exit_work();
    alarm(0);
    die_by(sig);
}

static void install_flush_on_signal(void)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
            continue;   /* the program handles (or ignores) it: its exit runs our atexit */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = flush_handler;
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
}

static void fork_release(enum wref__fork_phase phase)
{
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
    uintptr_t probe = (uintptr_t)&init_once;
    dl_iterate_phdr(find_self, &probe);
    wref__stack_init(wref__opt.stack_depth, wref__opt.fast_unwind);
    wref__symbolize_snapshot_modules();
    (void)wref__thread_no();   /* the initialising thread (normally main) is T0 */
    if (wref__opt.guard != WREF__GUARD_NONE)
        wref__fault_install();
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
    pthread_once(&chk.once, init_once);
}

__attribute__((constructor)) static void checker_constructor(void)
{
    wref__checker_init();
}

/* ---- control API (include/wref/check.h) --------------------------------------------------- */

int wref_check_active(void)
{
    return 1;
}

size_t wref_check_leaks(void)
{
    wref__checker_init();
    return wref__census(NULL);
}

size_t wref_check_findings(void)
{
    return wref__report_count();
}

void wref_check_borrow_end(wref_object *ob)
{
    if (ob)
        wref__borrow_end((uintptr_t)ob);
}
