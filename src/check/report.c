/* report.c: the one place that formats findings (text, sanitizer style).
 *
 * One framed block per finding, written whole with one write(2) under report.lock:
 *   ==PID==ERROR: wref-check: <kind> on <Type>#<serial> at <addr> (<size>-byte object) ...
 *   <what happened>
 *       #0 0x... in fn file:line (module+0xoff)          <- where it happened
 *   <label> by thread T<n> here:                          <- the object's history
 *       #0 ...
 *   SUMMARY: wref-check: <kind> in <first frame outside wref>
 * The format is an API: tests and docs/reports.md match it. */
#include "checker.h"
#include "symbolize.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const kind_names[WREF__K_COUNT] = {
    [WREF__K_DANGLING_BORROW] = "dangling-borrow",
    [WREF__K_USE_AFTER_FREE] = "use-after-free",
    [WREF__K_USE_AFTER_CLEAR] = "use-after-clear",
    [WREF__K_INVALID_OBJECT] = "invalid-object",
    [WREF__K_HEAP_OVERFLOW] = "heap-overflow",
    [WREF__K_WRITE_AFTER_FREE] = "write-after-free",
    [WREF__K_CLEAR_LIVE] = "clear-live",
    [WREF__K_LEAK] = "leak",
    [WREF__K_CALLBACK_NEVER_RAN] = "callback-never-ran",
    [WREF__K_CALLBACK_SUPPRESSED] = "callback-suppressed",
    [WREF__K_CALLBACK_ERROR] = "callback-error",
};

static struct {
    pthread_mutex_t lock;      /* one finding at a time; guards fd and counts */
    int fd;                    /* -1 until the first write */
    size_t total;
    size_t by_kind[WREF__K_COUNT];
} rep = {.lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

const char *wref__kind_name(enum wref__kind k)
{
    return (unsigned)k < WREF__K_COUNT ? kind_names[k] : "unknown";
}

/* ---- buffer ------------------------------------------------------------------------------ */

void wref__buf_printf(wref__buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->data && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return;   /* out of memory: the finding is cut short, never lost entirely */
        b->data = d;
        b->cap = cap;
    }
}

void wref__buf_free(wref__buf *b)
{
    free(b->data);
    *b = (wref__buf){0};
}

static const char *base_name(const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;
    return s ? s + 1 : path ? path : "<unknown module>";
}

void wref__buf_stack(wref__buf *b, wref__stack_id id)
{
    const uintptr_t *pcs;
    size_t n = wref__stack_get(id, &pcs);
    if (!n) {
        wref__buf_printf(b, "    <no stack>\n");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct wref__frame_info fi;
        memset(&fi, 0, sizeof fi);
        wref__symbolize(pcs[i], &fi);
        wref__buf_printf(b, "    #%zu 0x%lx in %s", i, (unsigned long)pcs[i], fi.function ? fi.function : "??");
        if (fi.file)
            wref__buf_printf(b, " %s:%d", fi.file, fi.line);
        wref__buf_printf(b, " (%s+0x%lx)\n", base_name(fi.module), (unsigned long)fi.module_offset);
    }
}

/* The first frame outside the checker library: the user's code, for the SUMMARY line. */
static const char *user_function(wref__stack_id id)
{
    const uintptr_t *pcs;
    size_t n = wref__stack_get(id, &pcs);
    for (size_t i = 0; i < n; i++) {
        if (wref__self_contains(pcs[i]))
            continue;
        struct wref__frame_info fi;
        memset(&fi, 0, sizeof fi);
        if (wref__symbolize(pcs[i], &fi) && fi.function)
            return fi.function;
        return "??";
    }
    return NULL;
}

const char *wref__type_name(const wref__rec_copy *r)
{
    return r && r->type && r->type->name ? r->type->name : "?";
}

/* ---- output ------------------------------------------------------------------------------- */

