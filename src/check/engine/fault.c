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
 *   published in a ring of seqlocked slots: a fault racing with an install, in another thread
 *   or interrupting one, chains to a whole handler, the old or the new (see `prev`).
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
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

/* The handler we chain to (the program's own): a ring of PREV_SLOTS slots, each with a
 * sequence number that is odd while the slot is written (a seqlock per slot).
 * - Writers (wref__fault_install, the interposed sigaction) copy the caller's struct first (a
 *   bad pointer faults outside the lock, as it would in libc), then hold `lock` with every
 *   signal blocked: no handler can run in a thread that holds it, so it never waits on itself.
 *   A writer fills the slot after the current one and release-stores its index in `cur`.
 * - The fault handler reads without the lock: it copies the current slot word by word and
 *   keeps the copy only if that slot's sequence was even and unchanged across the copy (a
 *   reader preempted while writers went round the ring retries). After READ_TRIES failures it
 *   takes the lock, which only another thread can hold.
 * - A child forked while a writer held the lock has it reset (that writer's slot is not `cur`,
 *   and a sequence left odd stays consistent: writers start from seq | 1). */
#define PREV_SLOTS 4
#define PREV_WORDS (sizeof(struct sigaction) / sizeof(unsigned long))
#define READ_TRIES 64
_Static_assert(sizeof(struct sigaction) % sizeof(unsigned long) == 0, "struct sigaction is whole words");
static struct {
    unsigned long sa[PREV_SLOTS][PREV_WORDS];   /* atomic words */
    unsigned long seq[PREV_SLOTS];              /* atomic */
    unsigned cur;                               /* atomic: the slot to read */
    int lock;                                   /* atomic spinlock of writers */
} prev;
static int reporter;      /* atomic: tid of the thread writing a fault report, 0 if none */
static int in_flight;     /* atomic: threads that found a fault to report and are not done */
static bool installed;    /* atomic: our SIGSEGV handler is in place (written under prev.lock) */

#define WAIT_NS 2000000000L   /* how long one fault waits for another's report */

/* Sanitizer runtimes call sigaction while they start, before they can run instrumented code:
 * the interposers and everything they call are not instrumented by ThreadSanitizer. */
#define WREF_UNTSAN __attribute__((no_sanitize("thread")))

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

/* libc's sigaction (or a sanitizer's interceptor in front of it), bypassing ours below. */
WREF_UNTSAN static int real_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
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

/* Takes prev.lock with every signal blocked (raw system calls: no interceptor, any context);
 * returns the signal mask to give back to prev_unlock. */
WREF_UNTSAN static uint64_t prev_lock(void)
{
    uint64_t all = ~(uint64_t)0, old = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof all);
    while (__atomic_exchange_n(&prev.lock, 1, __ATOMIC_ACQUIRE))
        sched_yield();
    return old;
}

WREF_UNTSAN static void prev_unlock(uint64_t mask)
{
    __atomic_store_n(&prev.lock, 0, __ATOMIC_RELEASE);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &mask, NULL, sizeof mask);
}

/* Copies the current slot into out; false if a writer changed it meanwhile. */
WREF_UNTSAN static bool slot_read(struct sigaction *out)
{
    unsigned long w[PREV_WORDS];
    unsigned i = __atomic_load_n(&prev.cur, __ATOMIC_ACQUIRE);
    unsigned long s = __atomic_load_n(&prev.seq[i], __ATOMIC_ACQUIRE);
    if (s & 1)
        return false;
    for (size_t k = 0; k < PREV_WORDS; k++)
        w[k] = __atomic_load_n(&prev.sa[i][k], __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&prev.seq[i], __ATOMIC_RELAXED) != s)
        return false;
    memcpy(out, w, sizeof w);
    return true;
}

