/* dangling_borrow.c: a borrowed pointer (wref_get_object) used after its object died.
 * The bug: victim_lookup_borrowed() borrows, victim_drop_owner() drops the only strong
 * reference, victim_use_borrowed() increfs the stale borrowed pointer. */
#include "victim.h"

static NOINLINE wref_object *victim_lookup_borrowed(wref_object *ref)
{
    return wref_get_object(ref);   /* borrowed: nothing keeps it alive */
}

static NOINLINE void victim_drop_owner(wref_object *owner)
{
    wref_decref(owner);   /* the last strong reference: the object is destroyed */
}

static NOINLINE void victim_use_borrowed(wref_object *borrowed)
{
    wref_incref(borrowed);   /* BUG: borrowed pointer to a destroyed object */
}

int main(void)
{
    wref_object *w = wref_new(&widget_type);
    VCHECK(w);
    wref_object *ref = wref_ref_new(w, NULL);
    VCHECK(ref);
    wref_object *borrowed = victim_lookup_borrowed(ref);
    VCHECK(borrowed == w);
    victim_drop_owner(w);
    victim_use_borrowed(borrowed);
    wref_decref(ref);
    return 0;
}
