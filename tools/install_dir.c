/* install_dir.c: the three-candidate search for the tool's shipped files (install_dir.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "install_dir.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* dir + "/" + name (malloc'd), or NULL when out of memory. */
static char *join(const char *dir, const char *name)
{
    char *s = NULL;
    return asprintf(&s, "%s/%s", dir, name) < 0 ? NULL : s;
}

char *wref_tool_install_dir(const char *build_tools_dir, const char *source_dir, const char *rel_dir,
                            const char *full_dir, const char *probe)
{
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *cand[3] = {NULL, NULL, NULL};
    size_t n = 0;
    if (len > 0) {
        exe[len] = 0;
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = 0;   /* the tool's directory */
        if (build_tools_dir[0] && source_dir[0] && !strcmp(exe, build_tools_dir))
            cand[n++] = strdup(source_dir);
        slash = strrchr(exe, '/');   /* its parent: the prefix */
        if (slash && asprintf(&cand[n], "%.*s/%s", (int)(slash - exe), exe, rel_dir) >= 0)
            n++;
    }
    cand[n++] = strdup(full_dir);
    char *found = NULL;
    for (size_t i = 0; i < n; i++) {
        char *path = !found && cand[i] ? join(cand[i], probe) : NULL;
        if (path && access(path, R_OK) == 0)
            found = cand[i];
        else
            free(cand[i]);
        free(path);
    }
    return found;
}
