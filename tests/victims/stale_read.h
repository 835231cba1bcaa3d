/* stale_read.h: the raw read through a stale pointer that the guard-page victims share
 * (uaf_guard.c, uaf_guard_user_handler.c, guard_recover.c). Include after victim.h. */
#ifndef WREF_VICTIM_STALE_READ_H
#define WREF_VICTIM_STALE_READ_H

static NOINLINE void victim_log_value(int v)
{
    __asm__ volatile("" : : "r"(v));
}

/* Not a leaf (it calls victim_log_value): gcc gives leaf functions no frame even with
 * -fno-omit-frame-pointer, and the fault handler's frame-pointer walk would then skip the
 * caller (main) of the faulting function. */
__attribute__((no_sanitize("address"))) static NOINLINE int victim_read_stale(const struct widget *w)
{
    OPAQUE(w);
    int v = *(volatile const int *)&w->payload;   /* BUG: destroyed (faults under guard=all) */
    victim_log_value(v);
    return v;
}

#endif
