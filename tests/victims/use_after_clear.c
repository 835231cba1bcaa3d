/* use_after_clear.c: a weakref callback tries to resurrect its dying referent through a
 * global pointer (wref_incref while the object's weakrefs are being cleared). */
#include "victim.h"

static wref_object *g_widget;      /* plain pointer to the widget, not a reference */
static wref_object *g_resurrected; /* where the callback wants to keep it */

static NOINLINE int victim_callback_resurrect(wref_object *ref, void *data)
{
    (void)ref;
    (void)data;
    wref_incref(g_widget);   /* BUG: the referent is being destroyed */
    g_resurrected = g_widget;
    return 0;
}

static NOINLINE void victim_drop_last(wref_object *ob)
{
    wref_decref(ob);
}

int main(void)
{
    g_widget = wref_new(&widget_type);
    VCHECK(g_widget);
    wref_object *cb = wref_callback_new(victim_callback_resurrect, NULL, NULL);
    VCHECK(cb);
    wref_object *ref = wref_ref_new(g_widget, cb);
    VCHECK(ref);
    wref_decref(cb);
    victim_drop_last(g_widget);   /* runs the callback */
    /* g_resurrected is stale: the runtime refused the incref; nothing more is done with it */
    wref_decref(ref);
    return 0;
}
