/* lock.c: the striped spinlocks that guard weakref lists (see internal.h).
 *
 * A stripe is a test-and-test-and-set byte lock on its own cache line. Critical sections are
 * a few loads and stores, so spinning is cheaper than a futex; after a burst of spins the
 * waiter yields so that a preempted holder can run (2 cores, more threads). */
#include "internal.h"

#include <sched.h>

struct wref__stripe wref__stripes[WREF__STRIPES];

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* The contended path: wref__lock's first xchg found the stripe held. */
void wref__lock_slow(uint32_t stripe)
{
    unsigned char *l = &wref__stripes[stripe].locked;
    for (;;) {
        for (int spin = 0; spin < 128; spin++) {
            if (!__atomic_load_n(l, __ATOMIC_RELAXED) && !__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
                return;
            cpu_relax();
        }
        sched_yield();
    }
}

void wref__locks_after_fork(void)
{
    for (unsigned i = 0; i < WREF__STRIPES; i++)
        __atomic_store_n(&wref__stripes[i].locked, 0, __ATOMIC_RELAXED);
}
