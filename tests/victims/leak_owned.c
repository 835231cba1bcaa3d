/* leak_owned.c: leaks that keep other objects alive, for suppressions (issue 11: suppressing a
 * direct leak also suppresses what only it keeps alive; --gen-suppressions proposes the
 * narrowest entry, type and function together).
 *   - a reference cycle Node#1 <-> Node#2; Node#1 also owns a Payload (indirect);
 *   - a Document made by document_new that owns two Pages (indirect), never released;
 *   - another Document, made by cache_new (same type, another function), with two Pages.
 * Each object owns what it points to and reports it from traverse. */
#include "victim.h"

struct node {
    wref_object ob_base;
    wref_object *kids[2];   /* strong */
};

static void node_destroy(wref_object *self)
{
    struct node *n = (struct node *)self;
    wref_xdecref(n->kids[0]);
    wref_xdecref(n->kids[1]);
}

static int node_traverse(wref_object *self, wref_visit_fn visit, void *arg)
{
    struct node *n = (struct node *)self;
    for (int i = 0; i < 2; i++)
        if (n->kids[i] && visit(n->kids[i], arg))
            return 1;
    return 0;
}

#define TYPE(var, name_) \
    static const wref_type var = {.name = name_, .size = sizeof(struct node), .destroy = node_destroy, \
                                  .traverse = node_traverse}
TYPE(node_type, "Node");
TYPE(payload_type, "Payload");
TYPE(document_type, "Document");
TYPE(page_type, "Page");

/* a macro, not a helper: each leak's top frame is the function that made it */
#define MAKE(var, type)                \
    wref_object *var = wref_new(type); \
    VCHECK(var)

static NOINLINE void make_cycle(void)
{
    MAKE(a, &node_type);
    MAKE(b, &node_type);
    MAKE(payload, &payload_type);
    ((struct node *)a)->kids[0] = b;   /* a takes b's reference */
    ((struct node *)a)->kids[1] = payload;
    wref_incref(a);
    ((struct node *)b)->kids[0] = a;   /* BUG: a owns b owns a */
    wref_decref(a);
}

static NOINLINE wref_object *with_pages(wref_object *doc)
{
    int n = 2;
    OPAQUE(n);   /* not unrolled: both pages are made at one call site */
    for (int i = 0; i < n; i++) {
        MAKE(page, &page_type);
        ((struct node *)doc)->kids[i] = page;
    }
    return doc;
}

static NOINLINE wref_object *document_new(void)
{
    MAKE(doc, &document_type);
    return with_pages(doc);
}

static NOINLINE wref_object *cache_new(void)
{
    MAKE(doc, &document_type);
    return with_pages(doc);
}

int main(void)
{
    make_cycle();
    wref_object *doc = document_new();   /* BUG: never released */
    wref_object *cache = cache_new();    /* BUG: never released */
    OPAQUE(doc);
    OPAQUE(cache);
    return 0;
}
