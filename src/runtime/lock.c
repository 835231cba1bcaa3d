/* lock.c: the striped spinlocks that guard weakref lists (see internal.h).
 *
 * A stripe is a test-and-test-and-set byte lock on its own cache line. Critical sections are
 * a few loads and stores, so spinning is cheaper than a futex; after a burst of spins the
 * waiter yields so that a preempted holder can run (2 cores, more threads). */
#include "internal.h"

#include <sched.h>

struct stripe {
    unsigned char locked;   /* 0 free, 1 held; acquire on lock, release on unlock */
    char pad[63];
} __attribute__((aligned(64)));

static struct stripe stripes[WREF__STRIPES];

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void wref__lock(uint32_t stripe)
{
    unsigned char *l = &stripes[stripe].locked;
    if (WREF__LIKELY(!__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE)))
        return;
    for (;;) {
        for (int spin = 0; spin < 128; spin++) {
            if (!__atomic_load_n(l, __ATOMIC_RELAXED) && !__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
                return;
            cpu_relax();
        }
        sched_yield();
    }
}

void wref__unlock(uint32_t stripe)
{
    __atomic_store_n(&stripes[stripe].locked, 0, __ATOMIC_RELEASE);
}

void wref__locks_after_fork(void)
{
    for (unsigned i = 0; i < WREF__STRIPES; i++)
        __atomic_store_n(&stripes[i].locked, 0, __ATOMIC_RELAXED);
}
