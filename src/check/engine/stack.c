/* stack.c: backtrace capture (frame pointers, verified, else libunwind) and the stack depot.
 *
 * Depot layout (all memory from mmap):
 * - nodes: one per distinct stack, bump-allocated from mmap'd chunks; immutable once
 *   published.
 * - dir: id -> node, two levels (a static array of pointers to mmap'd blocks of node
 *   pointers), so ids are dense and wref__stack_get is two loads.
 * - buckets: hash -> id of the first node of a chain linked by node->next.
 *
 * Publication protocol: an inserter fills a node, release-stores its pointer into dir, then
 * release-stores the id into the bucket head. Readers acquire-load dir and bucket entries, so
 * a reader that sees an id also sees the node behind it. Inserts are serialized by
 * depot.lock; lookups never take it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "check/engine/stack.h"
#include "check/engine/stats.h"
#include "check/engine/symbolize.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#define DIR_TOP_BITS 12
#define DIR_BLOCK_BITS 14
#define DIR_BLOCK_SIZE ((uint32_t)1 << DIR_BLOCK_BITS)
#define MAX_IDS ((uint32_t)1 << (DIR_TOP_BITS + DIR_BLOCK_BITS)) /* 64M stacks */
#define BUCKET_BITS 16
#define CHUNK_SIZE ((size_t)256 << 10)
#define DEFAULT_DEPTH 16

struct node {
    wref__stack_id next;   /* next node in the same bucket, 0 ends the chain */
    uint32_t hash;
    uint32_t size;         /* number of frames */
    uint32_t gen;          /* module-list generation at capture (symbolize.h) */
    uintptr_t pcs[];
};

static struct {
    pthread_mutex_t lock;           /* serializes inserts: next_id, chunk*, dir blocks */
    wref__stack_id next_id;         /* lock; first unused id (ids start at 1) */
    char *chunk;                    /* lock; current allocation chunk */
    size_t chunk_used;              /* lock */
    struct node **dir[1u << DIR_TOP_BITS];  /* release-stored under lock, acquire-loaded */
    wref__stack_id buckets[1u << BUCKET_BITS]; /* idem */
    size_t mapped_bytes;            /* atomic (relaxed): statistics only */
    unsigned depth;                 /* atomic (relaxed) */
    int fast_unwind;                /* atomic (relaxed) */
} depot = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .next_id = 1,
    .depth = DEFAULT_DEPTH,
    .fast_unwind = 1,
};

/* This thread's stack bounds for the frame-pointer walk; bounds_state: 0 unknown, 1 known,
 * -1 unavailable. initial-exec TLS: a preloaded library has static TLS, and a dynamic TLS
 * access could call malloc on first use. */
#define TLS __thread __attribute__((tls_model("initial-exec")))
static TLS uintptr_t stack_lo, stack_hi;
static TLS int bounds_state;
/* How this thread's last wref__stack_unwind ended, for the memo (see "per-thread memo" below):
 * set only when it was a complete frame-pointer walk with skip 0. */
enum walk_end {
    END_NONE,       /* not a complete walk (or skip != 0): nothing may be memoized */
    END_FULL,       /* it filled max frames */
    END_TERMINAL,   /* its last pc is TERMINAL */
    END_LINK0,      /* its last record's link is 0 */
    END_ZERO        /* the record after its last is {0, 0} (the ABI's end of chain) */
};
static TLS struct {
    unsigned end;      /* enum walk_end */
    size_t n;          /* frames it gave */
    uintptr_t link0;   /* the link of its first record: the frame of wref__stack_unwind's caller */
} last_walk;
#define MEMO_SETS 8u
#define MEMO_WAYS 2u    /* entry e's set is e / 2 */
#define MEMO_RECS 24u   /* records compared at most: stack_depth 16 plus the checker's frames */
/* One TLS block (one address computation on the fast path). */
static TLS struct {
    uint8_t mru[MEMO_SETS];   /* the way (0, 1) of each set hit or filled last */
    struct memo_entry {
        uintptr_t fp;                 /* the frame the chain starts at; 0: empty */
        const uintptr_t (*last)[2];   /* its last record in rec[] */
        wref__stack_id id;
        uint32_t gen;                 /* module generation of the stack */
        uint32_t open_end;            /* the last record's link is not compared */
    } e[MEMO_SETS * MEMO_WAYS];
    uintptr_t rec[MEMO_SETS * MEMO_WAYS][MEMO_RECS][2];   /* each record's {link, return address}, from fp outwards */
} memo;

/* ---- fork: a child must not inherit a lock held by a thread that does not exist there */

/* libunwind has locks of its own (its global cache) and no fork handling: a child forked while
 * another thread was inside libunwind would block on its first slow capture. So every use of
 * libunwind outside signal handlers holds unwind_lock for reading, and fork holds it for
 * writing (writer-preferring, so a stream of captures cannot starve fork). */
