/* smr.c: safe memory reclamation for the lock-free weakref reads (release build only).
 *
 * wref_get_ref and wref_get_object read a weakref's referent and then touch the referent's
 * count without the stripe lock; wref_ref_new reads an object's list head (its canonical ref)
 * and then that weakref's fields and count. Clearing (which NULLs every referent field of an
 * object) precedes the object's free, and unlinking precedes a weakref's free, but a reader
 * may have loaded the pointer just before. So the memory of an object that ever had a weakref,
 * and of a weakref that was ever linked (both marked WREF__FLAG_SMR), is freed only
 * when no reader can still hold its pointer: after a grace period.
 *
 * Readers (the hot path, internal.h): each thread owns a reader slot; `seq` is odd while the
 * thread is inside a read section. Entering is a plain store (no fence, no read-modify-write)
 * when the kernel's membarrier(PRIVATE_EXPEDITED) is available: the reclaimer then pays for the
 * ordering instead, by making every running thread of the process execute a full barrier. The
 * hot paths find the slot in wref__reader_fast, which is set only then, so they test nothing
 * else. Without membarrier (old kernel, seccomp, some emulators) wref__reader_fast stays NULL
 * and the out-of-line paths enter with a seq_cst fence (wref__read_begin_any).
 *
 * Grace period (wref__smr_synchronize): membarrier (or a fence), then for every other slot in
 * use whose seq is odd, wait until it changes. A reader that entered after the barrier loads
 * the referent after its clearing, so it sees NULL; one that entered before is waited for.
 *
 * Deferred frees: each thread queues its frees (PENDING_MAX objects at most) and frees the
 * whole batch after one grace period, so the membarrier cost is paid once per PENDING_MAX
 * frees. Memory held back is therefore bounded by PENDING_MAX objects (or weakrefs) per thread.
 * When no other thread has a reader slot, the object is freed at once: a single-threaded
 * program holds nothing back. That test (alone) is a load of the slot count after a compiler
 * barrier: a new reader runs membarrier between counting itself and its first read (or, without
 * membarrier, both sides run a full fence), so either the reclaimer sees the new slot or the
 * reader sees the cleared referent. A thread's queue is flushed when it exits and by
 * wref_set_allocator.
 *
 * Slots are never freed (a thread that exits marks its slot free for the next thread); they
 * come from calloc, not from the configurable allocator, so they are not counted as objects. */
#include "internal.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef WREF_CHECKED

#define PENDING_MAX 64

__thread struct wref__reader *wref__reader_fast __attribute__((tls_model("initial-exec")));
static __thread struct wref__reader *self __attribute__((tls_model("initial-exec")));   /* this thread's slot */
int wref__smr_reader_fence = 1;   /* until membarrier is known to work */
#ifdef WREF__TSAN
int wref__fence_cell;
#endif

static struct {
    pthread_mutex_t lock;           /* slot list changes (registration, exit) */
    struct wref__reader *slots;     /* every slot ever made, newest first; next is immutable */
    long in_use;                    /* atomic: slots owned by a thread */
    int membarrier_ok;
    pthread_key_t key;              /* its destructor flushes and releases a thread's state */
    pthread_once_t once;
} smr = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0, PTHREAD_ONCE_INIT};

static __thread struct {
    unsigned n;
    struct { void *p; size_t size; } items[PENDING_MAX];
    bool keyed;   /* pthread_setspecific done: the destructor will run */
} pending __attribute__((tls_model("initial-exec")));

static int membarrier(int cmd)
{
#ifdef SYS_membarrier
    return (int)syscall(SYS_membarrier, cmd, 0, 0);
#else
    (void)cmd;
    return -1;
#endif
}

static void thread_exit(void *arg);

static void smr_init(void)
{
    pthread_key_create(&smr.key, thread_exit);
    int cmds = membarrier(MEMBARRIER_CMD_QUERY);
    if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0 &&
        membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) {
        smr.membarrier_ok = 1;
        __atomic_store_n(&wref__smr_reader_fence, 0, __ATOMIC_RELAXED);
    }
}

/* fork: the slot list's lock is held across fork() (so the child's copy is consistent), and
 * the child, which has only the forking thread, keeps that thread's slot and no other: a slot
 * of a thread that does not exist there could be odd forever and block every grace period. */
