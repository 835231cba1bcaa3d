/* fault.c: the guard-page fault handler.
 *
 * SIGNAL-SAFE CORNER: everything here runs inside a SIGSEGV handler. No malloc, no stdio
 * (nor snprintf, strerror, fnmatch), no locks the faulting thread may hold; only plain reads
 * of data published with release stores (guard table, stack depot, module snapshot), the
 * async-signal-safe frame walk of stack.c, and write(2) to files opened before any fault
 * (report.c opens them when guard pages are on). Contracts:
 * - Only a real access fault is ours: si_code SEGV_ACCERR / SEGV_MAPERR at a guarded
 *   address. A SIGSEGV sent by kill/raise (si_code <= 0) is passed on untouched.
 * - One report at a time (`reporter`, an atomic thread id). A fault in another thread waits
 *   for it, up to WAIT_NS, then reports; if it cannot, it writes that another fault is being
 *   reported. A fault inside our own report (the same thread) is not reported again. The
 *   thread that goes on to die waits, as long, for reports in flight in other threads.
 * - The walk is bounded: stack_depth frames, a fixed number of unwind steps.
 * - The handler the program installed (through the sigaction/signal interposers below) is
 *   published in a ring of slots with a release store, so an install racing with a fault is
 *   not seen half written.
 * - SA_ONSTACK: a program that handles stack overflow on an alternate stack still gets its
 *   handler run there (the kernel cannot push a frame on the overflowed stack).
 * errno is saved, and the previous handler is chained: a function handler is called,
 * SIG_DFL/SIG_IGN are restored so the fault re-executes and the process dies as it would
 * have without us (core dump and all). */
#include "fault.h"
#include "buf.h"
#include "core.h"
#include "heap.h"
#include "model.h"
#include "options.h"
#include "registry.h"
#include "report.h"
#include "suppress.h"
#include "symbolize.h"

#include "poison.h"
#include "stack.h"

#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

/* The handler we chain to (the program's own): a ring of PREV_SLOTS slots. A writer (the
 * interposed sigaction, serialized by `lock`) fills the slot after the current one, then
 * release-stores its index in `cur`; a reader acquire-loads `cur` and copies that slot. A slot
 * is rewritten only PREV_SLOTS - 1 installs later, so a reader (the fault handler, or an
 * interposed call interrupted in the same thread) never sees one half written unless that
 * many installs race with one fault. */
#define PREV_SLOTS 8
static struct {
    struct sigaction sa[PREV_SLOTS];
    unsigned cur;         /* atomic: the slot to read */
    int lock;             /* atomic spinlock of writers */
} prev;
static int reporter;      /* atomic: tid of the thread writing a fault report, 0 if none */
static int in_flight;     /* atomic: threads that found a fault to report and are not done */
static bool installed;    /* our SIGSEGV handler is in place */

#define WAIT_NS 2000000000L   /* how long one fault waits for another's report */

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

/* libc's sigaction (or a sanitizer's interceptor in front of it), bypassing ours below. */
__attribute__((no_sanitize("thread"))) static int real_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    static sigaction_fn next_fn;
    sigaction_fn next = __atomic_load_n(&next_fn, __ATOMIC_ACQUIRE);
    if (!next) {
        next = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
        __atomic_store_n(&next_fn, next, __ATOMIC_RELEASE);
    }
    if (!next) {
        errno = ENOSYS;
        return -1;
    }
    return next(sig, act, old);
}

void wref__signal_default(int sig)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    real_sigaction(sig, &dfl, NULL);
}

/* A copy of the handler to chain to. Async-signal-safe. */
static void previous_get(struct sigaction *out)
{
    unsigned i = __atomic_load_n(&prev.cur, __ATOMIC_ACQUIRE);
    memcpy(out, &prev.sa[i], sizeof *out);
}

static void previous_set(const struct sigaction *act)
{
    while (__atomic_exchange_n(&prev.lock, 1, __ATOMIC_ACQUIRE))
        sched_yield();
    unsigned w = (__atomic_load_n(&prev.cur, __ATOMIC_RELAXED) + 1) % PREV_SLOTS;
    memcpy(&prev.sa[w], act, sizeof *act);
    __atomic_store_n(&prev.cur, w, __ATOMIC_RELEASE);
    __atomic_store_n(&prev.lock, 0, __ATOMIC_RELEASE);
}