static pthread_rwlock_t unwind_lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

static void fork_prepare(void)
{
    pthread_rwlock_wrlock(&unwind_lock);
    pthread_mutex_lock(&depot.lock);
}
static void fork_parent(void)
{
    pthread_mutex_unlock(&depot.lock);
    pthread_rwlock_unlock(&unwind_lock);
}
/* The child re-creates unwind_lock rather than unlocking it: the rwlock's word still counts
 * the parent's waiting readers, threads the child does not have. */
static void fork_child(void)
{
    pthread_mutex_unlock(&depot.lock);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&unwind_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void) { pthread_atfork(fork_prepare, fork_parent, fork_child); }

/* ---- capture ------------------------------------------------------------------------------- */

/* Learns this thread's stack bounds once. pthread_getattr_np may allocate (glibc reads
 * /proc/self/maps for the main thread and the affinity mask for others): this happens once
 * per thread, at wref__stack_init for the initializing thread and at the first fast capture
 * for any other. */
static int thread_bounds(void)
{
    if (__builtin_expect(bounds_state != 0, 1))
        return bounds_state > 0;
    pthread_attr_t attr;
    void *addr;
    size_t size;
    bounds_state = -1;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return 0;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0 && size != 0) {
        stack_lo = (uintptr_t)addr;
        stack_hi = (uintptr_t)addr + size;
        bounds_state = 1;
    }
    pthread_attr_destroy(&attr);
    return bounds_state > 0;
}

/* Where an unwinder puts frames: drops the first `skip`, stores at most `max`. */
struct sink {
    uintptr_t *out;
    size_t n, max;
    unsigned skip;
    size_t walked;      /* frames seen, including dropped ones */
};

/* Takes one frame; returns 0 when the sink is full. */
static int put(struct sink *s, uintptr_t pc)
{
    s->walked++;
    if (s->skip > 0) {
        s->skip--;
        return 1;
    }
    s->out[s->n++] = pc;
    return s->n < s->max;
}

/* ---- frame-pointer verdicts ------------------------------------------------------------------
 * A frame-pointer walk is only right if every function it walks through keeps a frame record:
 * a function built without frame pointers leaves the caller's fp in the register (its own
 * caller is then skipped) or uses it for data (the walk stops early, or wanders). So each
 * return address pc the walk passes is judged once, and the verdict cached by pc:
 * - FP: the function holding pc sets up a frame record. x86-64: its prologue (found through
 *   its unwind info) has `mov %rsp,%rbp`; AArch64: `add x29, sp, #n` (`mov x29, sp`). Other
 *   architectures (and WREF_STACK_LEARN_VERDICTS builds, for the tests): learned, see below;
 * - not FP (KNOWN without FP): it does not, or it cannot be told (no unwind info);
 * - TERMINAL: pc is where a complete unwind (libunwind) ends, give or take the C library's
 *   start-up glue (at most TERMINAL_SLACK frames further): __libc_start_call_main,
 *   start_thread. Learned from the slow path, below.
 * A walk is complete when it reaches a TERMINAL pc or fills the depth; it is broken when it
 * must follow the record of a function without FP, or the chain ends anywhere else. A broken
 * walk is redone with libunwind (counted as CAPTURES_SLOW).
 * Learned verdicts, where the prologue cannot be read: an unjudged pc's record is followed
 * tentatively (the walk then counts as broken, so libunwind redoes it) and the two walks are
 * compared: where both agree on pc and on the frame after it, the function holding pc kept
 * its record (FP); where they agree on pc but not on the next frame, it did not. So no walk
 * through an unverified function is ever kept, and code with frame pointers reaches the fast
 * path after one slow capture per new return address. */
#define VERDICT_BITS 14
#define V_KNOWN 1u
#define V_FP 2u
#define V_TERMINAL 4u
#define TERMINAL_SLACK 2

static struct verdict {
    uintptr_t pc;    /* 0: free; claimed by CAS, never released */
    unsigned bits;   /* atomic; V_* */
} verdicts[1u << VERDICT_BITS];

static struct verdict *verdict_slot(uintptr_t pc)
{
    size_t mask = (1u << VERDICT_BITS) - 1;
    size_t i = (size_t)((pc * 0x9e3779b97f4a7c15ull) >> 40) & mask;
    for (unsigned probe = 0; probe < 16; probe++, i = (i + 1) & mask) {
        uintptr_t cur = __atomic_load_n(&verdicts[i].pc, __ATOMIC_ACQUIRE);
        if (cur == pc)
            return &verdicts[i];
        if (cur == 0) {
            uintptr_t expected = 0;
            if (__atomic_compare_exchange_n(&verdicts[i].pc, &expected, pc, false, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE) ||
                expected == pc)
                return &verdicts[i];
        }
    }
    return NULL;   /* full around here: judged again each time */
}

