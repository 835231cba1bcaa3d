/* stats.c: the checker's counters about itself (stats.h). */
#include "check/engine/stats.h"

#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

/* Blocks are taken from a fixed pool, never freed: a block's counts stay in the sums after
 * its thread exits (the block goes back to the pool with them, and its next owner adds on
 * top). Past POOL live threads, the shared atomics below take their adds. */
#define POOL 128
static struct wref__stat_block pool[POOL];
static uint64_t shared[WREF__STAT_COUNT];   /* relaxed atomics: the fallback, and the raised counters */
static pthread_key_t exit_key;              /* its destructor gives the thread's block back */
static int exit_key_ready;                  /* atomic */

__thread struct wref__stat_block *wref__stat_mine __attribute__((tls_model("initial-exec"), visibility("hidden")));

static const char *const names[WREF__STAT_COUNT] = {
#define WREF__STAT_NAME(id, text) text,
    WREF__STATS(WREF__STAT_NAME)
#undef WREF__STAT_NAME
};

/* Thread exit: the block back to the pool, counts kept. A later add on this thread (another
 * key's destructor) takes a block again. */
static void block_release(void *arg)
{
    struct wref__stat_block *b = arg;
    if (wref__stat_mine == b)
        wref__stat_mine = NULL;
    __atomic_store_n(&b->in_use, 0, __ATOMIC_RELEASE);
}

/* fork: the child has only the forking thread; the other threads' blocks are free again (their
 * counts stay, as they were before the fork). Nothing to hold: blocks are taken lock-free. */
static void stats_fork_child(void)
{
    for (int i = 0; i < POOL; i++)
        if (&pool[i] != wref__stat_mine)
            __atomic_store_n(&pool[i].in_use, 0, __ATOMIC_RELAXED);
}

__attribute__((constructor)) static void stats_init(void)
{
    if (pthread_key_create(&exit_key, block_release) == 0)
        __atomic_store_n(&exit_key_ready, 1, __ATOMIC_RELEASE);
    pthread_atfork(NULL, NULL, stats_fork_child);
}

/* This thread's first add (or its first after its block was given back), maybe in a signal
 * handler: a lock-free claim. A handler that interrupts the claim may claim a block of its
 * own; the interrupted claim then keeps its own and the handler's stays in use, counts
 * included. pthread_setspecific of a key made at load time (one of the first 32) only stores
 * into the thread's descriptor (glibc), so it is safe here. */
static __thread unsigned char pool_was_full __attribute__((tls_model("initial-exec")));

void wref__stat_add_slow(enum wref__stat s, uint64_t n)
{
    /* A thread that found the pool full once adds to the shared cells from then on: no scan of
     * the pool on each of its adds. */
    for (int i = 0; !pool_was_full && i < POOL; i++) {
        int free_ = 0;
        if (__atomic_load_n(&pool[i].in_use, __ATOMIC_RELAXED) == 0 &&
            __atomic_compare_exchange_n(&pool[i].in_use, &free_, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            struct wref__stat_block *b = &pool[i];
            if (__atomic_load_n(&exit_key_ready, __ATOMIC_ACQUIRE))
                (void)pthread_setspecific(exit_key, b);
            wref__stat_mine = b;
            wref__stat_add(s, n);
            return;
        }
    }
    pool_was_full = 1;
    __atomic_fetch_add(&shared[s], n, __ATOMIC_RELAXED);   /* no block free: the shared fallback */
}

void wref__stat_max(enum wref__stat s, uint64_t v)
{
    uint64_t cur = __atomic_load_n(&shared[s], __ATOMIC_RELAXED);
    while (cur < v && !__atomic_compare_exchange_n(&shared[s], &cur, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

/* The sum of every block and the shared cell (a raised counter has only the latter). */
uint64_t wref__stat_get(enum wref__stat s)
{
    uint64_t v = __atomic_load_n(&shared[s], __ATOMIC_RELAXED);
    for (int i = 0; i < POOL; i++)
        v += __atomic_load_n(&pool[i].c[s], __ATOMIC_RELAXED);
    return v;
}

/* Decimal digits of v into the end of buf; returns the first digit. */
static char *digits(uint64_t v, char *end)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

static void put(char *line, size_t *len, size_t cap, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *len < cap; i++)
        line[(*len)++] = s[i];
}

static size_t cstrlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

void wref__stats_print(int fd)
{
    char num[24], line[160];
    size_t len = 0;
    char *p = digits((uint64_t)getpid(), num + sizeof num);
    put(line, &len, sizeof line, "==", 2);
    put(line, &len, sizeof line, p, (size_t)(num + sizeof num - p));
    put(line, &len, sizeof line, "==WARNING: wref-check: statistics:\n", 35);
    (void)!write(fd, line, len);
    for (int s = 0; s < WREF__STAT_COUNT; s++) {
        len = 0;
        put(line, &len, sizeof line, "  ", 2);
        put(line, &len, sizeof line, names[s], cstrlen(names[s]));
        put(line, &len, sizeof line, ": ", 2);
        p = digits(wref__stat_get((enum wref__stat)s), num + sizeof num);
        put(line, &len, sizeof line, p, (size_t)(num + sizeof num - p));
        put(line, &len, sizeof line, "\n", 1);
        (void)!write(fd, line, len);
    }
}