/* Publishes act as the handler to chain to; prev.lock held. */
WREF_UNTSAN static void slot_write(const struct sigaction *act)
{
    unsigned long w[PREV_WORDS];
    memcpy(w, act, sizeof w);
    unsigned i = (__atomic_load_n(&prev.cur, __ATOMIC_RELAXED) + 1) % PREV_SLOTS;
    unsigned long s = __atomic_load_n(&prev.seq[i], __ATOMIC_RELAXED) | 1;
    __atomic_store_n(&prev.seq[i], s, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    for (size_t k = 0; k < PREV_WORDS; k++)
        __atomic_store_n(&prev.sa[i][k], w[k], __ATOMIC_RELAXED);
    __atomic_store_n(&prev.seq[i], s + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&prev.cur, i, __ATOMIC_RELEASE);
}

/* A copy of the handler to chain to. Async-signal-safe, from any thread, at any moment. */
WREF_UNTSAN static void previous_get(struct sigaction *out)
{
    for (int t = 0; t < READ_TRIES; t++)
        if (slot_read(out))
            return;
    uint64_t mask = prev_lock();
    (void)slot_read(out);   /* writers are out: consistent */
    prev_unlock(mask);
}

void wref__fault_fork(enum wref__fork_phase phase)
{
    if (phase == WREF__FORK_CHILD) {   /* a writer or a report in flight was a parent's thread */
        __atomic_store_n(&prev.lock, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&reporter, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&in_flight, 0, __ATOMIC_RELEASE);
    }
}

static void sleep_ns(long ns)
{
    struct timespec ts = { 0, ns };
    nanosleep(&ts, NULL);
}

/* ---- tiny formatting into a fixed buffer ------------------------------------------------------ */

/* Appends n bytes of s to buf[cap] at *len, cut at the end. */
static void append(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *len < cap; i++)
        buf[(*len)++] = s[i];
}

/* v in base 10, or 16 with "0x", appended as append does. */
static void append_num(char *buf, size_t cap, size_t *len, unsigned long v, unsigned base)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v && n < 24);
    if (base == 16)
        append(buf, cap, len, "0x", 2);
    while (n && *len < cap)
        buf[(*len)++] = tmp[--n];
}

struct out {
    char buf[16384];
    size_t len;
};

static void put(struct out *o, const char *s)
{
    append(o->buf, sizeof o->buf, &o->len, s, strlen(s));
}

static void put_num(struct out *o, unsigned long v, unsigned base)
{
    append_num(o->buf, sizeof o->buf, &o->len, v, base);
}