/* Does the function holding return address pc keep a frame record? 1 yes, 0 no (or cannot
 * tell), -1 learn it from libunwind (learn_verdicts). */
#if !defined(WREF_STACK_LEARN_VERDICTS) && (defined(__x86_64__) || defined(__aarch64__))
static int judge_fp(uintptr_t pc)
{
    unw_proc_info_t pi;
    pthread_rwlock_rdlock(&unwind_lock);
    int rc = unw_get_proc_info_by_ip(unw_local_addr_space, (unw_word_t)(pc - 1), &pi, NULL);
    pthread_rwlock_unlock(&unwind_lock);
    if (rc != 0 || pi.start_ip == 0 || pi.start_ip >= pc)
        return 0;   /* no unwind info: cannot tell, so do not trust the chain */
#if defined(__x86_64__)
    /* gcc and clang put `mov %rsp,%rbp` (48 89 e5) within the first few instructions after
     * `push %rbp` (after endbr64, possibly scheduled past a load). */
    const unsigned char *code = (const unsigned char *)pi.start_ip;
    size_t len = pc - 1 - (uintptr_t)pi.start_ip;
    if (len > 40)
        len = 40;
    for (size_t i = 0; i + 3 <= len; i++)
        if (code[i] == 0x48 && code[i + 1] == 0x89 && code[i + 2] == 0xe5)
            return 1;
    return 0;
#else
    /* AArch64: the frame record is made by `stp x29, x30, [sp, #-n]!` then `mov x29, sp`, or
     * `sub sp, ...; stp x29, x30, [sp, #m]; add x29, sp, #m` for a large frame: both set x29
     * with ADD (immediate, 64-bit, unshifted) from sp, 0x910003fd | imm12 << 10, among the first
     * instructions (after paciasp or bti c). */
    const uint32_t *code = (const uint32_t *)pi.start_ip;
    size_t n = (pc - 4 - (uintptr_t)pi.start_ip) / 4 + 1;   /* through the call before pc */
    if (n > 16)
        n = 16;
    for (size_t i = 0; i < n; i++)
        if ((code[i] & 0xffc003ffu) == 0x910003fdu)
            return 1;
    return 0;
#endif
}
#else
static int judge_fp(uintptr_t pc)
{
    (void)pc;
    return -1;   /* no decoder for this architecture: learned from libunwind */
}
#endif

static unsigned verdict_of(uintptr_t pc)
{
    struct verdict *v = verdict_slot(pc);
    unsigned bits = v ? __atomic_load_n(&v->bits, __ATOMIC_ACQUIRE) : 0;
    if (!(bits & V_KNOWN)) {
        int j = judge_fp(pc);
        if (j < 0)
            return bits;   /* to be learned: followed tentatively */
        bits = V_KNOWN | (j ? V_FP : 0);
        if (v)
            bits = __atomic_or_fetch(&v->bits, bits, __ATOMIC_ACQ_REL);
    }
    return bits;
}

/* A learned verdict (see above): only for a pc not judged yet. */
static void learn_verdict(uintptr_t pc, int fp)
{
    struct verdict *v = verdict_slot(pc);
    unsigned bits = v ? __atomic_load_n(&v->bits, __ATOMIC_ACQUIRE) : V_KNOWN;
    if (!(bits & V_KNOWN))
        __atomic_or_fetch(&v->bits, V_KNOWN | (fp ? V_FP : 0), __ATOMIC_ACQ_REL);
}

static void mark_terminal(uintptr_t pc);

/* Compares a fast walk (some of its records followed tentatively) with libunwind's walk of the
 * same stack and learns the verdicts it shows. When they part at a pc after which libunwind
 * has at most TERMINAL_SLACK frames (the C start-up glue), that pc is where complete walks end
 * (TERMINAL): returns the number of frames up to it, to store the stack as the fast walks that
 * end there will give it, else 0. */
static size_t learn_verdicts(const uintptr_t *fast, size_t nf, const uintptr_t *slow, size_t ns, size_t max)
{
    for (size_t i = 0; i + 1 < nf && i + 1 < ns && fast[i] == slow[i]; i++) {
        int agree = fast[i + 1] == slow[i + 1];
        learn_verdict(fast[i], agree);
        if (!agree) {   /* beyond here the fast walk followed a wrong record */
            if (ns < max && ns - (i + 1) <= TERMINAL_SLACK) {
                mark_terminal(fast[i]);
                return i + 1;
            }
            return 0;
        }
    }
    return 0;
}

static void mark_terminal(uintptr_t pc)
{
    struct verdict *v = verdict_slot(pc);
    if (v)
        __atomic_or_fetch(&v->bits, V_TERMINAL, __ATOMIC_ACQ_REL);
}

