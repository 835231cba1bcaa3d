/* guard_clean.c: a correct program, run under guard=all by check_guard_log.py: one Widget with
 * a weakref, used and dropped, nothing wrong. With log_path set it must leave no log file
 * (there is nothing to say), while the checker proves itself active (verbosity=1: its "active"
 * line and statistics on stderr: 1 object created). */
#include "victim.h"

int main(void)
{
    struct widget *w = (struct widget *)wref_new(&widget_type);
    VCHECK(w);
    wref_object *ref = wref_ref_new(&w->ob_base, NULL);
    VCHECK(ref);
    w->payload = 7;
    wref_object *got = NULL;
    VCHECK(wref_get_ref(ref, &got) == 1 && got == &w->ob_base);
    wref_decref(got);
    wref_decref(&w->ob_base);
    VCHECK(wref_get_ref(ref, &got) == 0 && got == NULL);
    wref_decref(ref);
    printf("clean\n");
    return 0;
}
