/* model.c: the wref runtime's object model as the engine sees it (engine/model.h): a record's
 * type token is the object's `const wref_type *`; its name, its children (the type's traverse
 * function) and what a weak reference points at come from the runtime's structures. Also
 * the heap's allocator backend: the runtime's configured allocator (wref_set_allocator). Both
 * are set from a constructor, before any object exists. */
#include "../engine/heap.h"
#include "../engine/model.h"
#include "../../runtime/internal.h"

static const char *type_name(const void *type)
{
    const wref_type *t = type;
    return t && t->name ? t->name : "?";
}

struct visit_adapter {
    int (*visit)(uintptr_t child, void *ctx);
    void *ctx;
};

static int visit_object(wref_object *child, void *arg)
{
    struct visit_adapter *a = arg;
    return child ? a->visit((uintptr_t)child, a->ctx) : 0;
}

static void children(uintptr_t addr, const void *type, int (*visit)(uintptr_t child, void *ctx), void *ctx)
{
    const wref_type *t = type;
    if (t && t->traverse) {
        struct visit_adapter a = {visit, ctx};
        t->traverse((wref_object *)addr, visit_object, &a);
    }
}

/* The referent and callback fields are read under the weakref's stripe lock. */
static bool weak(uintptr_t addr, const void *type, uintptr_t *referent, bool *callback)
{
    if (!wref__is_weakref_type(type))
        return false;
    wref__weakref *w = (wref__weakref *)addr;
    wref__lock(w->stripe);
    wref_object *cb = w->callback, *ref = w->referent;
    wref__unlock(w->stripe);
    *referent = (uintptr_t)ref;
    *callback = cb != NULL;
    return true;
}

static const wref__model wref_model = {.type_name = type_name, .children = children, .weak = weak};
static const wref__heap_backend runtime_allocator = {.alloc = wref__mem_alloc, .free = wref__mem_free};

__attribute__((constructor)) static void wref_model_install(void)
{
    wref__model_set(&wref_model);
    wref__heap_set_backend(&runtime_allocator);
}