static void fork_prepare(void) { pthread_mutex_lock(&smr.lock); }
static void fork_parent(void) { pthread_mutex_unlock(&smr.lock); }
static void fork_child(void)
{
    long n = 0;
    for (struct wref__reader *r = smr.slots; r; r = r->next) {
        if (r == self) {
            n++;
            continue;
        }
        r->seq = 0;
        r->in_use = 0;
    }
    smr.in_use = n;
    /* membarrier's registration is per process (mm) and a child starts unregistered */
    if (smr.membarrier_ok && membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0) {
        smr.membarrier_ok = 0;
        __atomic_store_n(&wref__smr_reader_fence, 1, __ATOMIC_RELAXED);
        wref__reader_fast = NULL;   /* the only thread: its sections need the fence now */
    }
    pthread_mutex_unlock(&smr.lock);
}

/* Before any thread exists that could read without a fence: main's start-up (or dlopen, when
 * no thread can be inside a read section of this library yet). */
__attribute__((constructor)) static void smr_constructor(void)
{
    pthread_once(&smr.once, smr_init);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void set_key(void)
{
    if (!pending.keyed) {
        pthread_once(&smr.once, smr_init);
        pthread_setspecific(smr.key, (void *)1);
        pending.keyed = true;
    }
}

struct wref__reader *wref__reader_get(void)
{
    if (self)
        return self;
    set_key();
    pthread_mutex_lock(&smr.lock);
    struct wref__reader *r;
    for (r = smr.slots; r; r = r->next)
        if (!r->in_use)
            break;
    if (!r) {
        r = aligned_alloc(WREF__READER_ALIGN, sizeof *r);
        if (!r) {
            pthread_mutex_unlock(&smr.lock);
            return NULL;   /* the caller takes the stripe lock instead */
        }
        r->seq = 0;
        r->next = smr.slots;
        r->in_use = 0;
        __atomic_store_n(&smr.slots, r, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&r->in_use, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&smr.in_use, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&smr.lock);
    /* pairs with alone()'s compiler barrier (or fence): a reclaimer that still counts no other
     * reader freed its object before this thread's first referent load could see the pointer */
    if (smr.membarrier_ok)
        membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
    else
        wref__full_fence();
    self = r;
    if (smr.membarrier_ok)
        wref__reader_fast = r;
    return r;
}

/* Every read section in progress on another thread when this is called has ended when it
 * returns. Never called inside a read section. */
static void synchronize(void)
{
    if (smr.membarrier_ok)
        membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
    else
        wref__full_fence();
    for (struct wref__reader *r = __atomic_load_n(&smr.slots, __ATOMIC_ACQUIRE); r; r = r->next) {
        if (r == self || !__atomic_load_n(&r->in_use, __ATOMIC_ACQUIRE))
            continue;
        unsigned long s = __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE);
        if (!(s & 1))
            continue;
        for (unsigned spin = 0; __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE) == s; spin++) {
            if (spin < 128)
                wref__cpu_relax();
            else
                sched_yield();   /* the reader may be preempted inside its few instructions */
        }
    }
}

static void flush(void)
{
    unsigned n = pending.n;
    if (!n)
        return;
    synchronize();
    pending.n = 0;
    for (unsigned i = 0; i < n; i++)
        wref__mem_free(pending.items[i].p, pending.items[i].size);
}

/* True when no thread but (perhaps) this one has a reader slot: nobody can be reading. */
static bool alone(void)
{
    /* our referent stores and unlinks before the count's load (see the top of the file) */
    if (__atomic_load_n(&wref__smr_reader_fence, __ATOMIC_RELAXED))
        wref__full_fence();
    else
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
    long others = __atomic_load_n(&smr.in_use, __ATOMIC_RELAXED) - (self != NULL);
    return others <= 0;
}

void wref__smr_free(void *p, size_t size)
{
    if (alone()) {
        if (pending.n) {   /* what we queued while others were reading is safe too now */
            unsigned n = pending.n;
            pending.n = 0;
            for (unsigned i = 0; i < n; i++)
                wref__mem_free(pending.items[i].p, pending.items[i].size);
        }
        wref__mem_free(p, size);
        return;
    }
    set_key();
    if (pending.n == PENDING_MAX)
        flush();
    pending.items[pending.n].p = p;
    pending.items[pending.n].size = size;
    pending.n++;
}

void wref__smr_flush(void)
{
    flush();
}

size_t wref__smr_pending_max(void)
{
    return PENDING_MAX;
}

static void thread_exit(void *arg)
{
    (void)arg;
    flush();
    struct wref__reader *r = self;
    if (r) {
        pthread_mutex_lock(&smr.lock);
        self = wref__reader_fast = NULL;
        __atomic_fetch_sub(&smr.in_use, 1, __ATOMIC_SEQ_CST);
        __atomic_store_n(&r->in_use, 0, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&smr.lock);
    }
    pending.keyed = false;
}

#endif /* !WREF_CHECKED */
