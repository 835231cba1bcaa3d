/* guard_busy.c: under guard=all, a second guard-page fault arrives while the first one's report
 * cannot be written (issue 10: "concurrent faults in two threads each get a report or a clear
 * 'another fault is being reported'").
 *
 * stderr is made a pipe that nobody reads, filled to the brim. Thread T1 reads a destroyed
 * object: its report blocks in write(2). Once T1 is seen blocked there (/proc: its system call
 * is a write to fd 2), thread T2 reads another destroyed object. T2 waits for T1's report (2 s),
 * then writes one line, "another fault is being reported", and blocks on the pipe too. Only
 * then does a drain thread empty the pipe onto the real stderr (dropping the filler). So there
 * is exactly one report (T1's, whole) and one note (T2's), never a torn or second report.
 * Both faults then reach the program's own SIGSEGV handler, which siglongjmps back into its
 * thread; main returns 0 and the checker's exit makes it 23 (one finding). */
#include "victim.h"

#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct widget *stale[2];
static _Thread_local sigjmp_buf back;
static int tids[2];            /* atomic: each faulting thread's tid, once it is about to fault */
static int done[2];            /* atomic: the thread is back from its fault */
static int err_fd = -1;        /* the real stderr */
static int pipe_rd = -1;
static size_t filler;          /* bytes written to fill the pipe */

static void program_handler(int sig)
{
    (void)sig;
    siglongjmp(back, 1);
}

__attribute__((no_sanitize("address"))) static NOINLINE void *victim_read_in_thread(void *arg)
{
    intptr_t i = (intptr_t)arg;
    if (sigsetjmp(back, 1) == 0) {
        struct widget *w = stale[i];   /* set after sigsetjmp: nothing live across the longjmp */
        OPAQUE(w);
        __atomic_store_n(&tids[i], (int)syscall(SYS_gettid), __ATOMIC_RELEASE);
        int v = *(volatile const int *)&w->payload;   /* BUG: destroyed (faults under guard=all) */
        OPAQUE(v);
    }
    __atomic_store_n(&done[i], 1, __ATOMIC_RELEASE);
    return NULL;
}

/* VCHECK with stderr given back first (a full pipe would block the message). */
#define CHECK(cond) ((cond) ? (void)0 : (dup2(err_fd, 2), VCHECK(cond)))

/* Waits (up to 60 s) until thread i is blocked in write(2, ...); returns early if it is back
 * from its fault without writing (then the report misses a line and the test fails). */
static void wait_blocked_writing(int i)
{
    int tid = __atomic_load_n(&tids[i], __ATOMIC_ACQUIRE);
    char path[64], line[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
    char want[32];
    snprintf(want, sizeof want, "%ld 0x2 ", (long)SYS_write);
    for (int k = 0; k < 60000 && !__atomic_load_n(&done[i], __ATOMIC_ACQUIRE); k++) {
        FILE *f = fopen(path, "r");
        CHECK(f);
        size_t n = fread(line, 1, sizeof line - 1, f);
        fclose(f);
        line[n] = 0;
        if (strncmp(line, want, strlen(want)) == 0)
            return;
        usleep(1000);
    }
    CHECK(__atomic_load_n(&done[i], __ATOMIC_ACQUIRE));   /* never blocked, never back */
}

static void *drain(void *arg)
{
    (void)arg;
    char buf[4096];
    size_t skip = filler;
    ssize_t n;
    while ((n = read(pipe_rd, buf, sizeof buf)) > 0) {
        size_t off = skip < (size_t)n ? skip : (size_t)n;
        skip -= off;
        if ((size_t)n > off)
            CHECK(write(err_fd, buf + off, (size_t)n - off) == n - (ssize_t)off);
    }
    return NULL;
}

int main(void)
{
    VCHECK(signal(SIGSEGV, program_handler) != SIG_ERR);
    victim_destroyed_widgets(stale, 2);
    /* stderr: a full pipe */
    int p[2];
    VCHECK(pipe(p) == 0);
    err_fd = dup(2);
    VCHECK(err_fd >= 0 && dup2(p[1], 2) == 2);
    close(p[1]);
    pipe_rd = p[0];
    CHECK(fcntl(2, F_SETFL, O_NONBLOCK) == 0);
    static const char fill[512];
    for (ssize_t n; (n = write(2, fill, sizeof fill)) > 0;)
        filler += (size_t)n;
    CHECK(fcntl(2, F_SETFL, 0) == 0);

    pthread_t t[2], d;
    CHECK(pthread_create(&t[0], NULL, victim_read_in_thread, (void *)0) == 0);
    while (!__atomic_load_n(&tids[0], __ATOMIC_ACQUIRE))
        usleep(1000);
    wait_blocked_writing(0);   /* T1's report */
    CHECK(pthread_create(&t[1], NULL, victim_read_in_thread, (void *)1) == 0);
    while (!__atomic_load_n(&tids[1], __ATOMIC_ACQUIRE))
        usleep(1000);
    wait_blocked_writing(1);   /* T2's note, after its 2 s wait */
    CHECK(pthread_create(&d, NULL, drain, NULL) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    VCHECK(dup2(err_fd, 2) == 2);   /* the pipe's last writer closed: the drain ends */
    pthread_join(d, NULL);
    return 0;   /* exit 23: the checker's, for the one finding */
}
