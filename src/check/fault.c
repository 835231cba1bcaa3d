/* fault.c: the guard-page fault handler.
 *
 * SIGNAL-SAFE CORNER: everything here runs inside a SIGSEGV handler. No malloc, no stdio,
 * no locks the faulting thread may hold; only plain reads of data published with release
 * stores (guard table, stack depot, module snapshot) and write(2). errno is saved, a second
 * fault while reporting is not reported again, and the previous handler is chained: a
 * function handler is called, SIG_DFL/SIG_IGN are restored so the fault re-executes and the
 * process dies as it would have without us (core dump and all). */
#include "checker.h"
#include "symbolize.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

static struct sigaction previous;
static volatile sig_atomic_t reporting;

/* ---- tiny formatting into a fixed buffer ------------------------------------------------------ */

struct out {
    char buf[8192];
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

static void put_frame(struct out *o, unsigned i, uintptr_t pc)
{
    const char *path;
    uintptr_t off;
    put(o, "    #");
    put_num(o, i, 10);
    put(o, " ");
    put_num(o, pc, 16);
    if (wref__module_of(pc, &path, &off)) {
        const char *base = strrchr(path, '/');
        put(o, " (");
        put(o, base ? base + 1 : path);
        put(o, "+");
        put_num(o, off, 16);
        put(o, ")");
    }
    put(o, "\n");
}

static void put_stack(struct out *o, wref__stack_id id)
{
    const uintptr_t *pcs;
    size_t n = wref__stack_get(id, &pcs);
    for (size_t i = 0; i < n; i++)
        put_frame(o, (unsigned)i, pcs[i]);
    if (!n)
        put(o, "    <no stack>\n");
}

/* The faulting thread's stack by frame pointers from the signal context. */
static void put_context_stack(struct out *o, const ucontext_t *uc)
{
#if defined(__x86_64__)
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    uintptr_t fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    put_frame(o, 0, pc);
    for (unsigned i = 1; i < wref__opt.stack_depth && fp > sp && fp - sp < (1u << 24) && !(fp & 7); i++) {
        uintptr_t next = ((uintptr_t *)fp)[0], ret = ((uintptr_t *)fp)[1];
        if (ret < 4096)
            break;
        put_frame(o, i, ret);
        if (next <= fp)
            break;
        fp = next;
    }
#else
    (void)uc;
    put(o, "    <no stack on this architecture>\n");
#endif
}

static void handler(int sig, siginfo_t *info, void *ctx)
{
    int saved_errno = errno;
    uintptr_t addr = (uintptr_t)info->si_addr, obj = 0;
    wref__rec *r = reporting ? NULL : wref__heap_guarded_find(addr, &obj);
    if (r) {
        reporting = 1;
        static struct out o;
        o.len = 0;
        bool freed = r->state == WREF__FREED || r->state == WREF__GONE;
        put(&o, "==");
        put_num(&o, (unsigned long)getpid(), 10);
        put(&o, freed ? "==ERROR: wref-check: use-after-free on " : "==ERROR: wref-check: heap-overflow on ");
        put(&o, r->type && r->type->name ? r->type->name : "?");
        put(&o, "#");
        put_num(&o, r->serial, 10);
        put(&o, " at ");
        put_num(&o, obj, 16);
        put(&o, " (");
        put_num(&o, r->size, 10);
        put(&o, "-byte object)\n");
        put(&o, freed ? "memory of a destroyed object was accessed (guard-page fault at "
                      : "memory past the end of the object was accessed (guard-page fault at ");
        put_num(&o, addr, 16);
        put(&o, "); frames are module+offset (signal handler: no symbolization)\n");
        put_context_stack(&o, ctx);
        if (freed && r->st_destroyed) {
            put(&o, "destroyed (the last reference dropped) by thread T");
            put_num(&o, r->tno_destroyed, 10);
            put(&o, " here:\n");
            put_stack(&o, r->st_destroyed);
        }
        put(&o, "created by thread T");
        put_num(&o, r->tno_created, 10);
        put(&o, " here:\n");
        put_stack(&o, r->st_created);
        put(&o, freed ? "SUMMARY: wref-check: use-after-free (guard page)\n\n"
                      : "SUMMARY: wref-check: heap-overflow (guard page)\n\n");
        wref__report_write(o.buf, o.len);
    }
    /* chain */
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
    signal(sig, SIG_DFL);   /* returning re-executes the access and dies as it would have */
    errno = saved_errno;
}

void wref__fault_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous);
}