/* Walks the frame-pointer chain starting at frame `fp` (a frame record {saved fp, return
 * address}, as on x86-64 and AArch64 with frame pointers). Accepts a record only if it lies
 * inside this thread's stack, is word-aligned and is above the previous one, so a corrupt or
 * absent chain ends the walk instead of faulting. Returns 1 if the walk is complete (see the
 * verdicts above), 0 if it is broken; *last is the last pc walked; *end how a complete walk
 * ended (enum walk_end); *tentative_out tells whether
 * an unjudged record was followed, however the walk ended (under TSan the record past the
 * thread-start wrapper, which keeps none, leads out of the stack: learn_verdicts must still
 * see that walk, or every capture on a new thread stays slow). */
__attribute__((no_sanitize_address))
static int walk_frame_pointers(uintptr_t fp, struct sink *s, uintptr_t *last, unsigned *end, int *tentative_out)
{
    *last = 0;
    *tentative_out = 0;
    *end = END_NONE;
    if (!thread_bounds())
        return 0;
    int tentative = 0;
#define DONE_AT(complete, how) return (*end = (how), *tentative_out = tentative, (complete) && !tentative)
#define DONE(complete) DONE_AT(complete, END_NONE)
    for (;;) {
        if (fp < stack_lo || fp > stack_hi - 2 * sizeof(uintptr_t) ||
            fp % sizeof(uintptr_t) != 0)
            DONE(0);   /* with *tentative_out: a record followed tentatively may have led here */
        const uintptr_t *frame = (const uintptr_t *)fp;
        uintptr_t pc = frame[1];
        if (pc < 4096)   /* the ABI's end of chain (fp 0 at _start) */
            DONE_AT(frame[0] == 0 && pc == 0, END_ZERO);
        *last = pc;
        if (!put(s, pc))
            DONE_AT(1, END_FULL);
        unsigned v = verdict_of(pc);
        if (v & V_TERMINAL)
            DONE_AT(1, END_TERMINAL);
        if (!(v & V_FP)) {
            if (v & V_KNOWN)
                DONE(0);   /* frame[0] is not that function's record */
            tentative = 1;   /* not judged: follow it, libunwind decides (learn_verdicts) */
        }
        uintptr_t next = frame[0];
        if (next == 0)
            DONE_AT(1, END_LINK0);
        if (next <= fp)
            DONE(0);
        fp = next;
    }
#undef DONE
#undef DONE_AT
}

/* Where a libunwind walk starts: the walk first sees this file's functions and the exported
 * one, however the compiler inlined them; `ret` (the return address into the caller of the
 * exported function), when nonzero, is sought among the first SEEK frames and the frames
 * before it are dropped. If it is not among them, only the first frame is ours. */
enum { SEEK = 8 };
struct seek {
    uintptr_t ret;
    uintptr_t head[SEEK];
    size_t nhead;
    int found;
};

static void seek_init(struct seek *k, uintptr_t ret)
{
    memset(k, 0, sizeof *k);   /* all of it: gcc cannot tell that head is read below nhead only */
    k->ret = ret;
    k->found = ret == 0;
}

/* Takes frame ip of the walk; returns 0 when the sink is full. */
static int seek_put(struct seek *k, struct sink *s, uintptr_t ip)
{
    if (!k->found) {
        if (ip != k->ret) {
            k->head[k->nhead++] = ip;
            if (k->nhead < SEEK)
                return 1;
            k->found = 1; /* give up seeking: head[1..] are the caller's frames */
            for (size_t i = 1; i < k->nhead && i < SEEK; i++)
                if (!put(s, k->head[i]))
                    return 0;
            return 1;
        }
        k->found = 1;
    }
    return put(s, ip);
}

/* The walk ended while seeking: head[1..] are the caller's frames. */
static void seek_end(struct seek *k, struct sink *s)
{
    for (size_t i = 1; !k->found && i < k->nhead && i < SEEK; i++)
        if (!put(s, k->head[i]))
            return;
}

/* The one libunwind loop, for captures and for the fault handler: puts the frames of
 * `cursor`, starting with its current one (seeking `ret` first, see struct seek). Stops after
 * max + skip + SEEK frames whatever happens (a bounded walk). Async-signal-safe for a local
 * cursor (libunwind's contract for unw_step and unw_get_reg). */
static void walk_cursor(unw_cursor_t *cursor, uintptr_t ret, struct sink *s)
{
    struct seek k;
    seek_init(&k, ret);
    unsigned steps = 0;
    do {
        unw_word_t ip;
        if (unw_get_reg(cursor, UNW_REG_IP, &ip) != 0 || ip < 4096)
            break;
        if (!seek_put(&k, s, (uintptr_t)ip))
            return;
    } while (++steps < s->max + s->skip + SEEK && unw_step(cursor) > 0);
    seek_end(&k, s);
}

