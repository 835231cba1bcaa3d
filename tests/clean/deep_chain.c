/* deep_chain.c: an ownership chain 100,000 objects deep (each link owns the next), every
 * link watched by a weakref whose callback allocates: it records the death in a new Event
 * object appended to a log. Dropping the head destroys the whole chain (iteratively, inside
 * the runtime) and runs every callback. */
#include "clean.h"

struct link {
    wref_object ob_base;
    wref_object *next;   /* strong */
    unsigned index;
};

static void link_destroy(wref_object *self)
{
    wref_xdecref(((struct link *)self)->next);
}

static int link_traverse(wref_object *self, wref_visit_fn visit, void *arg)
{
    struct link *l = (struct link *)self;
    return l->next ? visit(l->next, arg) : 0;
}

static const wref_type link_type = {.name = "Link", .size = sizeof(struct link),
                                    .flags = WREF_TYPE_WEAKREFABLE, .destroy = link_destroy,
                                    .traverse = link_traverse};

struct event {
    wref_object ob_base;
    wref_object *prev;   /* strong: the log is a chain of events too */
    unsigned long seq;
};

static void event_destroy(wref_object *self)
{
    wref_xdecref(((struct event *)self)->prev);
}

static int event_traverse(wref_object *self, wref_visit_fn visit, void *arg)
{
    struct event *e = (struct event *)self;
    return e->prev ? visit(e->prev, arg) : 0;
}

static const wref_type event_type = {.name = "Event", .size = sizeof(struct event),
                                     .destroy = event_destroy, .traverse = event_traverse};

static struct {
    wref_object *last;   /* owned: newest event */
    unsigned long n;
} log_;

static int link_died(wref_object *ref, void *data)
{
    (void)ref, (void)data;
    struct event *e = (struct event *)wref_new(&event_type);   /* allocates during destruction */
    if (!e)
        return -1;
    e->seq = ++log_.n;
    e->prev = log_.last;
    log_.last = &e->ob_base;
    return 0;
}

int main(void)
{
    long depth = env_long("CLEAN_DEPTH", 100000);
    wref_object *cb = wref_callback_new(link_died, NULL, NULL);
    CHECK(cb);
    wref_object **refs = calloc((size_t)depth, sizeof *refs);
    CHECK(refs);
    wref_object *head = NULL;
    for (long i = depth - 1; i >= 0; i--) {
        struct link *l = (struct link *)wref_new(&link_type);
        CHECK(l);
        l->index = (unsigned)i;
        l->next = head;   /* the new link takes our reference to the old head */
        head = &l->ob_base;
        refs[i] = wref_ref_new(head, cb);
        CHECK(refs[i]);
    }
    wref_decref(cb);   /* the weakrefs hold it */
    wref_decref(head); /* the whole chain dies; every callback runs */
    CHECK(log_.n == (unsigned long)depth);
    for (long i = 0; i < depth; i++) {
        wref_object *ob;
        CHECK(wref_get_ref(refs[i], &ob) == 0);
        wref_decref(refs[i]);
    }
    free(refs);
    wref_decref(log_.last);   /* the event log is a chain too: dropped in one go */
    printf("deep_chain: %ld links destroyed, %lu events logged\n", depth, log_.n);
    return 0;
}