void wref__fault_fork(enum wref__fork_phase phase)
{
    if (phase == WREF__FORK_PREPARE) {
        while (__atomic_exchange_n(&prev.lock, 1, __ATOMIC_ACQUIRE))
            sched_yield();
    } else {
        __atomic_store_n(&prev.lock, 0, __ATOMIC_RELEASE);
        if (phase == WREF__FORK_CHILD)   /* a report in flight belongs to a parent's thread */
            __atomic_store_n(&reporter, 0, __ATOMIC_RELEASE), __atomic_store_n(&in_flight, 0, __ATOMIC_RELEASE);
    }
}

static void sleep_ns(long ns)
{
    struct timespec ts = { 0, ns };
    nanosleep(&ts, NULL);
}

/* ---- tiny formatting into a fixed buffer ------------------------------------------------------ */

struct out {
    char buf[16384];
    size_t len;
};

static void put(struct out *o, const char *s)
{
    while (*s && o->len < sizeof o->buf)
        o->buf[o->len++] = *s++;
}

static void put_num(struct out *o, unsigned long v, unsigned base)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v && n < 24);
    if (base == 16)
        put(o, "0x");
    while (n && o->len < sizeof o->buf)
        o->buf[o->len++] = tmp[--n];
}

static void out_put(void *ctx, const char *p, size_t n)
{
    struct out *o = ctx;
    for (size_t i = 0; i < n && o->len < sizeof o->buf; i++)
        o->buf[o->len++] = p[i];
}

/* A JSON string literal, or null. */
static void put_json_str(struct out *o, const char *s)
{
    if (!s) {
        put(o, "null");
        return;
    }
    put(o, "\"");
    wref__json_escape(s, out_put, o);
    put(o, "\"");
}

/* One frame, as text and as JSON (function and file:line are left to the offline
 * `wref-check report --format=symbolize`). */
static void put_frame(struct out *o, struct out *j, unsigned i, uintptr_t pc, uint32_t gen)
{
    const char *path = NULL, *build_id = NULL;
    uintptr_t off = 0;
    bool known = wref__module_info(pc, gen, &path, &build_id, &off);
    put(o, "    #");
    put_num(o, i, 10);
    put(o, " ");
    put_num(o, pc, 16);
    if (known) {
        const char *base = strrchr(path, '/');
        put(o, " (");
        put(o, base ? base + 1 : path);
        put(o, "+");
        put_num(o, off, 16);
        put(o, ")");
    }
    put(o, "\n");
    put(j, i ? ",{\"pc\":\"" : "{\"pc\":\"");
    put_num(j, pc, 16);
    put(j, "\",\"module\":");
    put_json_str(j, known ? path : NULL);
    put(j, ",\"build_id\":");
    put_json_str(j, known ? build_id : NULL);
    if (known) {
        put(j, ",\"offset\":\"");
        put_num(j, off, 16);
        put(j, "\"");
    } else {
        put(j, ",\"offset\":null");
    }
    put(j, ",\"function\":null,\"file\":null,\"line\":null,\"inlined\":false}");
}

/* One JSON stack {"label", "thread", "frames"} of n frames, each also a text line. */
static void put_frames(struct out *o, struct out *j, const char *json_label, unsigned tno, const uintptr_t *pcs,
                       size_t n, uint32_t gen)
{
    put(j, "{\"label\":");
    put_json_str(j, json_label);
    put(j, ",\"thread\":");
    put_num(j, tno, 10);
    put(j, ",\"frames\":[");
    for (size_t i = 0; i < n; i++)
        put_frame(o, j, (unsigned)i, pcs[i], gen);
    if (!n)
        put(o, "    <no stack>\n");
    put(j, "]}");
}

/* A recorded stack after the first: the text section header and a JSON stack. */
static void put_stack(struct out *o, struct out *j, const char *label, unsigned tno, wref__stack_id id)
{
    const uintptr_t *pcs;
    size_t n = wref__stack_get(id, &pcs);
    put(o, label);
    put(o, " by thread T");
    put_num(o, tno, 10);
    put(o, " here:\n");
    put(j, ",");
    put_frames(o, j, label, tno, pcs, n, wref__stack_gen(id));
}

