/* model.c: the object model the engine's records belong to (model.h). */
#include "model.h"

#include <stddef.h>

static const char *no_type_name(const void *type)
{
    (void)type;
    return "?";
}

static const wref__model no_model = {.type_name = no_type_name};
static const wref__model *model;   /* atomic: set once at start-up, read from any thread */

void wref__model_set(const wref__model *m)
{
    __atomic_store_n(&model, m, __ATOMIC_RELEASE);
}

const wref__model *wref__model_get(void)
{
    const wref__model *m = __atomic_load_n(&model, __ATOMIC_ACQUIRE);
    return m ? m : &no_model;
}
