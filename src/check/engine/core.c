/* core.c: what every layer of the checker uses: thread numbers, the checker's own warnings,
 * its own address range, and stack capture without its own frames (core.h). */
#include "core.h"
#include "options.h"
#include "stats.h"
#include "symbolize.h"

#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

bool wref__checker_ready;

static struct {
    uintptr_t self_start, self_end;   /* our own text/data segments: frames to trim */
    unsigned next_tno;                /* atomic */
} chk;

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

void wref__self_locate(void)
{
    uintptr_t probe = (uintptr_t)&wref__self_locate;
    dl_iterate_phdr(find_self, &probe);
}

bool wref__self_contains(uintptr_t pc)
{
    return pc >= chk.self_start && pc < chk.self_end;
}

/* A capture the memo did not know: frame 1 of the unwind is wref__capture's (fp). */
static __attribute__((noinline)) wref__stack_id capture_slow(uintptr_t fp)
{
    uintptr_t pcs[WREF__STACK_MAX_DEPTH + 16];
    size_t n = wref__stack_unwind(pcs, WREF__STACK_MAX_DEPTH + 16, 0);
    size_t first = 0;
    while (first + 1 < n && wref__self_contains(pcs[first + 1]))
        first++;
    size_t keep = n - first;
    if (keep > wref__opt.stack_depth)
        keep = wref__opt.stack_depth;
    wref__stack_id id = wref__stack_store(pcs + first, keep);
    /* the frames that decided id: the kept ones and the checker's before them, and the first
     * frame outside the checker, which ended the trim (all n when the stack ended first) */
    size_t used = first + (keep > 2 ? keep : 2);
    wref__stack_memo_put(fp, used < n ? used : n, id);
    return id;
}

/* The caller's stack, starting at the outermost checker frame (the public API function the
 * program called, e.g. wref_decref), so reports begin where the program entered wref.
 * noinline: its own frame is where the memo's chain starts (stack.h). */
__attribute__((noinline))
wref__stack_id wref__capture(void)
{
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    uint32_t gen;
    wref__stack_id id = wref__stack_memo_get(fp, &gen);   /* a stack this thread captured before */
    if (__builtin_expect(id != 0, 1) && gen == wref__module_gen()) {
        wref__stat_add(WREF__STAT_CAPTURES, 1);   /* a capture all the same (statistics) */
        return id;
    }
    return capture_slow(fp);
}

void wref__fork_mutex(pthread_mutex_t *m, enum wref__fork_phase phase)
{
    if (phase == WREF__FORK_PREPARE)
        pthread_mutex_lock(m);
    else if (phase == WREF__FORK_PARENT)
        pthread_mutex_unlock(m);
    else
        pthread_mutex_init(m, NULL);
}
