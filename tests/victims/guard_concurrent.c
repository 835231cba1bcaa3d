/* guard_concurrent.c: under guard=all, two threads read two destroyed objects at the same
 * moment. Each fault gets its own use-after-free report (one waits for the other's); then
 * the program's own SIGSEGV handler (installed after the checker, so chained) waits until
 * both threads have faulted and exits 42. */
#include "victim.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static struct widget *stale[2];
static pthread_barrier_t start;
static int handled;   /* atomic: faults that reached the program's handler */

static void program_handler(int sig)
{
    (void)sig;
    __atomic_fetch_add(&handled, 1, __ATOMIC_ACQ_REL);
    for (int i = 0; i < 5000 && __atomic_load_n(&handled, __ATOMIC_ACQUIRE) < 2; i++)
        usleep(1000);
    _exit(__atomic_load_n(&handled, __ATOMIC_ACQUIRE) == 2 ? 42 : 43);
}

__attribute__((no_sanitize("address"))) static NOINLINE void *victim_read_in_thread(void *arg)
{
    struct widget *w = stale[(intptr_t)arg];
    OPAQUE(w);
    pthread_barrier_wait(&start);
    int v = *(volatile const int *)&w->payload;   /* BUG: destroyed (faults under guard=all) */
    OPAQUE(v);
    return NULL;
}

int main(void)
{
    VCHECK(signal(SIGSEGV, program_handler) != SIG_ERR);
    victim_destroyed_widgets(stale, 2);
    pthread_barrier_init(&start, NULL, 2);
    pthread_t t[2];
    for (intptr_t i = 0; i < 2; i++)
        VCHECK(pthread_create(&t[i], NULL, victim_read_in_thread, (void *)i) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    return 0;   /* reached only without guard pages */
}
