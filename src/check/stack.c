/* stack.c: backtrace capture (frame pointers or libunwind) and the stack depot.
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
#include "check/stack.h"
#include "check/symbolize.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>

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

/* ---- fork: a child must not inherit a lock held by a thread that does not exist there */

static void fork_prepare(void) { pthread_mutex_lock(&depot.lock); }
static void fork_parent(void) { pthread_mutex_unlock(&depot.lock); }
static void fork_child(void) { pthread_mutex_unlock(&depot.lock); }

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

/* Walks the frame-pointer chain starting at frame `fp` (a frame record {saved fp, return
 * address}, as on x86-64 and AArch64 with frame pointers). Accepts a record only if it lies
 * inside this thread's stack, is word-aligned and is above the previous one, so a corrupt or
 * absent chain ends the walk instead of faulting. Stops at a pc below 4096. */
__attribute__((no_sanitize_address))
static void walk_frame_pointers(uintptr_t fp, struct sink *s)
{
    if (!thread_bounds())
        return;
    for (;;) {
        if (fp < stack_lo || fp > stack_hi - 2 * sizeof(uintptr_t) ||
            fp % sizeof(uintptr_t) != 0)
            return;
        const uintptr_t *frame = (const uintptr_t *)fp;
        uintptr_t pc = frame[1];
        if (pc < 4096 || !put(s, pc))
            return;
        uintptr_t next = frame[0];
        if (next <= fp)
            return;
        fp = next;
    }
}

/* libunwind: puts the frames starting at the one that `ret` (the return address into the
 * caller of the exported function) belongs to; the walk first sees this function and the
 * exported one, and finding `ret` drops them however the compiler inlined them. If `ret` is
 * not among the first SEEK frames, assumes that only the first frame is ours.
 * unw_step rather than unw_backtrace: unw_backtrace keeps a per-thread cache whose
 * thread-exit destructor crashes gcc 12's ThreadSanitizer runtime. */
static void walk_libunwind(uintptr_t ret, struct sink *s)
{
    enum { SEEK = 8 };
    uintptr_t head[SEEK];
    size_t nhead = 0;
    int found = 0;
    unw_context_t context;
    unw_cursor_t cursor;
    if (unw_getcontext(&context) != 0 || unw_init_local(&cursor, &context) != 0)
        return;
    do {
        unw_word_t ip;
        if (unw_get_reg(&cursor, UNW_REG_IP, &ip) != 0 || ip < 4096)
            break;
        if (!found) {
            if ((uintptr_t)ip != ret) {
                head[nhead++] = (uintptr_t)ip;
                if (nhead < SEEK)
                    continue;
                found = 1; /* give up seeking: head[1..] are the caller's frames */
                for (size_t i = 1; i < nhead; i++)
                    if (!put(s, head[i]))
                        return;
                continue;
            }
            found = 1;
        }
        if (!put(s, (uintptr_t)ip))
            return;
    } while (unw_step(&cursor) > 0);
    for (size_t i = 1; !found && i < nhead; i++) /* the walk ended while seeking */
        if (!put(s, head[i]))
            return;
}

/* Unwinds from the exported function whose frame is `fp` and whose return address is `ret`. */
static size_t unwind(uintptr_t fp, uintptr_t ret, uintptr_t *pcs, size_t max, unsigned skip)
{
    struct sink s = { pcs, 0, max, skip, 0 };
    if (max == 0)
        return 0;
    if (__atomic_load_n(&depot.fast_unwind, __ATOMIC_RELAXED)) {
        walk_frame_pointers(fp, &s);
        if (s.walked >= 2 || s.n == max)
            return s.n;
        s = (struct sink){ pcs, 0, max, skip, 0 };
    }
    walk_libunwind(ret, &s);
    return s.n;
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
