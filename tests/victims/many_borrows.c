/* many_borrows.c: one thread keeps 500 borrows open (wref_get_object on 500 live objects),
 * then the object it borrowed first (one from the middle of the allocation sequence, so that
 * its address is in step with the others') dies and the thread uses that old borrowed pointer.
 * However many borrows a thread holds, the misuse of any of them is a dangling-borrow (not a
 * use-after-free that has forgotten the borrow). */
#include "victim.h"

#define N 500

static NOINLINE wref_object *victim_many_borrow(wref_object *ref)
{
    return wref_get_object(ref);
}

static NOINLINE void victim_many_use_oldest(wref_object *borrowed)
{
    wref_incref(borrowed);   /* BUG: its object was destroyed after the borrow */
}

static NOINLINE void victim_many_drop(wref_object *owner)
{
    wref_decref(owner);
}

int main(void)
{
    static wref_object *owner[N], *ref[N], *borrowed[N];
    for (int i = 0; i < N; i++) {
        owner[i] = wref_new(&widget_type);
        VCHECK(owner[i]);
        ref[i] = wref_ref_new(owner[i], NULL);
        VCHECK(ref[i]);
    }
    enum { OLDEST = N / 2 };
    borrowed[OLDEST] = victim_many_borrow(ref[OLDEST]);
    for (int i = 0; i < N; i++) {
        if (i != OLDEST)
            borrowed[i] = victim_many_borrow(ref[i]);
        VCHECK(borrowed[i] == owner[i]);
    }
    victim_many_drop(owner[OLDEST]);   /* the oldest borrow now dangles */
    victim_many_use_oldest(borrowed[OLDEST]);
    for (int i = 0; i < N; i++)
        if (i != OLDEST)
            wref_decref(owner[i]);
    for (int i = 0; i < N; i++)
        wref_decref(ref[i]);
    return 0;
}