/* libunwind, from here: puts the frames starting at the one that `ret` belongs to (struct
 * seek).
 * unw_backtrace, not an unw_step loop, where it is safe: each unw_step takes the lock of
 * libunwind's global cache of unwind rules, and masks every signal while it holds it: two
 * sigprocmask system calls per frame (Debian's libunwind 1.6 has no per-thread cache:
 * unw_set_caching_policy turns UNW_CACHE_PER_THREAD into UNW_CACHE_GLOBAL). unw_backtrace
 * keeps a per-thread cache of frame shapes by return address, with no lock, and falls back to
 * the unw_step loop by itself for a frame it cannot trace, so its stacks are the same. Through
 * CPython (Debian's python3.11, no frame pointers) the free of a watched object, which
 * captures its destroy stack, went from 6.2 to 1.2 us of CPU time (docs/python.md).
 * Under ThreadSanitizer the step loop: unw_backtrace's per-thread cache has a thread-exit
 * destructor that crashes gcc 12's TSan runtime. On other architectures than x86-64 the step
 * loop too (measured and tested on x86-64 only). */
#if defined(__SANITIZE_THREAD__) || !defined(__x86_64__)
#define USE_UNW_BACKTRACE 0   /* elsewhere: libunwind 1.6's aarch64 unw_backtrace gave frames the seek of ret does not find (qemu) */
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define USE_UNW_BACKTRACE 0
#endif
#endif
#ifndef USE_UNW_BACKTRACE
#define USE_UNW_BACKTRACE 1
#endif

static void walk_libunwind(uintptr_t ret, struct sink *s)
{
    pthread_rwlock_rdlock(&unwind_lock);
#if USE_UNW_BACKTRACE
    enum { CAP = WREF__STACK_UNWIND_MAX + 2 * SEEK };
    void *ips[CAP];
    size_t want = s->max + s->skip + SEEK;
    int n = unw_backtrace(ips, (int)(want < CAP ? want : CAP));
    struct seek k;
    seek_init(&k, ret ? ret : 1);
    for (int i = 0; i < n; i++)
        if ((uintptr_t)ips[i] < 4096 || !seek_put(&k, s, (uintptr_t)ips[i]))
            goto out;
    seek_end(&k, s);
out:
#else
    unw_context_t context;
    unw_cursor_t cursor;
    if (unw_getcontext(&context) == 0 && unw_init_local(&cursor, &context) == 0)
        walk_cursor(&cursor, ret ? ret : 1, s);
#endif
    pthread_rwlock_unlock(&unwind_lock);
}

/* Unwinds from the exported function whose frame is `fp` and whose return address is `ret`:
 * frame pointers when they give a complete stack, else libunwind (see the verdicts). */
static size_t unwind(uintptr_t fp, uintptr_t ret, uintptr_t *pcs, size_t max, unsigned skip)
{
    if (max == 0)
        return 0;
    wref__stat_add(WREF__STAT_CAPTURES, 1);
    uintptr_t fast[WREF__STACK_UNWIND_MAX];
    if (max > sizeof fast / sizeof fast[0])
        max = sizeof fast / sizeof fast[0];
    struct sink f = { fast, 0, max, skip, 0 };
    uintptr_t last = 0;
    int tentative = 0;
    unsigned end = END_NONE;
    last_walk.end = END_NONE;
    if (__atomic_load_n(&depot.fast_unwind, __ATOMIC_RELAXED)) {
        if (walk_frame_pointers(fp, &f, &last, &end, &tentative)) {
            memcpy(pcs, fast, f.n * sizeof *pcs);
            if (skip == 0) {   /* the walk's frames are the chain's records from fp */
                last_walk.end = end;
                last_walk.n = f.n;
                last_walk.link0 = ((const uintptr_t *)fp)[0];
            }
            return f.n;
        }
    }
    wref__stat_add(WREF__STAT_CAPTURES_SLOW, 1);
    struct sink s = { pcs, 0, max, skip, 0 };
    walk_libunwind(ret, &s);
    if (f.walked == 0)
        return s.n;
    if (tentative) {
        size_t cut = learn_verdicts(fast, f.n, pcs, s.n, max);
        if (cut)
            return cut;
    }
    /* Learn where complete walks end: the broken fast walk agreed with libunwind on every
     * frame and libunwind went at most TERMINAL_SLACK frames further (C start-up glue). */
    if (last != 0 && s.n < max && f.n > 0 && f.n <= s.n && s.n - f.n <= TERMINAL_SLACK &&
        memcmp(fast, pcs, f.n * sizeof *pcs) == 0) {
        mark_terminal(last);
        if (s.n - f.n > 0) {   /* keep the fast walk's shape, so both ways store one stack */
            s.n = f.n;
        }
    }
    if (s.n < f.n && !tentative) {   /* libunwind knew less (no unwind info): keep the longer walk */
        memcpy(pcs, fast, f.n * sizeof *pcs);
        return f.n;
    }
    return s.n;
}

