/* callback_suppressed.c: wref_clear_weakrefs_no_callbacks on a live object whose weakref has
 * a callback: the callback stays attached and will never run. */
#include "victim.h"
#include "callback_suppressed.h"

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
