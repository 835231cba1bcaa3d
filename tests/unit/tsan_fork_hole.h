/* tsan_fork_hole.h: tells GCC 12's libtsan fork hole from a real hang, for the fork tests
 * (tests/unit/test_fork.c, tests/victims/fork_under_load.c).
 *
 * A parent thread can hold one of ThreadSanitizer's own locks at fork (seen: the spin mutex of
 * DenseSlabAlloc::Refill, under MetaMap::AllocBlock from malloc); GCC 12's libtsan does not
 * take them across fork (upstream: llvm-project pull request 96600, LLVM 19), so the child
 * spins in libtsan forever. tsan_fork_hole_stuck(pid) is true only when the hung child, our
 * child, is stopped TSAN_HOLE_SAMPLES times (ptrace), 5 ms apart, and its pc is inside
 * libtsan's mappings every time. A lock of the runtime or the checker is not in libtsan's code
 * (a spin on it runs the caller's loop between TSan's atomic calls, a futex wait is in libc):
 * such a hang is never excused. Outside a TSan build it is always false. */
#ifndef WREF_TESTS_TSAN_FORK_HOLE_H
#define WREF_TESTS_TSAN_FORK_HOLE_H

#include <stdbool.h>
#include <sys/types.h>

#ifdef __SANITIZE_THREAD__
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>

#define TSAN_HOLE_SAMPLES 50

static bool tsan_fork_hole_stuck(pid_t pid)
{
    char path[64], line[512];
    uintptr_t lo[16], hi[16];
    size_t n = 0;
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    while (n < 16 && fgets(line, sizeof line, f))
        if (strstr(line, "libtsan") && sscanf(line, "%lx-%lx", &lo[n], &hi[n]) == 2)
            n++;
    fclose(f);
    for (int i = 0; i < TSAN_HOLE_SAMPLES; i++) {
        if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) != 0)
            return false;
        int st;
        if (waitpid(pid, &st, __WALL) != pid || !WIFSTOPPED(st)) {
            ptrace(PTRACE_DETACH, pid, NULL, NULL);
            return false;
        }
        struct user_regs_struct regs;
        struct iovec io = {&regs, sizeof regs};
        long got = ptrace(PTRACE_GETREGSET, pid, (void *)(uintptr_t)NT_PRSTATUS, &io);
        ptrace(PTRACE_DETACH, pid, NULL, NULL);
        if (got != 0)
            return false;
#if defined(__x86_64__)
        uintptr_t pc = (uintptr_t)regs.rip;
#elif defined(__aarch64__)
        uintptr_t pc = (uintptr_t)regs.pc;
#else
        uintptr_t pc = 0;
#endif
        bool in_tsan = false;
        for (size_t k = 0; k < n; k++)
            in_tsan |= pc >= lo[k] && pc < hi[k];
        if (!in_tsan)
            return false;
        struct timespec tick = {0, 5 * 1000 * 1000};
        nanosleep(&tick, NULL);
    }
    return true;
}
#else
static inline bool tsan_fork_hole_stuck(pid_t pid)
{
    (void)pid;
    return false;
}
#endif

#endif