/* ---- per-thread memo of captures -------------------------------------------------------------
 * A stack the fast walk got complete is its frame-pointer chain (every function on it keeps a
 * frame record), so the chain's records alone decide it. The memo keeps, per thread, the
 * records {link, return address} of the chains that decided its recent captures, from the
 * frame of the function that captured (wref__capture) outwards, as far as they decided the
 * stored stack; a capture whose chain holds the same records costs one compare per record: no
 * verdicts, no hashing, no depot probe. Exact: the records compared are the ones the walk
 * read for the frames kept (return addresses and links), so a different caller chain (another
 * return address anywhere in the kept frames, or the same ones in other frames) misses. Each
 * record is read only after the previous one's link matched a link the complete walk
 * checked, so the compare needs no bounds checks. What is not compared: the records beyond
 * the frames kept (they do not change the stack), and the link of a TERMINAL pc's record (its
 * function keeps no record: whatever its frame-pointer register held, under TSan a word of the
 * thread state that changes with every synchronization). Verdicts never change once given, so
 * a chain complete once is complete again. Only complete frame-pointer walks enter it: a walk
 * that needed libunwind may have passed functions without frame records, which the chain does
 * not show. Sets of MEMO_WAYS entries, chosen by the first record (the capture's call site in
 * the checker and the depth of its frame). */

static inline unsigned memo_set(uintptr_t fp, uintptr_t pc)
{
    return (unsigned)((pc ^ (fp << 7)) * 0x9e3779b97f4a7c15ull >> 32) & (MEMO_SETS - 1);
}

/* Does entry e (records rec) hold the chain of the records from `frame`? */
__attribute__((no_sanitize_address))
static inline int memo_match(const struct memo_entry *e, const uintptr_t (*rec)[2], const uintptr_t *frame)
{
    const uintptr_t (*last)[2] = e->last;
    if (e->fp != (uintptr_t)frame)
        return 0;
    for (;; rec++) {
        if (frame[1] != (*rec)[1])
            return 0;
        if (rec == last)
            return e->open_end || frame[0] == (*rec)[0];
        if (frame[0] != (*rec)[0])
            return 0;
        frame = (const uintptr_t *)frame[0];   /* a link the complete walk followed */
    }
}

static __attribute__((noinline)) wref__stack_id memo_get_other(const uintptr_t *frame, unsigned set, uint32_t *gen)
{
    unsigned way = memo.mru[set] ^ 1u, i = MEMO_WAYS * set + way;
    const struct memo_entry *e = &memo.e[i];
    if (!memo_match(e, memo.rec[i], frame))
        return 0;
    memo.mru[set] = (uint8_t)way;
    *gen = e->gen;
    return e->id;
}

/* A leaf but for a miss in the set's entry hit last: the capture's fast path. */
__attribute__((no_sanitize_address))
wref__stack_id wref__stack_memo_get(uintptr_t fp, uint32_t *gen)
{
    const uintptr_t *frame = (const uintptr_t *)fp;   /* the caller's own frame record */
    unsigned set = memo_set(fp, frame[1]);
    unsigned i = MEMO_WAYS * set + memo.mru[set];
    const struct memo_entry *e = &memo.e[i];
    if (__builtin_expect(!memo_match(e, memo.rec[i], frame), 0))
        return memo_get_other(frame, set, gen);
    *gen = e->gen;
    return e->id;
}

__attribute__((no_sanitize_address))
void wref__stack_memo_put(uintptr_t fp, size_t used, wref__stack_id id)
{
    /* the last unwind was this thread's, complete, with skip 0: its frame j >= 1 is the record
     * at a_j, a_1 its caller's frame (link0), a_j+1 the link of the record at a_j */
    if (!id || last_walk.end == END_NONE || used > last_walk.n)
        return;
    const uintptr_t *frame = (const uintptr_t *)last_walk.link0;
    size_t k = 1;   /* the frame whose record is at `frame` */
    while ((uintptr_t)frame != fp && k < used) {
        frame = (const uintptr_t *)frame[0];   /* a link the walk followed */
        k++;
    }
    if ((uintptr_t)frame != fp || k >= used)
        return;
    size_t n = used - k;   /* records from fp: frames k .. used - 1 */
    int open_end = 1;
    if (used == last_walk.n && last_walk.end != END_FULL && last_walk.end != END_TERMINAL) {
        open_end = 0;   /* the stack ends here: the link (0), or the {0, 0} record after it, decides */
        n += last_walk.end == END_ZERO;
    }
    if (n == 0 || n > MEMO_RECS)
        return;
    unsigned set = memo_set(fp, frame[1]);
    unsigned way = memo.mru[set] ^ 1u, e_i = MEMO_WAYS * set + way;   /* the entry not hit last */
    struct memo_entry *e = &memo.e[e_i];
    e->fp = 0;   /* empty while it is rewritten (a signal handler on this thread may capture) */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    for (size_t i = 0; i < n; i++) {
        memo.rec[e_i][i][0] = frame[0];
        memo.rec[e_i][i][1] = frame[1];
        frame = (const uintptr_t *)frame[0];
    }
    e->last = &memo.rec[e_i][n - 1];
    e->gen = wref__stack_gen(id);
    e->id = id;
    e->open_end = (uint32_t)open_end;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    e->fp = fp;
    memo.mru[set] = (uint8_t)way;
}

