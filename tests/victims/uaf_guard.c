/* uaf_guard.c: a raw read of a destroyed object's field through a stale pointer. With
 * WREF_CHECK_OPTIONS=guard=all every object has its own page, made inaccessible when the
 * object is destroyed, so the read faults: the checker's SIGSEGV handler reports a
 * use-after-free (module+offset frames) and the process dies by SIGSEGV. */
#include "victim.h"

static NOINLINE void victim_destroy_guarded(wref_object *ob)
{
    wref_decref(ob);
}

static NOINLINE void victim_log_value(int v)
{
    __asm__ volatile("" : : "r"(v));
}

/* Not a leaf (it calls victim_log_value): gcc gives leaf functions no frame even with
 * -fno-omit-frame-pointer, and the fault handler's frame-pointer walk would then skip the
 * caller (main) of the faulting function. */
__attribute__((no_sanitize("address"))) static NOINLINE int victim_read_stale(const struct widget *w)
{
    OPAQUE(w);
    int v = *(volatile const int *)&w->payload;   /* BUG: destroyed (faults under guard=all) */
    victim_log_value(v);
    return v;
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