static int open_log(void)
{
    const char *p = wref__opt.log_path;
    if (!p[0] || !strcmp(p, "stderr"))
        return 2;
    if (!strcmp(p, "stdout"))
        return 1;
    char path[600];
    snprintf(path, sizeof path, "%s.%d", p, (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_APPEND, 0644);
    if (fd < 0) {
        char msg[700];
        int n = snprintf(msg, sizeof msg, "wref-check: WARNING: cannot create log file %s (%s); writing to stderr\n",
                         path, strerror(errno));
        (void)!write(2, msg, (size_t)n);
        return 2;
    }
    return fd;
}

void wref__report_write(const char *data, size_t len)
{
    if (rep.fd < 0)
        rep.fd = open_log();
    while (len) {
        ssize_t n = write(rep.fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

/* ANSI colours like the sanitizers': the error line red, labels blue, SUMMARY bold. */
static bool use_color(void)
{
    if (rep.fd < 0)
        rep.fd = open_log();
    if (wref__opt.color == WREF__COLOR_ALWAYS)
        return true;
    return wref__opt.color == WREF__COLOR_AUTO && isatty(rep.fd);
}

void wref__report(const wref__finding *f)
{
    wref__buf b = {0};
    int pid = (int)getpid();
    const wref__rec_copy *o = f->object;
    pthread_mutex_lock(&rep.lock);
    bool color = use_color();
    pthread_mutex_unlock(&rep.lock);
    const char *red = color ? "\033[1m\033[31m" : "", *blue = color ? "\033[1m\033[34m" : "";
    const char *bold = color ? "\033[1m" : "", *reset = color ? "\033[0m" : "";
    wref__buf_printf(&b, "%s==%d==ERROR: wref-check: %s", red, pid, wref__kind_name(f->kind));
    if (o)
        wref__buf_printf(&b, " on %s#%llu at 0x%lx (%u-byte object)", wref__type_name(o),
                         (unsigned long long)o->serial, (unsigned long)o->addr, o->size);
    else if (f->address)
        wref__buf_printf(&b, " at 0x%lx", (unsigned long)f->address);
    if (f->where)
        wref__buf_printf(&b, " in thread T%u (tid %d)", wref__thread_no(), wref__tid());
    wref__buf_printf(&b, "%s\n%s\n", reset, f->what);
    if (f->where)
        wref__buf_stack(&b, f->where);
    for (unsigned i = 0; i < f->n_history; i++) {
        const wref__labelled *h = &f->history[i];
        if (h->tno != ~0u)
            wref__buf_printf(&b, "%s%s by thread T%u here:%s\n", blue, h->label, h->tno, reset);
        else
            wref__buf_printf(&b, "%s%s here:%s\n", blue, h->label, reset);
        wref__buf_stack(&b, h->stack);
    }
    if (f->extra)
        wref__buf_printf(&b, "%s", f->extra);
    const char *fn = NULL;
    if (f->where)
        fn = user_function(f->where);
    for (unsigned i = 0; !fn && i < f->n_history; i++)
        fn = user_function(f->history[i].stack);
    wref__buf_printf(&b, "%sSUMMARY: wref-check: %s in %s%s\n\n", bold, wref__kind_name(f->kind), fn ? fn : "??", reset);

    pthread_mutex_lock(&rep.lock);
    wref__report_write(b.data, b.len);
    rep.total++;
    rep.by_kind[f->kind]++;
    pthread_mutex_unlock(&rep.lock);
    wref__buf_free(&b);

    if (wref__opt.halt_on_error) {
        wref__report_exit_summary();
        fflush(NULL);
        _exit(wref__opt.exitcode);
    }
}

size_t wref__report_count(void)
{
    pthread_mutex_lock(&rep.lock);
    size_t n = rep.total;
    pthread_mutex_unlock(&rep.lock);
    return n;
}

void wref__report_exit_summary(void)
{
    pthread_mutex_lock(&rep.lock);
    if (rep.total && wref__opt.print_summary) {
        wref__buf b = {0};
        wref__buf_printf(&b, "SUMMARY: wref-check: %zu finding(s) in process %d:", rep.total, (int)getpid());
        const char *sep = " ";
        for (unsigned k = 0; k < WREF__K_COUNT; k++) {
            if (rep.by_kind[k]) {
                wref__buf_printf(&b, "%s%zu %s", sep, rep.by_kind[k], kind_names[k]);
                sep = ", ";
            }
        }
        wref__buf_printf(&b, "\n");
        wref__report_write(b.data, b.len);
        wref__buf_free(&b);
    }
    pthread_mutex_unlock(&rep.lock);
}
