/* uaf_guard.c: a raw read of a destroyed object's field through a stale pointer. With
 * WREF_CHECK_OPTIONS=guard=all every object has its own page, made inaccessible when the
 * object is destroyed, so the read faults: the checker's SIGSEGV handler reports a
 * use-after-free (module+offset frames) and the process dies by SIGSEGV. */
#include "victim.h"
#include "stale_read.h"

static NOINLINE void victim_destroy_guarded(wref_object *ob)
{
    wref_decref(ob);
}

int main(void)
{
    struct widget *w = (struct widget *)wref_new(&widget_type);
    VCHECK(w);
    w->payload = 7;
    victim_destroy_guarded(&w->ob_base);
    int v = victim_read_stale(w);
    printf("read %d\n", v);   /* reached only without guard pages */
    return 0;
}
