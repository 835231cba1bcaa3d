/* poisoned_pointer.c: in the default mode (no guard pages), a program reads a pointer field out
 * of a destroyed object and follows it. The checker poisons a destroyed object's words with
 * pointers into an inaccessible region that name the object, so following one faults there:
 * a use-after-free report naming the Holder, with its destroyed and created stacks, then the
 * program's own SIGSEGV handler (installed after the checker) runs and exits 42.
 * With an argument N, N Fillers are destroyed first (poison_slots_reused.expect: with
 * poison_slots=16 and N=64 every slot has been taken and recycled before the Holder's). */
#include "victim.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct holder {
    wref_object ob_base;
    int *counter;          /* pointer-sized, aligned: poisoned with a poison pointer */
    int spare;
};

static const wref_type holder_type = {
    .name = "Holder", .size = sizeof(struct holder), .flags = WREF_TYPE_WEAKREFABLE};
static const wref_type filler_type = {.name = "Filler", .size = sizeof(struct holder)};

static void program_handler(int sig)
{
    (void)sig;
    static const char msg[] = "program's SIGSEGV handler ran\n";
    (void)!write(1, msg, sizeof msg - 1);
    _exit(42);
}

static NOINLINE void victim_destroy_holder(wref_object *ob)
{
    wref_decref(ob);
    OPAQUE(ob);
}

__attribute__((no_sanitize("address"))) static NOINLINE int victim_follow_stale(struct holder *h)
{
    OPAQUE(h);
    int *p = *(int *volatile *)&h->counter;   /* reads the poison: no fault yet */
    OPAQUE(p);
    return *p;                                /* BUG: follows it (faults in the poison region) */
}

int main(int argc, char **argv)
{
    static int count = 7;
    for (int i = argc > 1 ? atoi(argv[1]) : 0; i > 0; i--) {
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
    victim_destroy_holder(&h->ob_base);
    printf("count %d\n", victim_follow_stale(h));   /* reached only without poison pointers */
    return 0;
}
