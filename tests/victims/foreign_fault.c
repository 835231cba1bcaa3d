/* foreign_fault.c: a SIGSEGV that is not the checker's: the program uses one Widget correctly,
 * then reads a PROT_NONE page of its own. The checker's handler runs, finds no object there
 * and chains to the default action: death by SIGSEGV, with nothing reported and no log file
 * (check_guard_log.py: the log is created only for a finding, also on the signal path). */
#include "victim.h"

#include <sys/mman.h>

int main(void)
{
    struct widget *w = (struct widget *)wref_new(&widget_type);
    VCHECK(w);
    wref_decref(&w->ob_base);
    char *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    VCHECK(page != MAP_FAILED);
    printf("faulting\n");
    fflush(stdout);
    return *(volatile char *)page;   /* faults: the program's own bug, not wref's */
}
