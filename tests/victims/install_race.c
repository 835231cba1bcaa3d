/* install_race.c: a program thread installs its own SIGSEGV handler while the checker installs
 * its own (issue 10: "the previous handler is read safely against the sigaction interposer").
 * install_race_hammer.c's constructor runs before the checker's and leaves a thread alternating
 * two handlers through sigaction. When main runs, the kernel's handler must be the checker's
 * (a call that went to libc between the checker's install and its taking over would have
 * replaced it: guard-page faults would then go unreported), and the interposer must report
 * the handler the thread installed last (the one the checker chains to).
 *
 * Without arguments it runs itself RUNS times (default 60, INSTALL_RACE_RUNS), each a fresh
 * process whose start-up races anew; prints "PASS install_race ..." or FAIL lines (exit 1).
 * Linked against libwref-check, then the hammer library. */
#include <wref/check.h>

#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
void install_race_h1(int sig);
void install_race_h2(int sig);
long install_race_stop(void (**handler)(int));

static int one_run(void)
{
    if (!wref_check_active()) {
        printf("FAIL install_race: the checker is not active\n");
        return 1;
    }
    void (*last)(int) = NULL;
    long calls = install_race_stop(&last);
    if (calls < 0) {
        printf("FAIL install_race: set-up: the hammer thread did not start before the checker's handler\n");
        return 1;
    }
    struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } k;
    if (syscall(SYS_rt_sigaction, SIGSEGV, NULL, &k, sizeof k.mask) != 0)
        return printf("FAIL install_race: rt_sigaction\n"), 1;
    if (k.handler == (void *)install_race_h1 || k.handler == (void *)install_race_h2 || k.handler == (void *)SIG_DFL) {
        printf("FAIL install_race: after %ld calls, the kernel's SIGSEGV handler is not the checker's\n", calls);
        return 1;
    }
    struct sigaction now;
    if (sigaction(SIGSEGV, NULL, &now) != 0 || now.sa_handler != last) {
        printf("FAIL install_race: after %ld calls, the interposer does not report the last handler installed\n", calls);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return one_run();
    const char *s = getenv("INSTALL_RACE_RUNS");
    int runs = s ? atoi(s) : 60;
    for (int i = 0; i < runs; i++) {
        char *args[] = {argv[0], "run", NULL};
        pid_t pid;
        fflush(stdout);
        if (posix_spawn(&pid, argv[0], NULL, NULL, args, environ) != 0)
            return printf("FAIL install_race: posix_spawn\n"), 1;
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            printf("FAIL install_race: run %d: status %#x\n", i, (unsigned)st);
            return 1;
        }
    }
    printf("PASS install_race: %d start-ups with a thread installing SIGSEGV handlers\n", runs);
    return 0;
}
