/* guard_leaf.c: under guard=all, a stale read in a leaf function (no frame of its own, no
 * call): the fault handler's stack must still name its caller and main (a frame-pointer walk
 * from the fault stops, or skips the caller, because the leaf never pushed a frame). */
#include "victim.h"

__attribute__((no_sanitize("address"))) static NOINLINE int victim_leaf_read(const struct widget *w)
{
    return *(volatile const int *)&w->payload;   /* BUG: destroyed (faults under guard=all) */
}

static NOINLINE int victim_leaf_caller(struct widget *w)
{
    OPAQUE(w);
    int v = victim_leaf_read(w);
    OPAQUE(v);
    return v;
}

int main(void)
{
    struct widget *w = (struct widget *)wref_new(&widget_type);
    VCHECK(w);
    wref_decref(&w->ob_base);
    printf("read %d\n", victim_leaf_caller(w));   /* reached only without guard pages */
    return 0;
}
