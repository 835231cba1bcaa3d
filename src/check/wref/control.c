/* control.c: the checker's control API for wref programs (include/wref/check.h); the release
 * library's no-op versions are src/runtime/check_stub.c. */
#include "../engine/borrow.h"
#include "../engine/census.h"
#include "../engine/checker.h"
#include "../engine/report.h"
#include "wref/check.h"

#include <stdint.h>

int wref_check_active(void)
{
    return 1;
}

size_t wref_check_leaks(void)
{
    wref__checker_init();
    return wref__census(NULL);
}

size_t wref_check_findings(void)
{
    return wref__report_count();
}

void wref_check_borrow_end(wref_object *ob)
{
    if (ob)
        wref__borrow_end((uintptr_t)ob);
}
