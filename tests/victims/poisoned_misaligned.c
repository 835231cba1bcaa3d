/* poisoned_misaligned.c: in the default mode (no guard pages), a program reads a pointer out of
 * a destroyed object at an offset that is not a multiple of 8 (a packed, wire-format field) and
 * follows it.
 * The 8 bytes it reads are the halves of two poison pointers (poison.h), a value with its
 * bytes rotated, which on x86-64 is a non-canonical address: the CPU raises a general-
 * protection fault and the kernel gives no fault address (si_addr 0, si_code SI_KERNEL). The
 * checker finds the poison in the faulting instruction's base register, undoes the rotation,
 * and reports a use-after-free naming the Record with its destroyed and created stacks; then
 * the program's own SIGSEGV handler (installed after the checker) runs and exits 42. */
#include "victim.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

struct record {
    wref_object ob_base;
    unsigned char wire[16];   /* a packed layout: a 4-byte tag, then a pointer at offset 4 */
};

#define COUNTER_AT 4

static const wref_type record_type = {
    .name = "Record", .size = sizeof(struct record), .flags = WREF_TYPE_WEAKREFABLE};

static void program_handler(int sig)
{
    (void)sig;
    static const char msg[] = "program's SIGSEGV handler ran\n";
    (void)!write(1, msg, sizeof msg - 1);
    _exit(42);
}

static NOINLINE void victim_destroy_record(wref_object *ob)
{
    wref_decref(ob);
    OPAQUE(ob);
}

static NOINLINE void victim_log_value(int v)
{
    __asm__ volatile("" : : "r"(v));
}

/* Not a leaf (it calls victim_log_value), so that its frame is complete in every tree. */
__attribute__((no_sanitize("address", "thread"))) static NOINLINE int victim_follow_packed(struct record *r)
{
    OPAQUE(r);
    int *p;
    memcpy(&p, r->wire + COUNTER_AT, sizeof p);   /* reads the poison */
    OPAQUE(p);
    int v = *(volatile unsigned char *)p;   /* BUG: follows it (non-canonical on x86-64) */
    victim_log_value(v);
    return v;
}

int main(void)
{
    static int count = 7;
    struct record *r = (struct record *)wref_new(&record_type);
    VCHECK(r);
    int *c = &count;
    memcpy(r->wire + COUNTER_AT, &c, sizeof c);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = program_handler;
    sigemptyset(&sa.sa_mask);
    VCHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
    victim_destroy_record((wref_object *)r);
    printf("count %d\n", victim_follow_packed(r));   /* reached only without poison pointers */
    return 0;
}
