/* lock.c: the striped spinlocks that guard weakref lists (see internal.h).
 *
 * A stripe is a test-and-test-and-set byte lock on its own cache line. Critical sections are
 * a few loads and stores, so spinning is cheaper than a futex; after a burst of spins the
 * waiter yields so that a preempted holder can run (2 cores, more threads). */
#include "internal.h"

#include <pthread.h>
#include <sched.h>

struct wref__stripe wref__stripes[WREF__STRIPES];

/* The contended path: wref__lock's first xchg found the stripe held. */
void wref__lock_slow(uint32_t stripe)
{
    unsigned char *l = &wref__stripes[stripe].locked;
    for (;;) {
        for (int spin = 0; spin < 128; spin++) {
            if (!__atomic_load_n(l, __ATOMIC_RELAXED) && !__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
                return;
            wref__cpu_relax();
        }
        sched_yield();
    }
}

/* ---- fork -----------------------------------------------------------------------------------
 * A child gets a copy of every stripe as it was at fork() time, but only the forking thread.
 * A stripe held by any other thread would stay held forever in the child, and the list it
 * guards could be half-updated. So the forking thread takes every stripe before fork(), in
 * index order (the only order in which anyone holds more than one: nobody else does), which
 * waits for every critical section in progress to end, and releases them all in the parent and
 * in the child afterwards. Critical sections are short and never fork, call user code, take
 * another lock or allocate (internal.h), so taking them all cannot deadlock.
 * Resetting the bytes in the child instead would not do: the list a holder was editing would
 * be left inconsistent.
 * The handlers are registered by a constructor, so every process that loads the library has
 * them before it can fork with a stripe held; pthread_atfork ties them to this library's
 * lifetime (dlclose removes them). */

static void stripes_prepare(void)
{
    for (uint32_t i = 0; i < WREF__STRIPES; i++)
        wref__lock(i);
}

static void stripes_release(void)
{
    for (uint32_t i = WREF__STRIPES; i-- > 0;)
        wref__unlock(i);
}

__attribute__((constructor)) static void register_fork_handlers(void)
{
    pthread_atfork(stripes_prepare, stripes_release, stripes_release);
}
