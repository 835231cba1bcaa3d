/* invalid_object.c: a struct wref never allocated, passed to the API as an object. */
#include "victim.h"

static struct widget on_stack_like;   /* statically allocated: wref never saw it */

static NOINLINE void victim_pass_foreign(void)
{
    wref_object *fake = (wref_object *)&on_stack_like;
    OPAQUE(fake);
    wref_incref(fake);   /* BUG: not a wref object */
}

int main(void)
{
    victim_pass_foreign();
    return 0;
}
