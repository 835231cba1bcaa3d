/* survivor.c: makes findings, then ends the hard way, to show that what the checker found
 * survives the process. Usage: survivor MODE, MODE one of
 *   abort    SIGABRT          segv   a SIGSEGV outside wref     _exit   _exit(3), no atexit
 *   term     raise(SIGTERM)   fork   the child makes its own finding and exits; the parent
 *                                    makes another one and waits for it
 *   exec     findings, then the process execs itself (same pid) with MODE clean
 *   clean    no finding
 * Before the ending, each mode (but clean) makes one use-after-free finding and leaks one
 * Widget (found only by the exit census). */
#include "victim.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static NOINLINE void victim_use_after_free(void)
{
    wref_object *ob = wref_new(&widget_type);
    wref_decref(ob);
    OPAQUE(ob);
    wref_incref(ob);   /* BUG */
}

static NOINLINE void victim_child_bug(void)
{
    wref_object *p = (wref_object *)(uintptr_t)0x40;
    OPAQUE(p);
    wref_incref(p);   /* BUG: invalid-object, in the child only */
}

/* A wild read, not through wref: uninstrumented so that no sanitizer turns it into its own
 * report first (the sanitizer builds run this with handle_segv=0). */
__attribute__((no_sanitize("address", "undefined"))) static NOINLINE int victim_crash(void)
{
    volatile int *wild = (volatile int *)(uintptr_t)0x10;
    OPAQUE(wild);
    return *wild;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "clean";
    if (!strcmp(mode, "clean"))
        return 0;
    victim_use_after_free();
    wref_object *leaked = wref_new(&widget_type);   /* BUG: never released */
    OPAQUE(leaked);
    if (!strcmp(mode, "abort"))
        abort();
    if (!strcmp(mode, "segv"))
        return victim_crash();
    if (!strcmp(mode, "_exit"))
        _exit(3);
    if (!strcmp(mode, "term")) {
        raise(SIGTERM);
        return 0;
    }
    if (!strcmp(mode, "exec")) {
        execl("/proc/self/exe", argv[0], "clean", (char *)NULL);
        return 98;
    }
    if (!strcmp(mode, "fork")) {
        pid_t pid = fork();
        VCHECK(pid >= 0);
        if (pid == 0) {
            victim_child_bug();
            _exit(0);   /* like most children: no exit census of the parent's objects */
        }
        int status;
        VCHECK(waitpid(pid, &status, 0) == pid);
        return WIFEXITED(status) ? 0 : 97;
    }
    return 99;
}
