/* check_stub.c: the checker's control API in the release library: cheap no-ops, so code that
 * calls it links against either build (include/wref/check.h). */
#include "wref/check.h"

int wref_check_active(void)
{
    return 0;
}

size_t wref_check_leaks(void)
{
    return 0;
}

void wref_check_borrow_end(wref_object *ob)
{
    (void)ob;
}

size_t wref_check_findings(void)
{
    return 0;
}
