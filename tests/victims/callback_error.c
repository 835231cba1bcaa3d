/* callback_error.c: a weakref callback that fails (returns -1 with an error set) when its
 * referent dies. The runtime passes the error to the unraisable hook; the checker reports it. */
#include "victim.h"

static NOINLINE int victim_failing_callback(wref_object *ref, void *data)
{
    (void)ref;
    (void)data;
    wref_err_set(WREF_ERR_RUNTIME, "cache index is corrupt");   /* BUG: nobody can handle it */
    return -1;
}

static NOINLINE wref_object *victim_register(wref_object *ob)
{
    wref_object *cb = wref_callback_new(victim_failing_callback, NULL, NULL);
    VCHECK(cb);
    wref_object *ref = wref_ref_new(ob, cb);
    VCHECK(ref);
    wref_decref(cb);
    return ref;
}

static void quiet_hook(wref_error kind, const char *message, wref_object *obj, void *arg)
{
    (void)kind, (void)message, (void)obj, (void)arg;
}

static NOINLINE void victim_drop_referent(wref_object *ob)
{
    wref_decref(ob);
}

int main(void)
{
    wref_set_unraisable_hook(quiet_hook, NULL);   /* only the checker's report on stderr */
    wref_object *w = wref_new(&widget_type);
    VCHECK(w);
    wref_object *ref = victim_register(w);
    victim_drop_referent(w);
    wref_decref(ref);
    return 0;
}
