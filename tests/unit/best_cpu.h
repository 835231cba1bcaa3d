/* best_cpu.h: the cost tests' clock (test_poison, test_heap): work(ctx) timed in this thread's
 * CPU time (system calls included, other processes' load not), the best of 5 runs, in ns. */
#ifndef WREF_TESTS_BEST_CPU_H
#define WREF_TESTS_BEST_CPU_H

#include <time.h>

static double best_cpu_ns(void (*work)(void *ctx), void *ctx)
{
    double best = 1e18;
    for (int run = 0; run < 5; run++) {
        struct timespec a, b;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
        work(ctx);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
        double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
        best = ns < best ? ns : best;
    }
    return best;
}

#endif
