/* symlink_trap.c: the checker never writes through a symlink planted at its report paths.
 *
 * usage: symlink_trap PREFIX TARGET
 * Before any finding, plants PREFIX.<pid> and PREFIX.<pid>.json as symlinks to TARGET, then
 * execs itself (same pid) as `symlink_trap --leak`, which leaks one object with the checker's
 * log_path=PREFIX and report=text,json. TARGET must stay untouched: the text report goes to
 * stderr with a warning (O_EXCL|O_NOFOLLOW refuses the name) and the JSON report to
 * PREFIX.<pid>.1.json. check_options.py runs it. */
#include "victim.h"

#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--leak")) {
        wref_object *ob = wref_new(&widget_type);   /* BUG: leaked, so that there is a report */
        OPAQUE(ob);
        return 0;
    }
    if (argc != 3)
        return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s.%d", argv[1], (int)getpid());
    VCHECK(symlink(argv[2], path) == 0);
    snprintf(path, sizeof path, "%s.%d.json", argv[1], (int)getpid());
    VCHECK(symlink(argv[2], path) == 0);
    execl("/proc/self/exe", argv[0], "--leak", (char *)NULL);
    return 98;
}