/* ---- depot --------------------------------------------------------------------------------- */

static uint32_t hash_pcs(const uintptr_t *pcs, size_t n, uint32_t gen)
{
    uint64_t h = (0x9e3779b97f4a7c15ull ^ n) + ((uint64_t)gen << 40);
    for (size_t i = 0; i < n; i++) {
        uint64_t k = (uint64_t)pcs[i];
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdull;
        k ^= k >> 33;
        h = (h ^ k) * 0xc4ceb9fe1a85ec53ull;
        h = (h << 31) | (h >> 33);
    }
    h ^= h >> 29;
    return (uint32_t)h ^ (uint32_t)(h >> 32);
}

static struct node *node_of(wref__stack_id id)
{
    if (id == 0 || id >= MAX_IDS)
        return NULL;
    struct node **block = __atomic_load_n(&depot.dir[id >> DIR_BLOCK_BITS], __ATOMIC_ACQUIRE);
    if (block == NULL)
        return NULL;
    return __atomic_load_n(&block[id & (DIR_BLOCK_SIZE - 1)], __ATOMIC_ACQUIRE);
}

static wref__stack_id find(uint32_t hash, const uintptr_t *pcs, size_t n, uint32_t gen)
{
    wref__stack_id id = __atomic_load_n(&depot.buckets[hash & ((1u << BUCKET_BITS) - 1)],
                                        __ATOMIC_ACQUIRE);
    while (id != 0) {
        const struct node *node = node_of(id);
        if (node == NULL)
            return 0; /* cannot happen: ids are published after their nodes */
        if (node->hash == hash && node->size == n && node->gen == gen &&
            memcmp(node->pcs, pcs, n * sizeof(uintptr_t)) == 0)
            return id;
        id = node->next;
    }
    return 0;
}

static void *map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    __atomic_fetch_add(&depot.mapped_bytes, size, __ATOMIC_RELAXED);
    wref__stat_add(WREF__STAT_DEPOT_BYTES, size);
    return p;
}

/* Caller holds depot.lock. */
static struct node *alloc_node(size_t n)
{
    size_t size = sizeof(struct node) + n * sizeof(uintptr_t);
    if (depot.chunk == NULL || CHUNK_SIZE - depot.chunk_used < size) {
        char *chunk = map(CHUNK_SIZE);
        if (chunk == NULL)
            return NULL;
        depot.chunk = chunk;
        depot.chunk_used = 0;
    }
    struct node *node = (struct node *)(depot.chunk + depot.chunk_used);
    depot.chunk_used += size;
    return node;
}

static wref__stack_id insert(uint32_t hash, const uintptr_t *pcs, size_t n, uint32_t gen)
{
    pthread_mutex_lock(&depot.lock);
    wref__stack_id id = find(hash, pcs, n, gen); /* another thread may have won the race */
    if (id != 0)
        goto out;
    wref__stack_id new_id = depot.next_id;
    if (new_id >= MAX_IDS)
        goto out;
    struct node ***slot = &depot.dir[new_id >> DIR_BLOCK_BITS];
    struct node **block = *slot;
    if (block == NULL) {
        block = map(DIR_BLOCK_SIZE * sizeof(struct node *));
        if (block == NULL)
            goto out;
        __atomic_store_n(slot, block, __ATOMIC_RELEASE);
    }
    struct node *node = alloc_node(n);
    if (node == NULL)
        goto out;
    wref__stack_id *head = &depot.buckets[hash & ((1u << BUCKET_BITS) - 1)];
    node->next = *head;
    node->hash = hash;
    node->size = (uint32_t)n;
    node->gen = gen;
    memcpy(node->pcs, pcs, n * sizeof(uintptr_t));
    __atomic_store_n(&block[new_id & (DIR_BLOCK_SIZE - 1)], node, __ATOMIC_RELEASE);
    __atomic_store_n(head, new_id, __ATOMIC_RELEASE);
    depot.next_id = new_id + 1;
    id = new_id;
    wref__stat_add(WREF__STAT_STACKS, 1);
out:
    pthread_mutex_unlock(&depot.lock);
    return id;
}

