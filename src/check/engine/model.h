/* model.h: what the engine asks of the object model whose objects the registry records (the
 * wref runtime's frontend: wref/model.c). The engine never dereferences an object pointer or
 * a type token: a record holds its object's address and an opaque type token that the
 * frontend set when it made the record (registry.h), and whatever more the engine needs about
 * an object goes through these callbacks. One model per process (set at start-up, before the
 * first record); the CPython frontend keeps its own records and names its types in each
 * finding (finding.h, type_name), so it sets none. */
#ifndef WREF_CHECK_ENGINE_MODEL_H
#define WREF_CHECK_ENGINE_MODEL_H

#include <stdbool.h>
#include <stdint.h>

typedef struct wref__model {
    /* The name of a type token, never NULL ("?" when it has none). Async-signal-safe: the
     * fault handler names a guarded object's type with it. */
    const char *(*type_name)(const void *type);
    /* The leak census: calls visit(child, ctx) for each object the live object at addr (of
     * type `type`) holds a strong reference to. May run the program's code (wref: the type's
     * traverse function); called with no checker lock held. NULL: objects hold nothing. */
    void (*children)(uintptr_t addr, const void *type, int (*visit)(uintptr_t child, void *ctx), void *ctx);
    /* The leak census: true when the live object at addr is a weak reference; then *referent
     * is its referent (0 once cleared) and *callback whether it holds a callback. NULL: the
     * model has no weak references. */
    bool (*weak)(uintptr_t addr, const void *type, uintptr_t *referent, bool *callback);
} wref__model;

/* Sets the object model (a frontend, at start-up); m stays valid until exit. */
void wref__model_set(const wref__model *m);
/* The model set, or one that names every type "?" and has no children. Never NULL. */
const wref__model *wref__model_get(void);

static inline const char *wref__model_type_name(const void *type)
{
    return wref__model_get()->type_name(type);
}

#endif /* WREF_CHECK_ENGINE_MODEL_H */
