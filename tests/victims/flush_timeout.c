/* flush_timeout.c: flush_on_signal when the exit work cannot finish. The program leaks a
 * Node whose traverse function never returns (the census calls it), arms its own SIGALRM
 * (alarm(1), with a handler that says so), makes one use-after-free finding, and gets SIGTERM.
 * The checker's exit work hangs in traverse; after its 2 s timeout it must say so and die by
 * SIGTERM (the shell sees 143), and the program's own SIGALRM must still be the program's.
 * With the argument "spin" the traverse function spins in a loop that calls nothing, and no
 * SIGALRM is armed: under ThreadSanitizer, which delivers a signal only when the thread
 * reaches one of its interceptors, the timeout must still cut the exit work short. */
#include "victim.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t alarms;

static void program_alarm(int sig)
{
    (void)sig;
    alarms++;
    static const char msg[] = "program's SIGALRM handler ran\n";
    (void)!write(1, msg, sizeof msg - 1);
}

static int spin;

static int victim_traverse_hangs(wref_object *self, wref_visit_fn visit, void *arg)
{
    (void)self;
    (void)visit;
    (void)arg;
    static volatile unsigned long turns;
    for (;;) {   /* BUG (on purpose): the exit census never gets past this object */
        if (spin)
            turns++;   /* no call at all: no interceptor, no sync point */
        else
            sleep(1);
    }
    return 0;
}

static const wref_type node_type = {.name = "Node",
                                    .size = sizeof(struct widget),
                                    .flags = WREF_TYPE_WEAKREFABLE,
                                    .traverse = victim_traverse_hangs};

static NOINLINE void victim_release_twice(void)
{
    wref_object *w = wref_new(&widget_type);
    VCHECK(w);
    wref_object *copy = w;
    OPAQUE(copy);
    wref_decref(w);
    wref_decref(copy);   /* a finding made before the signal: it must be on disk */
}

int main(int argc, char **argv)
{
    spin = argc > 1 && !strcmp(argv[1], "spin");
    VCHECK(wref_new(&node_type) != NULL);   /* leaked */
    victim_release_twice();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = program_alarm;
    sigemptyset(&sa.sa_mask);
    VCHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    if (!spin)
        alarm(1);
    raise(SIGTERM);
    return 0;   /* not reached */
}
