/* borrow_reuse.c: run with quarantine_mb=0. The thread borrows X, X dies, a new object Y of
 * the same size is created (with no quarantine, the allocator would hand Y X's memory), then
 * the stale borrowed pointer is used. While a borrow of X is open its memory is kept, so the
 * use is a dangling-borrow on X, refused, and Y is untouched: its count stays 1. */
#include "victim.h"

static NOINLINE wref_object *victim_reuse_borrow(wref_object *ref)
{
    return wref_get_object(ref);
}

static NOINLINE void victim_reuse_use_stale(wref_object *stale)
{
    wref_incref(stale);   /* BUG: X is dead; this pointer is not Y */
}

static NOINLINE void victim_reuse_drop(wref_object *owner)
{
    wref_decref(owner);
}

int main(void)
{
    wref_object *x = wref_new(&widget_type);
    VCHECK(x);
    wref_object *rx = wref_ref_new(x, NULL);
    VCHECK(rx);
    wref_object *stale = victim_reuse_borrow(rx);
    VCHECK(stale == x);
    victim_reuse_drop(x);
    wref_object *y = wref_new(&widget_type);
    VCHECK(y);
    victim_reuse_use_stale(stale);
    VCHECK(wref_refcount(y) == 1);   /* the refused incref did not land on Y */
    wref_decref(y);
    wref_decref(rx);
    return 0;
}
