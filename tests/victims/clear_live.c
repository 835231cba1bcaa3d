/* clear_live.c: wref_clear_weakrefs on an object that is still alive (count 1), twice: the
 * finding is made once per object, and each call is refused as in the release build. */
#include "victim.h"

static NOINLINE void victim_clear_live(wref_object *ob)
{
    wref_clear_weakrefs(ob);   /* BUG: only the object's destruction may do this */
    wref_err_clear();          /* the runtime refused with WREF_ERR_SYSTEM */
}

int main(void)
{
    wref_object *w = wref_new(&widget_type);
    VCHECK(w);
    wref_object *ref = wref_ref_new(w, NULL);
    VCHECK(ref);
    victim_clear_live(w);
    victim_clear_live(w);   /* the same bug again: no second finding */
    VCHECK(wref_weakref_count(w) == 1);   /* both calls refused */
    wref_decref(ref);
    wref_decref(w);
    return 0;
}
