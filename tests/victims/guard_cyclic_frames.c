/* guard_cyclic_frames.c: a guard-page fault taken with a frame pointer that leads into a cycle
 * (two frame records, each the other's saved frame pointer, both returning into main). The fault handler's stack walk must
 * end anyway (issue 10: "the frame walk is bounded"): one use-after-free report, at most
 * stack_depth frames, then death by SIGSEGV. check_bounded_walk.py asserts it. x86-64 only
 * (the read runs with rbp pointing at the cycle). */
#include "victim.h"

#include <stdint.h>

struct frame_record {
    struct frame_record *next;   /* the caller's saved frame pointer: here, the other record */
    void *ret;                   /* the return address */
};

static struct frame_record cycle[2];

/* Reads a byte at p with rbp pointing at the cycle (below the red zone, so that nothing of the
 * compiler's is overwritten), then puts rbp back. */
static NOINLINE int victim_read_with_cyclic_frames(const volatile unsigned char *p)
{
    cycle[0] = (struct frame_record){&cycle[1], __builtin_return_address(0)};
    cycle[1] = (struct frame_record){&cycle[0], __builtin_return_address(0)};
    int v;
    __asm__ volatile("lea -128(%%rsp), %%rsp\n\t"
                     "push %%rbp\n\t"
                     "mov %2, %%rbp\n\t"
                     "movzbl (%1), %0\n\t"   /* BUG: p is a destroyed object's (guarded) memory */
                     "pop %%rbp\n\t"
                     "lea 128(%%rsp), %%rsp"
                     : "=&r"(v)
                     : "r"(p), "r"(&cycle[0])
                     : "memory");
    return v;
}

int main(void)
{
    wref_object *w = wref_new(&widget_type);
    VCHECK(w);
    const volatile unsigned char *stale = (const volatile unsigned char *)w + 16;
    wref_decref(w);   /* guard=all: its page is now inaccessible */
    int v = victim_read_with_cyclic_frames(stale);
    printf("read %d\n", v);   /* reached only without guard pages */
    return 0;
}
