/* callback_suppressed_unlocked.c: the callback-suppressed report is made after the runtime's
 * stripe lock is released (hooks.h: callback_suppressed only notes the weakref under the
 * referent's stripe; suppressed_flush reports once it is released).
 *
 * The victim's one bug is callback_suppressed.c's, from callback_suppressed.h:
 * wref_clear_weakrefs_no_callbacks on a live object whose weakref has a callback. What this
 * victim adds is a probe that the report did not hold the stripe. Its stderr (where the report goes) is a pipe filled to capacity, so
 * the report's write blocks. A prober thread waits until the main thread is blocked in that
 * write(2, ...) (read from /proc/self/task/TID/syscall), then calls wref_weakref_count on the
 * referent, which takes the referent's stripe, and only then drains the pipe to the real
 * stderr. Had the report been made under the stripe, the prober would spin on the stripe
 * forever and nothing would drain the pipe: a watchdog then says so and exits 98, which the
 * .expect (exit 23, the exact report) rejects. */
#define _GNU_SOURCE   /* F_SETPIPE_SZ */
#include "victim.h"
#include "callback_suppressed.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WATCHDOG_SECONDS 10

static int real_stderr = -1, pipe_rd = -1;
static size_t filler;             /* bytes put in the pipe before the report */
static wref_object *watched;      /* the referent: its stripe is the one probed */
static pid_t main_tid;
static int probed;                /* atomic: the prober took the stripe */

static void say(const char *msg)
{
    (void)!write(real_stderr, msg, strlen(msg));
}

/* The main thread is blocked in write(2, ...): the report, since nothing else writes to
 * stderr while the prober runs. */
static int main_writes_stderr(void)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)main_tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    long nr = -1;
    unsigned long fd_arg = 0;
    return sscanf(buf, "%ld %lx", &nr, &fd_arg) == 2 && nr == SYS_write && fd_arg == 2;
}

static void *prober(void *arg)
{
    (void)arg;
    for (int i = 0; !main_writes_stderr(); i++) {
        if (i == WATCHDOG_SECONDS * 1000) {
            say("callback_suppressed_unlocked: the report never blocked writing stderr\n");
            _exit(97);
        }
        usleep(1000);
    }
    (void)wref_weakref_count(watched);   /* takes the referent's stripe: spins if the report holds it */
    __atomic_store_n(&probed, 1, __ATOMIC_RELEASE);
    char buf[4096];
    size_t skip = filler;
    for (;;) {   /* until the main thread closes the pipe's write end (fd 2) */
        ssize_t n = read(pipe_rd, buf, sizeof buf);
        if (n <= 0)
            break;
        size_t s = skip < (size_t)n ? skip : (size_t)n;
        skip -= s;
        (void)!write(real_stderr, buf + s, (size_t)n - s);
    }
    return NULL;
}

static void *watchdog(void *arg)
{
    (void)arg;
    for (int i = 0; i < WATCHDOG_SECONDS * 100; i++) {
        if (__atomic_load_n(&probed, __ATOMIC_ACQUIRE))
            return NULL;
        usleep(10000);
    }
    say("callback_suppressed_unlocked: FAIL: the referent's stripe was still held while the "
        "callback-suppressed report was being written\n");
    _exit(98);
}

int main(void)
{
    wref_object *w = wref_new(&widget_type);
    VCHECK(w);
    wref_object *ref = victim_watch(w);
    watched = w;
    main_tid = (pid_t)syscall(SYS_gettid);

    /* stderr becomes a full pipe: the next write to it blocks until the prober drains it */
    int p[2];
    VCHECK(pipe(p) == 0);
    (void)fcntl(p[1], F_SETPIPE_SZ, 4096);   /* the smallest pipe: less to fill */
    VCHECK(fcntl(p[1], F_SETFL, O_NONBLOCK) == 0);
    static const char zeros[512];
    for (;;) {
        ssize_t n = write(p[1], zeros, sizeof zeros);
        if (n <= 0)
            break;
        filler += (size_t)n;
    }
    VCHECK(fcntl(p[1], F_SETFL, 0) == 0);
    real_stderr = dup(2);
    VCHECK(real_stderr >= 0);
    VCHECK(dup2(p[1], 2) == 2);
    close(p[1]);
    pipe_rd = p[0];

    pthread_t probe_thread, watch_thread;
    VCHECK(pthread_create(&watch_thread, NULL, watchdog, NULL) == 0);
    VCHECK(pthread_create(&probe_thread, NULL, prober, NULL) == 0);
    victim_silence_weakrefs(w);   /* its report blocks until the prober took the stripe */
    VCHECK(dup2(real_stderr, 2) == 2);   /* the pipe's last write end: the prober sees EOF */
    pthread_join(probe_thread, NULL);
    pthread_join(watch_thread, NULL);
    wref_decref(w);
    wref_decref(ref);
    return 0;
}
