/* write_after_free.c: a write through a stale raw pointer into a destroyed object, found at
 * exit while the object waits in the quarantine. The checker keeps the memory allocated (the
 * quarantine), so AddressSanitizer would not see it; the writer is excluded from ASan
 * instrumentation anyway. */
#include "victim.h"

static NOINLINE struct widget *victim_keep_raw(wref_object *ob)
{
    return (struct widget *)ob;
}

static NOINLINE void victim_destroy_widget(wref_object *ob)
{
    wref_decref(ob);
}

__attribute__((no_sanitize("address"))) static NOINLINE void victim_write_stale(struct widget *w)
{
    OPAQUE(w);
    w->payload = ~w->payload;   /* BUG: destroyed (each byte changes, whatever poison it held) */
}

int main(void)
{
    wref_object *ob = wref_new(&widget_type);
    VCHECK(ob);
    struct widget *raw = victim_keep_raw(ob);
    victim_destroy_widget(ob);
    victim_write_stale(raw);
    return 0;
}
