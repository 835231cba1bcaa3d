/* cleared_elsewhere.c: a worker thread (T1) clears an object's weakrefs without callbacks;
 * the main thread (T0) later drops its last reference and then uses it. The use-after-free
 * names the thread of each stack: weakrefs cleared by T1, destroyed and created by T0. */
#include "victim.h"

#include <pthread.h>

static NOINLINE void victim_clear_elsewhere(wref_object *ob)
{
    wref_clear_weakrefs_no_callbacks(ob);
}

static void *worker(void *arg)
{
    victim_clear_elsewhere(arg);
    return NULL;
}

static NOINLINE void victim_cleared_drop(wref_object *ob)
{
    wref_decref(ob);
}

static NOINLINE void victim_cleared_use(wref_object *ob)
{
    wref_incref(ob);   /* BUG: destroyed just before */
}

int main(void)
{
    wref_object *w = wref_new(&widget_type);
    VCHECK(w);
    wref_object *ref = wref_ref_new(w, NULL);
    VCHECK(ref);
    pthread_t t;
    VCHECK(pthread_create(&t, NULL, worker, w) == 0);
    pthread_join(t, NULL);
    victim_cleared_drop(w);
    victim_cleared_use(w);
    wref_decref(ref);
    return 0;
}
