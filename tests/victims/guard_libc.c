/* guard_libc.c: under guard=all, a stale pointer into a destroyed object handed to printf:
 * the fault happens inside libc (its string scan, built without frame pointers). The fault
 * handler's stack must go from libc through the program's frames to main. */
#include "victim.h"

#include <string.h>

struct labelled {
    wref_object ob_base;
    char label[40];
};

static const wref_type labelled_type = {
    .name = "Labelled", .size = sizeof(struct labelled), .flags = WREF_TYPE_WEAKREFABLE};

static NOINLINE void victim_print_stale(const struct labelled *l)
{
    OPAQUE(l);
    printf("label: %s\n", l->label);   /* BUG: destroyed (libc faults under guard=all) */
    OPAQUE(l);
}

int main(void)
{
    struct labelled *l = (struct labelled *)wref_new(&labelled_type);
    VCHECK(l);
    strcpy(l->label, "stale");
    wref_decref(&l->ob_base);
    victim_print_stale(l);
    return 0;
}