/* The faulting thread's stack from the signal context (stack.c's signal-safe walk): complete
 * from a leaf function and through libc. */
static void put_context_stack(struct out *o, struct out *j, void *uc)
{
    uintptr_t pcs[WREF__STACK_MAX_DEPTH];
    uint32_t gen = wref__module_gen();
    size_t n = wref__stack_unwind_signal(uc, pcs, wref__opt.stack_depth);
    put_frames(o, j, "where", wref__thread_no(), pcs, n, gen);
}

/* poisoned: the fault is at a poison pointer read from r's memory (poison.h), not in r. */
static void report_fault(wref__rec *r, uintptr_t addr, uintptr_t obj, void *ctx, bool poisoned)
{
    static struct out o, j;
    o.len = j.len = 0;
    bool freed = poisoned || r->state == WREF__FREED || r->state == WREF__GONE;
    const char *kind = freed ? "use-after-free" : "heap-overflow";
    const char *type = wref__model_type_name(r->type);   /* async-signal-safe (model.h) */
    if (wref__suppress_match_type(freed ? WREF__K_USE_AFTER_FREE : WREF__K_HEAP_OVERFLOW, type))
        return;
    const char *what = poisoned ? "a pointer read from the memory of a destroyed object was followed (fault at "
                       : freed  ? "memory of a destroyed object was accessed (guard-page fault at "
                                : "memory past the end of the object was accessed (guard-page fault at ";
    const char *how = poisoned ? " (poisoned pointer)" : " (guard page)";
    put(&o, "==");
    put_num(&o, (unsigned long)getpid(), 10);
    put(&o, "==ERROR: wref-check: ");
    put(&o, kind);
    put(&o, " on ");
    put(&o, type);
    put(&o, "#");
    put_num(&o, r->serial, 10);
    put(&o, " at ");
    put_num(&o, obj, 16);
    put(&o, " (");
    put_num(&o, r->size, 10);
    put(&o, "-byte object)\n");
    put(&o, what);
    put_num(&o, addr, 16);
    put(&o, "); frames are module+offset (signal handler: no symbolization)\n");

    put(&j, "{\"id\":");
    put_num(&j, wref__report_count_unlocked() + 1, 10);
    put(&j, ",\"kind\":\"");
    put(&j, kind);
    put(&j, "\",\"severity\":\"error\",\"message\":\"");
    put(&j, what);
    put_num(&j, addr, 16);
    put(&j, ")\",\"object\":{\"type\":");
    put_json_str(&j, type);
    put(&j, ",\"serial\":");
    put_num(&j, r->serial, 10);
    put(&j, ",\"size\":");
    put_num(&j, r->size, 10);
    put(&j, ",\"address\":\"");
    put_num(&j, obj, 16);
    put(&j, "\"},\"address\":\"");
    put_num(&j, addr, 16);
    put(&j, "\",\"thread\":{\"number\":");
    put_num(&j, wref__thread_no(), 10);
    put(&j, ",\"tid\":");
    put_num(&j, (unsigned long)wref__tid(), 10);
    put(&j, "},\"stacks\":[");
    put_context_stack(&o, &j, ctx);
    if (freed && r->st_destroyed)
        put_stack(&o, &j, "destroyed (the last reference dropped)", r->tno_destroyed, r->st_destroyed);
    put_stack(&o, &j, "created", r->tno_created, r->st_created);
    put(&o, "SUMMARY: wref-check: ");
    put(&o, kind);
    put(&o, how);
    put(&o, "\n\n");
    put(&j, "],\"summary\":\"");
    put(&j, kind);
    put(&j, how);
    put(&j, "\"}");
    wref__report_signal_finding(freed ? WREF__K_USE_AFTER_FREE : WREF__K_HEAP_OVERFLOW, o.buf, o.len, j.buf, j.len);
}

/* A fault that could not be reported because another thread's report did not finish in
 * WAIT_NS: one line on stderr, so the fault is not silent. */
