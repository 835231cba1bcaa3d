/* dangling_borrow_thread.c: thread T1 borrows an object through wref_get_object, thread T2
 * drops the last strong reference, then T1 uses its borrowed pointer. Joins and a barrier fix
 * the order: borrow, (barrier), drop, (join), use. */
#include "victim.h"

#include <pthread.h>

static wref_object *owner;          /* the only strong reference; dropped by the dropper */
static wref_object *shared_ref;     /* weakref to it */
static pthread_barrier_t borrowed_barrier, dropped_barrier;

static NOINLINE wref_object *victim_thread_lookup_borrowed(wref_object *ref)
{
    return wref_get_object(ref);
}

static NOINLINE void victim_thread_use_borrowed(wref_object *borrowed)
{
    wref_incref(borrowed);   /* BUG: another thread destroyed it meanwhile */
}

static void *borrower(void *arg)
{
    (void)arg;
    wref_object *borrowed = victim_thread_lookup_borrowed(shared_ref);
    VCHECK(borrowed == owner);
    pthread_barrier_wait(&borrowed_barrier);   /* let the dropper run */
    pthread_barrier_wait(&dropped_barrier);    /* the object is gone now */
    victim_thread_use_borrowed(borrowed);
    return NULL;
}

static NOINLINE void victim_thread_drop_owner(void)
{
    wref_decref(owner);
}

static void *dropper(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&borrowed_barrier);
    victim_thread_drop_owner();
    pthread_barrier_wait(&dropped_barrier);
    return NULL;
}

int main(void)
{
    owner = wref_new(&widget_type);
    VCHECK(owner);
    shared_ref = wref_ref_new(owner, NULL);
    VCHECK(shared_ref);
    pthread_barrier_init(&borrowed_barrier, NULL, 2);
    pthread_barrier_init(&dropped_barrier, NULL, 2);
    pthread_t t1, t2;
    VCHECK(pthread_create(&t1, NULL, borrower, NULL) == 0);
    VCHECK(pthread_create(&t2, NULL, dropper, NULL) == 0);
    pthread_join(t2, NULL);
    pthread_join(t1, NULL);
    pthread_barrier_destroy(&borrowed_barrier);
    pthread_barrier_destroy(&dropped_barrier);
    wref_decref(shared_ref);
    return 0;
}
