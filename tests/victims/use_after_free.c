/* use_after_free.c: an object released twice through a saved (non-borrowed) pointer.
 * victim_save_pointer() keeps a plain copy of the owner's pointer; victim_release_once()
 * drops the only reference; victim_release_again() drops it again through the copy. */
#include "victim.h"

static wref_object *saved;

static NOINLINE void victim_save_pointer(wref_object *ob)
{
    saved = ob;   /* a copy, not a reference */
}

static NOINLINE void victim_release_once(wref_object *ob)
{
    wref_decref(ob);
}

static NOINLINE void victim_release_again(void)
{
    wref_decref(saved);   /* BUG: already destroyed */
}

int main(void)
{
    wref_object *w = wref_new(&widget_type);
    VCHECK(w);
    victim_save_pointer(w);
    victim_release_once(w);
    victim_release_again();
    return 0;
}