static void busy_note(uintptr_t addr)
{
    static struct out mine;   /* static: the handler may run on a small alternate stack */
    static int busy;
    if (__atomic_exchange_n(&busy, 1, __ATOMIC_ACQUIRE))
        return;   /* another thread is writing this very note */
    mine.len = 0;
    put(&mine, "==");
    put_num(&mine, (unsigned long)getpid(), 10);
    put(&mine, "==WARNING: wref-check: another fault is being reported; this guard-page fault at ");
    put_num(&mine, addr, 16);
    put(&mine, " in thread T");
    put_num(&mine, wref__thread_no(), 10);
    put(&mine, " is not\n");
    (void)!write(2, mine.buf, mine.len);
    __atomic_store_n(&busy, 0, __ATOMIC_RELEASE);
}

static void handler(int sig, siginfo_t *info, void *ctx)
{
    int saved_errno = errno;
    int self = wref__tid();
    uintptr_t addr = (uintptr_t)info->si_addr, obj = 0;
    bool access_fault = info->si_code == SEGV_ACCERR || info->si_code == SEGV_MAPERR;
    wref__rec *r = NULL;
    bool poisoned = false;
    if (access_fault && __atomic_load_n(&reporter, __ATOMIC_ACQUIRE) != self) {
        r = wref__heap_guarded_find(addr, &obj);
        if (!r && (r = wref__poison_find(addr, &obj)) != NULL)
            poisoned = true;
    }
    if (r) {
        __atomic_fetch_add(&in_flight, 1, __ATOMIC_ACQ_REL);
        int none = 0;
        long waited = 0;
        while (!__atomic_compare_exchange_n(&reporter, &none, self, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) &&
               waited < WAIT_NS) {
            none = 0;
            sleep_ns(1000000);
            waited += 1000000;
        }
        if (waited < WAIT_NS) {
            report_fault(r, addr, obj, ctx, poisoned);
            __atomic_store_n(&reporter, 0, __ATOMIC_RELEASE);
        } else {
            busy_note(addr);
        }
        __atomic_fetch_sub(&in_flight, 1, __ATOMIC_ACQ_REL);
    }
    /* chain */
    struct sigaction previous;
    previous_get(&previous);
    if (previous.sa_flags & SA_SIGINFO) {
        if (previous.sa_sigaction) {
            errno = saved_errno;
            previous.sa_sigaction(sig, info, ctx);
            return;
        }
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        errno = saved_errno;
        previous.sa_handler(sig);
        return;
    }
    /* about to die: let the reports other threads are writing finish first */
    for (long waited = 0; __atomic_load_n(&in_flight, __ATOMIC_ACQUIRE) > 0 && waited < WAIT_NS; waited += 1000000)
        sleep_ns(1000000);
    wref__signal_default(sig);   /* returning re-executes the access and dies as it would have */
    errno = saved_errno;
}

void wref__fault_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    struct sigaction old;
    if (real_sigaction(SIGSEGV, &sa, &old) == 0) {
        previous_set(&old);
        __atomic_store_n(&installed, true, __ATOMIC_RELEASE);
    }
}

/* ---- the program's own SIGSEGV handler: chained, not replacing ours ----------------------------
 * While guard pages are on, sigaction and signal for SIGSEGV are interposed: the program's
 * handler becomes the one ours chains to (after reporting a guard-page fault), and the program
 * sees the handler it installed before as the old one, as if nothing stood between. */
/* Sanitizer runtimes call sigaction while they start, before they can run instrumented code. */
#define WREF_INTERPOSE __attribute__((visibility("default"), no_sanitize("thread")))

WREF_INTERPOSE int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (sig != SIGSEGV || !__atomic_load_n(&installed, __ATOMIC_ACQUIRE))
        return real_sigaction(sig, act, old);
    struct sigaction was;
    previous_get(&was);
    if (act)
        previous_set(act);
    if (old)
        *old = was;
    return 0;
}

WREF_INTERPOSE sighandler_t signal(int sig, sighandler_t fn)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = SA_RESTART;   /* glibc's signal(): BSD semantics */
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, &old) != 0)
        return SIG_ERR;
    return (old.sa_flags & SA_SIGINFO) ? (sighandler_t)(void (*)(void))old.sa_sigaction : old.sa_handler;
}