/* ---- API ----------------------------------------------------------------------------------- */

void wref__stack_init(unsigned depth, int fast_unwind)
{
    if (depth < 1)
        depth = 1;
    if (depth > WREF__STACK_MAX_DEPTH)
        depth = WREF__STACK_MAX_DEPTH;
    __atomic_store_n(&depot.depth, depth, __ATOMIC_RELAXED);
    __atomic_store_n(&depot.fast_unwind, fast_unwind != 0, __ATOMIC_RELAXED);
    pthread_once(&atfork_once, register_atfork);
    /* libunwind reads unwind tables and sets up its caches on first use: do it now, not in
     * a hook. */
    uintptr_t warm[4];
    struct sink sink = { warm, 0, 4, 0, 0 };
    walk_libunwind(0, &sink);
    (void)thread_bounds();
    (void)verdict_of((uintptr_t)__builtin_return_address(0));   /* unw_get_proc_info_by_ip's first use */
}

size_t wref__stack_unwind_signal(void *ucontext, uintptr_t *pcs, size_t max)
{
    if (max > WREF__STACK_UNWIND_MAX)
        max = WREF__STACK_UNWIND_MAX;
    struct sink s = { pcs, 0, max, 0, 0 };
    if (max == 0 || ucontext == NULL)
        return 0;
#if defined(__x86_64__)
    /* On x86-64 Linux, libunwind's unw_context_t is the kernel's ucontext_t. */
    _Static_assert(sizeof(unw_context_t) == sizeof(ucontext_t), "unw_context_t is ucontext_t");
    unw_context_t context;
    memcpy(&context, ucontext, sizeof context);
    unw_cursor_t cursor;
    if (unw_init_local2(&cursor, &context, UNW_INIT_SIGNAL_FRAME) == 0)
        walk_cursor(&cursor, 0, &s);
    if (s.n > 0)
        pcs[0] += 1;   /* the interrupted pc, as a return address would be: symbolize pc - 1 */
#elif defined(__aarch64__)
    /* Frame records from the interrupted registers (x29 the frame pointer), bounded by max and
     * by the interrupted sp. A leaf that keeps no record loses its caller here (x30 may be
     * stale, so it is not guessed at). */
    const ucontext_t *uc = ucontext;
    uintptr_t fp = (uintptr_t)uc->uc_mcontext.regs[29], sp = (uintptr_t)uc->uc_mcontext.sp;
    if (put(&s, (uintptr_t)uc->uc_mcontext.pc + 1))
        while (fp > sp && fp - sp < ((uintptr_t)1 << 24) && fp % sizeof(uintptr_t) == 0) {
            const uintptr_t *frame = (const uintptr_t *)fp;
            if (frame[1] < 4096 || !put(&s, frame[1]) || frame[0] <= fp)
                break;
            fp = frame[0];
        }
#else
    (void)pcs;
#endif
    return s.n;
}

__attribute__((noinline))
size_t wref__stack_unwind(uintptr_t *pcs, size_t max, unsigned skip)
{
    return unwind((uintptr_t)__builtin_frame_address(0), (uintptr_t)__builtin_return_address(0),
                  pcs, max, skip);
}

wref__stack_id wref__stack_store(const uintptr_t *pcs, size_t n)
{
    if (n == 0)
        return 0;
    if (n > WREF__STACK_MAX_DEPTH)
        n = WREF__STACK_MAX_DEPTH;
    uint32_t gen = wref__module_gen();
    uint32_t hash = hash_pcs(pcs, n, gen);
    wref__stack_id id = find(hash, pcs, n, gen);
    return id != 0 ? id : insert(hash, pcs, n, gen);
}

__attribute__((noinline))
wref__stack_id wref__stack_capture(unsigned skip)
{
    uintptr_t pcs[WREF__STACK_MAX_DEPTH];
    size_t n = unwind((uintptr_t)__builtin_frame_address(0), (uintptr_t)__builtin_return_address(0),
                      pcs, __atomic_load_n(&depot.depth, __ATOMIC_RELAXED), skip);
    return wref__stack_store(pcs, n);
}

size_t wref__stack_get(wref__stack_id id, const uintptr_t **pcs)
{
    const struct node *node = node_of(id);
    if (node == NULL) {
        *pcs = NULL;
        return 0;
    }
    *pcs = node->pcs;
    return node->size;
}

uint32_t wref__stack_gen(wref__stack_id id)
{
    const struct node *node = node_of(id);
    return node != NULL ? node->gen : wref__module_gen();
}

size_t wref__stack_depot_bytes(void)
{
    return __atomic_load_n(&depot.mapped_bytes, __ATOMIC_RELAXED);
}
