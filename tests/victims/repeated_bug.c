/* repeated_bug.c: one bug that happens on many objects (valgrind's "N errors from 1 context").
 * victim_release_twice() releases a Widget a second time through a saved copy of its pointer:
 * called in a loop on 1000 Widgets, it is 1000 use-after-free findings with the same stacks,
 * of which the checker prints the first and counts the 999 others (fold_repeats=1), although
 * the first capture of a path may hold the C library's start-up frames below
 * __libc_start_call_main that later captures leave out. The same bug reached from another line
 * of main has other stacks: printed in full. And three
 * two-node cycles made by one loop are three leaks with the same "created" stack: one printed,
 * two folded. Argument: how many Widgets the loop releases twice (default 1000). */
#include "victim.h"

struct node {
    wref_object ob_base;
    wref_object *next;   /* strong */
};

static void node_destroy(wref_object *self)
{
    wref_xdecref(((struct node *)self)->next);
}

static int node_traverse(wref_object *self, wref_visit_fn visit, void *arg)
{
    struct node *n = (struct node *)self;
    return n->next ? visit(n->next, arg) : 0;
}

static const wref_type node_type = {.name = "Node", .size = sizeof(struct node),
                                    .destroy = node_destroy, .traverse = node_traverse};

static NOINLINE void victim_release_twice(wref_object *ob)
{
    wref_object *saved = ob;   /* a copy, not a reference */
    OPAQUE(saved);
    wref_decref(ob);
    wref_decref(saved);   /* BUG: already destroyed */
}

static NOINLINE void victim_leak_cycle(void)
{
    wref_object *a = wref_new(&node_type), *b = wref_new(&node_type);
    VCHECK(a && b);
    ((struct node *)a)->next = b;   /* a owns b (the reference from wref_new) */
    ((struct node *)b)->next = a;   /* BUG: b owns a, and nothing else ever releases either */
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000, cycles = 3;
    OPAQUE(cycles);   /* a loop, not three call sites */
    for (int i = 0; i < n; i++)
        victim_release_twice(wref_new(&widget_type));
    victim_release_twice(wref_new(&widget_type));   /* another call site: other stacks */
    for (int i = 0; i < cycles; i++)
        victim_leak_cycle();
    return 0;
}
