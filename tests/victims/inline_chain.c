/* inline_chain.c: a use-after-free reached through a chain of three functions that the
 * compiler inlines into each other at -O2 (victim_outer -> victim_middle -> victim_inner, each
 * static and called once), called from victim_entry. The report must show every level of the chain, each at
 * its own call-site line, as `addr2line -i` does; built at -O0 (no inlining) the same bug has
 * the same fingerprint. */
#include "victim.h"

static wref_object *saved;

static NOINLINE void victim_release_once(wref_object *ob)
{
    saved = ob;   /* a copy, not a reference */
    wref_decref(ob);
    OPAQUE(saved);   /* not a tail call: this frame stays on the destroyed stack */
}

static inline void victim_inner(void)
{
    wref_decref(saved);   /* BUG: already destroyed */
}

static inline void victim_middle(void)
{
    victim_inner();
    OPAQUE(saved);
}

static inline void victim_outer(void)
{
    victim_middle();
    OPAQUE(saved);
}

static NOINLINE void victim_entry(void)
{
    victim_outer();
    OPAQUE(saved);
}

int main(void)
{
    wref_object *w = wref_new(&widget_type);
    VCHECK(w);
    victim_release_once(w);
    victim_entry();
    return 0;
}
