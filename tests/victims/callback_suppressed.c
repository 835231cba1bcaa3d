/* callback_suppressed.c: wref_clear_weakrefs_no_callbacks on a live object whose weakref has
 * a callback: the callback stays attached and will never run. */
#include "victim.h"

static int on_gone(wref_object *ref, void *data)
{
    (void)ref;
    (void)data;
    return 0;
}

static NOINLINE wref_object *victim_watch(wref_object *ob)
{
    wref_object *cb = wref_callback_new(on_gone, NULL, NULL);
    VCHECK(cb);
    wref_object *ref = wref_ref_new(ob, cb);
    VCHECK(ref);
    wref_decref(cb);
    return ref;
}

static NOINLINE void victim_silence_weakrefs(wref_object *ob)
{
    wref_clear_weakrefs_no_callbacks(ob);   /* BUG: the watcher is never told */
}

int main(void)
{
    wref_object *w = wref_new(&widget_type);
    VCHECK(w);
    wref_object *ref = victim_watch(w);
    victim_silence_weakrefs(w);
    wref_decref(w);
    wref_decref(ref);
    return 0;
}
