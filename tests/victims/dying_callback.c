/* dying_callback.c: an object that is being destroyed registers itself, from its own destroy,
 * as the callback of a new weakref to another object. The weakref would keep a pointer to
 * memory that is freed right after destroy returns: the checker must report use-after-clear
 * and refuse the call (wref_ref_new fails), so nothing calls the freed callback later. */
#include "victim.h"

static wref_object *target;   /* lives on; its weakref would call the dead handler */
static wref_object *late_ref; /* what wref_ref_new returned from destroy */
static wref_error late_err;

static NOINLINE void victim_register_self(wref_object *self)
{
    late_ref = wref_ref_new(target, self);   /* BUG: self is being destroyed */
    late_err = wref_err_occurred();
    wref_err_clear();
}

static void handler_destroy(wref_object *self)
{
    victim_register_self(self);
}

static wref_object *handler_call(wref_object *self, wref_object *arg)
{
    (void)self;
    (void)arg;
    return wref_none();
}

static const wref_type handler_type = {.name = "Handler", .size = sizeof(struct widget),
                                       .flags = WREF_TYPE_WEAKREFABLE, .destroy = handler_destroy,
                                       .call = handler_call};

int main(void)
{
    target = wref_new(&widget_type);
    VCHECK(target);
    wref_object *h = wref_new(&handler_type);
    VCHECK(h);
    wref_decref(h);   /* destroy runs now and misuses h */
    VCHECK(late_ref == NULL && late_err == WREF_ERR_SYSTEM);   /* refused */
    VCHECK(wref_weakref_count(target) == 0);
    wref_decref(target);   /* would call the freed handler if the weakref existed */
    return 0;
}
