/* callback_never_ran.c: a weakref callback that can never run, because its referent leaked.
 * A subscription (weakref + callback) is kept for the program's life, and the object it
 * watches is never released; so the census reports the callback and the one leak behind it. */
#include "victim.h"

static wref_object *subscription;   /* weakref with a callback, released at the end */

static int on_widget_gone(wref_object *ref, void *data)
{
    (void)ref;
    (void)data;
    return 0;
}

static NOINLINE void victim_subscribe(wref_object *ob)
{
    wref_object *cb = wref_callback_new(on_widget_gone, NULL, NULL);
    VCHECK(cb);
    subscription = wref_ref_new(ob, cb);
    VCHECK(subscription);
    wref_decref(cb);
}

static NOINLINE wref_object *victim_make_watched(void)
{
    return wref_new(&widget_type);
}

int main(void)
{
    wref_object *w = victim_make_watched();
    VCHECK(w);
    victim_subscribe(w);
    (void)w;   /* BUG: the widget is never released, so the callback never runs */
    return 0;  /* subscription is still alive at exit too: the census sees it */
}