static void out_put(void *ctx, const char *p, size_t n)
{
    struct out *o = ctx;
    append(o->buf, sizeof o->buf, &o->len, p, n);
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

/* ---- a poison pointer in a register ---------------------------------------------------------
 * A fault at a non-canonical address (x86-64: a general-protection fault, si_code SI_KERNEL,
 * si_addr 0) carries no address. When the address came from poison read at a misaligned
 * offset (poison.h: rotated bytes), the poison is still in a register: on x86-64 the faulting
 * instruction is decoded just enough to name its memory operand's base and index registers
 * (legacy, REX, VEX and EVEX prefixes; the one- and two-byte opcodes that take a ModRM byte;
 * string instructions' rsi/rdi; an indirect call or jump through a register), and those are
 * tried in that order. An instruction that is not decoded has every general register tried.
 * aarch64 (which reports the address, with its top byte cleared) has its x0-x30 tried. */

struct poison_reg {
    const char *name;       /* the register that held the poison */
    uintptr_t value;        /* its value (the address that faulted, up to a displacement) */
    unsigned skew;          /* poison.h: how far past a word boundary the pointer was read */
    bool scanned;           /* found by trying every register, not the instruction's operand */
};

#if defined(__x86_64__)
static const char *const x86_names[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                          "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
static const int x86_greg[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
                                 REG_R8,  REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15};

static bool x86_canonical(uintptr_t a)
{
    return (uintptr_t)((intptr_t)(a << 16) >> 16) == a;
}

static bool one_byte_has_modrm(uint8_t op)
{
    return (op < 0x40 && (op & 7) < 4) || op == 0x63 || op == 0x69 || op == 0x6b || (op >= 0x80 && op <= 0x8f) ||
           op == 0xc0 || op == 0xc1 || op == 0xc6 || op == 0xc7 || (op >= 0xd0 && op <= 0xd3) ||
           (op >= 0xd8 && op <= 0xdf) || op == 0xf6 || op == 0xf7 || op == 0xfe || op == 0xff;
}

static bool two_byte_has_modrm(uint8_t op)
{
    return (op >= 0x10 && op <= 0x1f) || (op >= 0x28 && op <= 0x2f) || (op >= 0x40 && op <= 0x76) ||
           (op >= 0x78 && op <= 0x7f) || (op >= 0x90 && op <= 0x9f) || op == 0xa3 || op == 0xab ||
           (op >= 0xad && op <= 0xb1) || (op >= 0xb3 && op <= 0xb7) || (op >= 0xba && op <= 0xc7) || op >= 0xd0;
}

/* The registers of the memory operand of the instruction at ip (base first): how many, or -1
 * when the instruction is not one this decoder knows. */
static int x86_operand_regs(const uint8_t *ip, int regs[2])
{
    size_t i = 0;
    while (i < 4 && (ip[i] == 0x26 || ip[i] == 0x2e || ip[i] == 0x36 || ip[i] == 0x3e || ip[i] == 0x64 ||
                     ip[i] == 0x65 || ip[i] == 0x66 || ip[i] == 0x67 || ip[i] == 0xf0 || ip[i] == 0xf2 ||
                     ip[i] == 0xf3))
        i++;
    unsigned rex_b = 0, rex_x = 0;
    bool modrm;
    uint8_t op;
    if (ip[i] == 0xc5) {                       /* two-byte VEX: X and B are 0 */
        op = ip[i + 2];
        i += 3;
        modrm = op != 0x77;
    } else if (ip[i] == 0xc4 || ip[i] == 0x62) {   /* three-byte VEX, EVEX: ~X, ~B in bits 6, 5 */
        rex_x = !(ip[i + 1] & 0x40);
        rex_b = !(ip[i + 1] & 0x20);
        i += ip[i] == 0x62 ? 4 : 3;
        op = ip[i++];
        modrm = true;
    } else {
        if ((ip[i] & 0xf0) == 0x40) {
            rex_x = (ip[i] >> 1) & 1;
            rex_b = ip[i] & 1;
            i++;
        }
        op = ip[i++];
        if (op == 0x0f) {
            op = ip[i++];
            if (op == 0x38 || op == 0x3a) {
                i++;
                modrm = true;
            } else {
                modrm = two_byte_has_modrm(op);
            }
        } else if ((op >= 0xa4 && op <= 0xa7) || (op >= 0xaa && op <= 0xaf)) {
            regs[0] = 6, regs[1] = 7;          /* movs, cmps, stos, lods, scas: rsi, rdi */
            return 2;
        } else {
            modrm = one_byte_has_modrm(op);
        }
    }
    if (!modrm)
        return -1;
    uint8_t m = ip[i++];
    unsigned mod = m >> 6, rm = m & 7;
    if (mod == 3) {   /* no memory operand: only call/jmp through a register fault on it */
        if (op == 0xff && (((m >> 3) & 7) == 2 || ((m >> 3) & 7) == 4)) {
            regs[0] = (int)(rm | rex_b << 3);
            return 1;
        }
        return 0;
    }
    int n = 0;
    if (rm == 4) {
        uint8_t sib = ip[i];
        unsigned base = sib & 7, index = ((sib >> 3) & 7) | rex_x << 3;
        if (!(mod == 0 && base == 5))
            regs[n++] = (int)(base | rex_b << 3);
        if (index != 4)
            regs[n++] = (int)index;
    } else if (!(mod == 0 && rm == 5)) {   /* mod 0, rm 5: rip-relative */
        regs[n++] = (int)(rm | rex_b << 3);
    }
    return n;
}
#endif

static bool try_reg(struct poison_reg *pr, const char *name, uintptr_t value, bool scanned, wref__rec **r,
                    uintptr_t *obj)
{
    unsigned skew;
    wref__rec *found = wref__poison_decode(value, obj, &skew);
    if (!found)
        return false;
    *r = found;
    *pr = (struct poison_reg){name, value, skew, scanned};
    return true;
}

/* The record whose poison a register of the faulting context holds (see above), or NULL. */
static wref__rec *poison_in_registers(void *ctx, uintptr_t *obj, struct poison_reg *pr)
{
    wref__rec *r = NULL;
    if (!ctx)
        return NULL;
#if defined(__x86_64__)
    const greg_t *g = ((const ucontext_t *)ctx)->uc_mcontext.gregs;
    uintptr_t ip = (uintptr_t)g[REG_RIP];
    if (!x86_canonical(ip))   /* a jump to poison: the instruction pointer holds it */
        return try_reg(pr, "rip", ip, false, &r, obj) ? r : NULL;
    int regs[2];
    int n = x86_operand_regs((const uint8_t *)ip, regs);
    for (int i = 0; i < n; i++)
        if (try_reg(pr, x86_names[regs[i]], (uintptr_t)g[x86_greg[regs[i]]], false, &r, obj))
            return r;
    if (n <= 0)
        for (int i = 0; i < 16; i++)
            if (try_reg(pr, x86_names[i], (uintptr_t)g[x86_greg[i]], true, &r, obj))
                return r;
#elif defined(__aarch64__)
    static const char *const names[31] = {"x0",  "x1",  "x2",  "x3",  "x4",  "x5",  "x6",  "x7",  "x8",  "x9",  "x10",
                                          "x11", "x12", "x13", "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21",
                                          "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29", "x30"};
    const ucontext_t *uc = ctx;
    for (int i = 0; i < 31; i++)
        if (try_reg(pr, names[i], (uintptr_t)uc->uc_mcontext.regs[i], true, &r, obj))
            return r;
#else
    (void)obj, (void)pr, (void)try_reg;
#endif
    return NULL;
}

/* The sentence that says what happened, into w. pr: the poison was found in a register. */
static void put_what(struct out *w, bool poisoned, bool freed, uintptr_t addr, const struct poison_reg *pr)
{
    put(w, poisoned ? "a pointer read from the memory of a destroyed object was followed ("
           : freed  ? "memory of a destroyed object was accessed (guard-page fault at "
                    : "memory past the end of the object was accessed (guard-page fault at ");
    if (!pr) {
        if (poisoned)
            put(w, "fault at ");
        put_num(w, addr, 16);
        put(w, ")");
        return;
    }
    put(w, "a fault at a non-canonical address, which the kernel does not give: ");
    put(w, pr->scanned ? "register " : "the faulting instruction's address register ");
    put(w, pr->name);
    put(w, " holds ");
    put_num(w, pr->value, 16);
    if (pr->skew) {
        put(w, ", poison read ");
        put_num(w, pr->skew, 10);
        put(w, " byte(s) past a word boundary");
    }
    put(w, ")");
}

/* poisoned: the fault is at a poison pointer read from r's memory (poison.h), not in r; pr
 * (or NULL): that poison was found in a register (a fault with no address). */
static void report_fault(wref__rec *r, uintptr_t addr, uintptr_t obj, void *ctx, bool poisoned,
                         const struct poison_reg *pr)
{
    static struct out o, j, w;
    o.len = j.len = w.len = 0;
    bool freed = poisoned || r->state == WREF__FREED || r->state == WREF__GONE;
    const char *kind = freed ? "use-after-free" : "heap-overflow";
    const char *type = wref__model_type_name(r->type);   /* async-signal-safe (model.h) */
    if (wref__suppress_match_type(freed ? WREF__K_USE_AFTER_FREE : WREF__K_HEAP_OVERFLOW, type)) {
        wref__report_signal_suppressed();   /* counted in the JSON's summary, as a suppressed report is */
        return;
    }
    if (pr)
        addr = pr->value;
    put_what(&w, poisoned, freed, addr, pr);
    w.buf[w.len < sizeof w.buf ? w.len : sizeof w.buf - 1] = 0;
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
    put(&o, "-byte object) in thread T");
    put_num(&o, wref__thread_no(), 10);
    put(&o, " (tid ");
    put_num(&o, (unsigned long)wref__tid(), 10);
    put(&o, ")\n");
    put(&o, w.buf);
    put(&o, "; frames are module+offset (signal handler: no symbolization)\n");

    put(&j, "{\"id\":");
    put_num(&j, wref__report_count_unlocked() + 1, 10);
    put(&j, ",\"kind\":\"");
    put(&j, kind);
    put(&j, "\",\"severity\":\"error\",\"message\":\"");
    put(&j, w.buf);
    put(&j, "\",\"object\":{\"type\":");
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
 * WAIT_NS: one line on stderr, with one write(2) (shorter than PIPE_BUF: never torn), from
 * every thread that gives up, so no fault is silent. */
static void busy_note(const wref__rec *r, uintptr_t addr, bool poisoned)
{
    char line[320];   /* on the stack: struct out is too big for an alternate stack */
    size_t n = 0, cap = sizeof line - 1;
#define NOTE(s) append(line, cap, &n, s, strlen(s))
#define NOTE_NUM(v, base) append_num(line, cap, &n, v, base)
    bool freed = poisoned || r->state == WREF__FREED || r->state == WREF__GONE;
    NOTE("==");
    NOTE_NUM((unsigned long)getpid(), 10);
    NOTE("==WARNING: wref-check: another fault is being reported; not reported: ");
    NOTE(freed ? "use-after-free on " : "heap-overflow on ");
    NOTE(wref__model_type_name(r->type));   /* async-signal-safe (model.h) */
    NOTE("#");
    NOTE_NUM(r->serial, 10);
    NOTE(", fault at ");
    NOTE_NUM(addr, 16);
    NOTE(" in thread T");
    NOTE_NUM(wref__thread_no(), 10);
#undef NOTE
#undef NOTE_NUM
    line[n++] = '\n';
    (void)!write(2, line, n);
}

static void handler(int sig, siginfo_t *info, void *ctx)
{
    int saved_errno = errno;
    int self = wref__tid();
    uintptr_t addr = (uintptr_t)info->si_addr, obj = 0;
    bool access_fault = info->si_code == SEGV_ACCERR || info->si_code == SEGV_MAPERR;
    /* a fault with no address (x86-64: non-canonical) or, on aarch64, with its top byte cleared:
     * the poison may be in a register */
    bool try_registers = info->si_code == SI_KERNEL;
#if defined(__aarch64__)
    try_registers = try_registers || access_fault;
#endif
    wref__rec *r = NULL;
    bool poisoned = false;
    struct poison_reg reg, *pr = NULL;
    if ((access_fault || try_registers) && __atomic_load_n(&reporter, __ATOMIC_ACQUIRE) != self) {
        if (access_fault)
            r = wref__heap_guarded_find(addr, &obj);
        if (!r && access_fault && (r = wref__poison_find(addr, &obj)) != NULL)
            poisoned = true;
        if (!r && try_registers && (r = poison_in_registers(ctx, &obj, &reg)) != NULL)
            poisoned = true, pr = &reg;
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
            report_fault(r, addr, obj, ctx, poisoned, pr);
            __atomic_store_n(&reporter, 0, __ATOMIC_RELEASE);
        } else {
            busy_note(r, addr, poisoned);
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
    uint64_t mask = prev_lock();   /* a program thread's sigaction waits: none lands in between */
    if (real_sigaction(SIGSEGV, &sa, &old) == 0) {
        slot_write(&old);
        __atomic_store_n(&installed, true, __ATOMIC_RELEASE);
    }
    prev_unlock(mask);
}

/* ---- the program's own SIGSEGV handler: chained, not replacing ours ----------------------------
 * While guard pages are on, sigaction and signal for SIGSEGV are interposed: the program's
 * handler becomes the one ours chains to (after reporting a guard-page fault), and the program
 * sees the handler it installed before as the old one, as if nothing stood between. */
#define WREF_INTERPOSE __attribute__((visibility("default"))) WREF_UNTSAN

/* For SIGSEGV: the caller's struct is copied first, then the read of the old handler, the
 * write of the new one and (before our handler is in place) libc's own call happen under
 * prev.lock, so concurrent calls and wref__fault_install are serialized; *old is written
 * after the lock is released. */
WREF_INTERPOSE int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (sig != SIGSEGV)
        return real_sigaction(sig, act, old);
    struct sigaction mine, was;
    if (act)
        memcpy(&mine, act, sizeof mine);
    int saved_errno = errno, rc = 0;
    uint64_t mask = prev_lock();
    if (!__atomic_load_n(&installed, __ATOMIC_ACQUIRE)) {
        rc = real_sigaction(sig, act ? &mine : NULL, &was);
        saved_errno = errno;
    } else {
        (void)slot_read(&was);   /* writers are out: consistent */
        if (act)
            slot_write(&mine);
    }
    prev_unlock(mask);
    if (old && rc == 0)
        memcpy(old, &was, sizeof was);
    errno = saved_errno;
    return rc;
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
