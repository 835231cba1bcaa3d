/* get_object_not_weakref.c: WREF_GET_OBJECT (no argument checks) on an object that is not a
 * weakref. The checker reports invalid-object and refuses: the call returns None without
 * reading the object as a weakref (it is smaller than one, and where a weakref keeps its
 * referent this Widget keeps its id: read as a pointer, 0x1234 would crash). */
#include "victim.h"

static NOINLINE wref_object *victim_get_object_of_widget(wref_object *not_a_ref)
{
    return WREF_GET_OBJECT(not_a_ref);   /* BUG: a Widget, not a weakref */
}

int main(void)
{
    wref_object *w = wref_new(&widget_type);
    VCHECK(w);
    ((struct widget *)w)->id = 0x1234;
    wref_object *got = victim_get_object_of_widget(w);
    VCHECK(got == wref_none());
    wref_decref(w);
    return 0;
}
