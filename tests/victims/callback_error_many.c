/* callback_error_many.c: one broken callback registered on five objects. Each object's death
 * runs it and it fails five times; the checker reports one callback-error, named after the
 * callback (its function and where it was created), and the runtime prints no "exception
 * ignored" line of its own next to it (no unraisable hook is installed here). */
#include "victim.h"

static NOINLINE int victim_broken_callback(wref_object *ref, void *data)
{
    (void)ref;
    (void)data;
    wref_err_set(WREF_ERR_RUNTIME, "index out of date");   /* BUG: fails on every object */
    return -1;
}

static NOINLINE wref_object *victim_make_callback(void)
{
    wref_object *cb = wref_callback_new(victim_broken_callback, NULL, NULL);
    VCHECK(cb);
    return cb;
}

int main(void)
{
    wref_object *cb = victim_make_callback();
    wref_object *obs[5], *refs[5];
    for (int i = 0; i < 5; i++) {
        obs[i] = wref_new(&widget_type);
        VCHECK(obs[i]);
        refs[i] = wref_ref_new(obs[i], cb);
        VCHECK(refs[i]);
    }
    wref_decref(cb);   /* the weakrefs hold it */
    for (int i = 0; i < 5; i++)
        wref_decref(obs[i]);   /* the callback fails each time */
    for (int i = 0; i < 5; i++)
        wref_decref(refs[i]);
    return 0;
}
