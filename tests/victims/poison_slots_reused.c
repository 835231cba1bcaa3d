/* poison_slots_reused.c: poison slots are recycled. Run with poison_slots=16: 64 Fillers are
 * destroyed first, so every slot has been taken and the oldest quarantined objects had to let
 * theirs go; the Holder destroyed last still gets a slot of its own. Following a pointer read
 * from its memory is a use-after-free naming Holder#65, as in poisoned_pointer.c; without
 * recycling its poison would be plain 0xDD, a fault at a non-canonical address with no report.
 * Then the program's own SIGSEGV handler exits 42. */
#include "victim.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

struct holder {
    wref_object ob_base;
    int *counter;          /* pointer-sized, aligned: poisoned with a poison pointer */
};

static const wref_type holder_type = {.name = "Holder", .size = sizeof(struct holder)};
static const wref_type filler_type = {.name = "Filler", .size = sizeof(struct holder)};

static void program_handler(int sig)
{
    (void)sig;
    static const char msg[] = "program's SIGSEGV handler ran\n";
    (void)!write(1, msg, sizeof msg - 1);
    _exit(42);
}

__attribute__((no_sanitize("address"))) static NOINLINE int victim_follow_stale(struct holder *h)
{
    OPAQUE(h);
    int *p = *(int *volatile *)&h->counter;   /* reads the poison: no fault yet */
    OPAQUE(p);
    return *p;                                /* BUG: follows it (faults in the poison region) */
}

int main(void)
{
    static int count = 7;
    for (int i = 0; i < 64; i++) {
        wref_object *f = wref_new(&filler_type);
        VCHECK(f);
        wref_decref(f);
    }
    struct holder *h = (struct holder *)wref_new(&holder_type);
    VCHECK(h);
    h->counter = &count;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = program_handler;
    sigemptyset(&sa.sa_mask);
    VCHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
    wref_decref(&h->ob_base);
    printf("count %d\n", victim_follow_stale(h));   /* reached only with plain 0xDD poison */
    return 0;
}
