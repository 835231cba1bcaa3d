/* borrow_other_thread.c: the main thread (T0) borrows an object through wref_get_object and
 * hands the borrowed pointer to a worker (T1); T0 then drops the object's last reference, and
 * T1 uses the pointer. The finding is a dangling-borrow naming both threads: borrowed by T0,
 * used by T1. A barrier and a join fix the order: borrow, hand over, drop, use. */
#include "victim.h"

#include <pthread.h>

static wref_object *handed;   /* the borrowed pointer, handed to the worker */
static pthread_barrier_t dropped;

static NOINLINE wref_object *victim_handoff_borrow(wref_object *ref)
{
    return wref_get_object(ref);
}

static NOINLINE void victim_handoff_use(wref_object *borrowed)
{
    wref_incref(borrowed);   /* BUG: the object died on the main thread */
}

static void *worker(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&dropped);
    victim_handoff_use(handed);
    return NULL;
}

static NOINLINE void victim_handoff_drop(wref_object *owner)
{
    wref_decref(owner);
}

int main(void)
{
    wref_object *owner = wref_new(&widget_type);
    VCHECK(owner);
    wref_object *ref = wref_ref_new(owner, NULL);
    VCHECK(ref);
    handed = victim_handoff_borrow(ref);
    VCHECK(handed == owner);
    pthread_barrier_init(&dropped, NULL, 2);
    pthread_t t;
    VCHECK(pthread_create(&t, NULL, worker, NULL) == 0);
    victim_handoff_drop(owner);
    pthread_barrier_wait(&dropped);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&dropped);
    wref_decref(ref);
    return 0;
}
