/* callback_suppressed.h: the one bug of callback_suppressed.c, which
 * callback_suppressed_unlocked.c makes too: a weakref with a callback (victim_watch), then
 * wref_clear_weakrefs_no_callbacks on its live referent (victim_silence_weakrefs): the
 * callback stays attached and will never run. Include after victim.h. */
#ifndef WREF_VICTIM_CALLBACK_SUPPRESSED_H
#define WREF_VICTIM_CALLBACK_SUPPRESSED_H

static int on_gone(wref_object *ref, void *data)
{
    (void)ref;
    (void)data;
    return 0;
}

static NOINLINE wref_object *victim_watch(wref_object *ob)
{
    wref_object *cb = wref_callback_new(on_gone, NULL, NULL);
    VCHECK(cb);
    wref_object *ref = wref_ref_new(ob, cb);
    VCHECK(ref);
    wref_decref(cb);
    return ref;
}

static NOINLINE void victim_silence_weakrefs(wref_object *ob)
{
    wref_clear_weakrefs_no_callbacks(ob);   /* BUG: the watcher is never told */
}

#endif
