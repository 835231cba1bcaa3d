/* leak.c: a two-node reference cycle (Node#1 -> Node#2 -> Node#1) nobody frees. Each node
 * owns its `next` and reports it from traverse, so the census names the cycle. */
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

static NOINLINE wref_object *victim_make_node(void)
{
    return wref_new(&node_type);
}

static NOINLINE void victim_link_cycle(wref_object *a, wref_object *b)
{
    wref_incref(b);
    ((struct node *)a)->next = b;
    wref_incref(a);
    ((struct node *)b)->next = a;   /* BUG: a owns b owns a */
}

int main(void)
{
    wref_object *a = victim_make_node(), *b = victim_make_node();
    VCHECK(a && b);
    victim_link_cycle(a, b);
    wref_decref(a);
    wref_decref(b);   /* each still holds the other */
    return 0;
}
