/* report.c: the one place findings go out: resolve their stacks, apply suppressions, then
 * write each format the `report` option asks for (text, json) and, for leaks with
 * leak_format=lsan, LeakSanitizer's shape.
 *
 * Text: one framed block per finding, written whole with one write(2) under rep.lock:
 *   ==PID==ERROR: wref-check: <kind> on <Type>#<serial> at <addr> (<size>-byte object) ...
 *   <what happened>
 *       #0 0x... in fn file:line (module+0xoff)          <- where it happened
 *   <label> by thread T<n> here:                          <- the object's history
 *       #0 ...
 *   SUMMARY: wref-check: <kind> in <first frame outside wref>
 * The format is an API: tests and docs/reports.md match it. JSON: json.c. */
#include "report.h"
#include "buf.h"
#include "core.h"
#include "finding.h"
#include "json.h"
#include "options.h"
#include "stack.h"
#include "suppress.h"
#include "symbolize.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
    pthread_mutex_t lock;      /* one finding at a time; guards everything below */
    int fd;                    /* text destination; -1 until the first write */
    bool text, json;           /* formats asked for (report=) */
    bool finished;
    bool dying;                /* flush_on_signal: the process dies by a signal, not exitcode */
    size_t total, suppressed;
    size_t by_kind[WREF__K_COUNT];
    wref__buf lsan;            /* leak_format=lsan blocks, written at finish */
    size_t lsan_bytes, lsan_objects;
    char signal_path[600];     /* the text log's file name, formatted before any fault; "" for stderr/stdout */
    int signal_fd;             /* 2 or 1 when the text goes to a stream */
} rep = {.lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1, .text = true};

static const char *base_name(const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;
    return s ? s + 1 : path ? path : "<unknown module>";
}


size_t (*wref__lang_stack_get)(uint32_t id, const wref__lang_frame **frames);

static void resolve_lang(wref__rstack *rs, uint32_t id)
{
    if (id && wref__lang_stack_get)
        rs->n_lang = wref__lang_stack_get(id, &rs->lang);
}

/* ---- resolved stacks -------------------------------------------------------------------- */

#define MAX_FRAMES_PER_PC 9

static void resolve(wref__rstack *rs, const char *label, unsigned tno, wref__stack_id id)
{
    const uintptr_t *pcs;
    size_t n = wref__stack_get(id, &pcs);
    uint32_t gen = wref__stack_gen(id);
    *rs = (wref__rstack){label, tno, 0, NULL, 0, NULL};
    if (!n)
        return;
    rs->frames = malloc(n * MAX_FRAMES_PER_PC * sizeof *rs->frames);
    if (!rs->frames)
        return;
    for (size_t i = 0; i < n; i++) {
        size_t k = wref__symbolize_frames(pcs[i], gen, rs->frames + rs->n, MAX_FRAMES_PER_PC);
        /* Frame 0 is the API function the program called (wref__capture): the checker's own
         * helpers inlined into it (wref__decref in wref_decref) are not shown above it. */
        if (i == 0 && k > 1 && wref__self_contains(pcs[0])) {
            rs->frames[rs->n] = rs->frames[rs->n + k - 1];
            k = 1;
        }
        rs->n += k;
    }
}

/* The stacks of f: "where" first (when there is one), then its history. */
static size_t resolve_all(const wref__finding *f, wref__rstack *out)
{
    size_t n = 0;
    if (f->where) {
        resolve(&out[n], "where", wref__thread_no(), f->where);
        resolve_lang(&out[n++], f->lang_where);
    }
    for (unsigned i = 0; i < f->n_history; i++) {
        resolve(&out[n], f->history[i].label, f->history[i].tno, f->history[i].stack);
        resolve_lang(&out[n++], f->lang_history[i]);
    }
    return n;
}

bool (*wref__lang_frame_is_runtime)(const struct wref__frame_info *fi);

/* A C frame of the user's code: outside the checker library and outside the language runtime
 * (wref__lang_frame_is_runtime: the interpreter and libc, when a frontend says so). */
static bool is_user_frame(const struct wref__frame_info *fi)
{
    return !wref__self_contains(fi->pc) && (!wref__lang_frame_is_runtime || !wref__lang_frame_is_runtime(fi));
}

/* The user's code, for the SUMMARY line, by wref-check report's rule (tools/report,
 * fingerprint.c), so that both name a finding alike: the first user C frame of the main stack
 * (stacks[0]: "where", else the first history stack); without one, the innermost interpreter
 * frame of the main stack with a real file (not "<frozen ...>"), as "function (file.py)" (a
 * callback written in Python that raised, a use from Python code); without that, the first
 * user C frame of any stack, or failing that the first frame outside the checker. */
static const char *user_function(const wref__rstack *stacks, size_t n, char *buf, size_t cap)
{
    for (size_t i = 0; n && i < stacks[0].n; i++)
        if (is_user_frame(&stacks[0].frames[i]))
            return stacks[0].frames[i].function ? stacks[0].frames[i].function : "??";
    for (size_t i = 0; n && i < stacks[0].n_lang; i++) {
        const wref__lang_frame *lf = &stacks[0].lang[i];
        if (lf->file[0] && lf->file[0] != '<') {
            snprintf(buf, cap, "%s (%s)", lf->function, base_name(lf->file));
            return buf;
        }
    }
    const struct wref__frame_info *first = NULL;
    for (size_t s = 0; s < n; s++)
        for (size_t i = 0; i < stacks[s].n; i++) {
            const struct wref__frame_info *fi = &stacks[s].frames[i];
            if (is_user_frame(fi))
                return fi->function ? fi->function : "??";
            if (!first && !wref__self_contains(fi->pc))
                first = fi;
        }
    return first && first->function ? first->function : "??";
}

static void text_frames(wref__buf *b, const wref__rstack *rs)
{
    if (!rs->n)
        wref__buf_printf(b, "    <no stack>\n");
    for (size_t i = 0; i < rs->n; i++) {
        const struct wref__frame_info *fi = &rs->frames[i];
        wref__buf_printf(b, "    #%zu 0x%lx in %s", i, (unsigned long)fi->pc, fi->function ? fi->function : "??");
        if (fi->file)
            wref__buf_printf(b, " %s:%d", fi->file, fi->line);
        wref__buf_printf(b, " (%s+0x%lx)\n", base_name(fi->module), (unsigned long)fi->module_offset);
    }
}

/* The interpreter frames of a stack, after its C frames: "  Python frames:" then
 * "    #0 file.py:12 in func", innermost first; a frame without a line (<= 0, null in the
 * JSON) is "file.py in func", as wref-check report writes it. */
static void text_lang_frames(wref__buf *b, const wref__rstack *rs)
{
    if (!rs->n_lang)
        return;
    wref__buf_printf(b, "  Python frames:\n");
    for (size_t i = 0; i < rs->n_lang; i++) {
        const wref__lang_frame *lf = &rs->lang[i];
        if (lf->line > 0)
            wref__buf_printf(b, "    #%zu %s:%d in %s\n", i, lf->file, lf->line, lf->function);
        else
            wref__buf_printf(b, "    #%zu %s in %s\n", i, lf->file, lf->function);
    }
}

/* ---- destinations ------------------------------------------------------------------------- */

/* log_path, or with leak_format=lsan and no log_path, LSAN_OPTIONS' log_path (so that
 * ctest -T memcheck finds our leaks where it tells LeakSanitizer to write). */
static const char *text_path(char *buf, size_t cap)
{
    const char *p = wref__opt.log_path;
    if (!p[0] && wref__opt.leak_format == WREF__LEAK_FORMAT_LSAN) {
        const char *lsan = secure_getenv("LSAN_OPTIONS");
        const char *lp = lsan ? strstr(lsan, "log_path=") : NULL;
        if (lp && (lp == lsan || lp[-1] == ':' || lp[-1] == ' ' || lp[-1] == ',')) {
            lp += strlen("log_path=");
            char q = (*lp == '\'' || *lp == '"') ? *lp++ : 0;
            size_t len = q ? strcspn(lp, (char[]){q, 0}) : strcspn(lp, ": ,");
            if (len && len < cap) {
                memcpy(buf, lp, len);
                buf[len] = 0;
                return buf;
            }
        }
    }
    return p;
}

#define LOG_FLAGS (O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_APPEND)

/* Formats, for this process, the text log's name (or the stream) that a signal handler may
 * open with open(2) alone (wref__report_signal_finding). Call at init and in a fork child. */
static void prepare_signal_path(void)
{
    char lsan[512];
    const char *p = text_path(lsan, sizeof lsan);
    rep.signal_path[0] = 0;
    rep.signal_fd = !strcmp(p, "stdout") ? 1 : 2;
    if (!p[0] || !strcmp(p, "stderr") || !strcmp(p, "stdout"))
        return;
    /* absolute: the program may change directory before the fault */
    char cwd[512] = "";
    if (p[0] != '/' && !getcwd(cwd, sizeof cwd))
        cwd[0] = 0;
    int n = snprintf(rep.signal_path, sizeof rep.signal_path, "%s%s%s.%d", cwd, cwd[0] ? "/" : "", p, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof rep.signal_path)
        snprintf(rep.signal_path, sizeof rep.signal_path, "%s.%d", p, (int)getpid());
}

static int open_log(void)
{
    char lsan[512];
    const char *p = text_path(lsan, sizeof lsan);
    if (!p[0] || !strcmp(p, "stderr"))
        return 2;
    if (!strcmp(p, "stdout"))
        return 1;
    char path[600];
    snprintf(path, sizeof path, "%s.%d", p, (int)getpid());
    int fd = open(path, LOG_FLAGS, 0644);
    if (fd < 0) {
        static bool once;
        wref__checker_warn(&once, "cannot create log file %s (%s); writing to stderr", path, strerror(errno));
        return 2;
    }
    return fd;
}

static void report_write(const char *data, size_t len)
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

/* The fault handler writes reports from a signal handler, where files cannot be created
 * with path formatting or malloc: the text log's name is formatted now (absolute), and the
 * handler creates the file with open(2) at its first report, so a run without findings
 * leaves no empty log. */
static void prepare_for_faults(bool child)
{
    prepare_signal_path();
    (void)child;
    /* The JSON document is opened lazily (a process that only forks and execs leaves none),
     * except with guard pages on; a poisoned-pointer fault (poison.h, any mode) that comes
     * first has the handler create it from the head json.c rendered at init. */
    if (wref__opt.guard == WREF__GUARD_NONE)
        return;
    if (rep.json)
        wref__json_open_now();   /* a suppressed fault writes nothing, and its death runs no exit */
}

void wref__report_init(void)
{
    rep.text = rep.json = false;
    const char *p = wref__opt.report;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (len == 4 && !strncmp(p, "text", 4))
            rep.text = true;
        else if (len == 4 && !strncmp(p, "json", 4))
            rep.json = true;
        else if (len)
            wref__checker_warn(NULL, "unknown report format '%.*s' in report=%s (known: text, json)", (int)len, p,
                               wref__opt.report);
        p += len + (p[len] == ',');
    }
    if (!rep.text && !rep.json) {
        wref__checker_warn(NULL, "report=%s names no format; using text", wref__opt.report);
        rep.text = true;
    }
    if (rep.json) {
        const char *lp = wref__opt.log_path;
        bool stream = !lp[0] || !strcmp(lp, "stderr") || !strcmp(lp, "stdout");
        wref__json_open(stream ? "wref-check" : lp);
    }
    prepare_for_faults(false);
    if (wref__opt.suppressions[0])
        wref__suppress_load(wref__opt.suppressions);
}

/* ---- formats ------------------------------------------------------------------------------ */

static void format_text(wref__buf *b, const wref__finding *f, const wref__rstack *stacks, size_t n,
                        const char *fn)
{
    const wref__rec_copy *o = f->object;
    bool color = use_color();
    const char *red = color ? "\033[1m\033[31m" : "", *blue = color ? "\033[1m\033[34m" : "";
    const char *bold = color ? "\033[1m" : "", *reset = color ? "\033[0m" : "";
    wref__buf_printf(b, "%s==%d==ERROR: wref-check: %s", red, (int)getpid(), wref__kind_name(f->kind));
    if (o)
        wref__buf_printf(b, " on %s#%llu at 0x%lx (%u-byte object)", wref__finding_type_name(f),
                         (unsigned long long)o->serial, (unsigned long)o->addr, o->size);
    else if (f->address)
        wref__buf_printf(b, " at 0x%lx", (unsigned long)f->address);
    if (f->where)
        wref__buf_printf(b, " in thread T%u (tid %d)", wref__thread_no(), wref__tid());
    wref__buf_printf(b, "%s\n%s\n", reset, f->what);
    if (f->test_name)
        wref__buf_printf(b, "in test: %s\n", f->test_name);
    for (size_t i = 0; i < n; i++) {
        const wref__rstack *s = &stacks[i];
        if ((i > 0 || !f->where) && s->tno == ~0u && !s->n && !s->n_lang) {
            /* No thread and no frames: the label is a statement ("created: not recorded (...)"). */
            wref__buf_printf(b, "%s%s%s\n", blue, s->label, reset);
            continue;
        }
        if (i > 0 || !f->where) {
            if (s->tno != ~0u)
                wref__buf_printf(b, "%s%s by thread T%u here:%s\n", blue, s->label, s->tno, reset);
            else
                wref__buf_printf(b, "%s%s here:%s\n", blue, s->label, reset);
        }
        text_frames(b, s);
        text_lang_frames(b, s);
    }
    if (f->extra)
        wref__buf_printf(b, "%s", f->extra);
    wref__buf_printf(b, "%sSUMMARY: wref-check: %s in %s%s\n\n", bold, wref__kind_name(f->kind), fn, reset);
}

/* LeakSanitizer's block for one leak finding, kept for the report's end. */
static void format_lsan(const wref__finding *f, const wref__rstack *stacks, size_t n)
{
    const wref__leak_info *l = f->leak;
    wref__buf_printf(&rep.lsan, "%s leak of %zu byte(s) in %zu object(s) allocated from:\n",
                     l->shape == WREF__LEAK_INDIRECT ? "Indirect" : "Direct", l->bytes, l->count);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(stacks[i].label, "created"))
            text_frames(&rep.lsan, &stacks[i]);
    wref__buf_printf(&rep.lsan, "\n");
    rep.lsan_bytes += l->bytes;
    rep.lsan_objects += l->count;
}

size_t wref__report(const wref__finding *f)
{
    wref__rstack stacks[WREF__MAX_STACKS + 1];
    size_t n = resolve_all(f, stacks);
    char fn_buf[256];
    const char *fn = user_function(stacks, n, fn_buf, sizeof fn_buf);
    size_t id = 0;

    pthread_mutex_lock(&rep.lock);
    if (wref__suppress_match(f, stacks, n)) {
        rep.suppressed++;
    } else {
        id = ++rep.total;
        rep.by_kind[f->kind]++;
        if (rep.text) {
            wref__buf b = {0};
            format_text(&b, f, stacks, n, fn);
            if (!b.data || !b.len) {   /* out of memory: the finding's first line still goes out */
                char line[256];
                int len = snprintf(line, sizeof line, "==%d==ERROR: wref-check: %s at 0x%lx (out of memory: "
                                   "report cut short)\nSUMMARY: wref-check: %s in %s\n\n", (int)getpid(),
                                   wref__kind_name(f->kind), (unsigned long)f->address, wref__kind_name(f->kind), fn);
                report_write(line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
            }
            report_write(b.data, b.len);
            wref__buf_free(&b);
        }
        if (rep.json) {
            char summary[300];
            snprintf(summary, sizeof summary, "%s in %s", wref__kind_name(f->kind), fn);
            wref__json_finding(id, f, stacks, n, summary);
            wref__json_tail(rep.by_kind, rep.total, rep.suppressed, NULL, false, -1);
        }
        if (f->leak && wref__opt.leak_format == WREF__LEAK_FORMAT_LSAN)
            format_lsan(f, stacks, n);
    }
    pthread_mutex_unlock(&rep.lock);
    for (size_t i = 0; i < n; i++)
        free(stacks[i].frames);

    if (id && wref__opt.halt_on_error) {
        wref__report_finish(NULL);
        fflush(NULL);
        _exit(wref__opt.exitcode);
    }
    return id;
}

void wref__report_fork(enum wref__fork_phase phase)
{
    if (phase == WREF__FORK_PREPARE) {
        pthread_mutex_lock(&rep.lock);
        return;
    }
    if (phase == WREF__FORK_CHILD) {   /* the child's findings are its own: <log_path>.<its pid> */
        if (rep.fd > 2)
            close(rep.fd);
        rep.fd = -1;
        rep.finished = false;
        rep.total = rep.suppressed = 0;
        memset(rep.by_kind, 0, sizeof rep.by_kind);
        wref__buf_free(&rep.lsan);
        rep.lsan_bytes = rep.lsan_objects = 0;
        wref__json_after_fork();
        prepare_for_faults(true);
    }
    pthread_mutex_unlock(&rep.lock);
}

void wref__report_signal_finding(enum wref__kind kind, const char *text, size_t text_len, const char *json,
                                 size_t json_len)
{
    if (rep.finished)
        return;
    rep.total++;   /* no lock: the thread that holds it may be this one, and the process is dying */
    rep.by_kind[kind]++;
    if (rep.text) {
        if (rep.fd < 0) {   /* open_log formats and warns: not here. stderr if it fails */
            int fd = rep.signal_path[0] ? open(rep.signal_path, LOG_FLAGS, 0644) : rep.signal_fd;
            rep.fd = fd >= 0 ? fd : 2;
        }
        report_write(text, text_len);
    }
    if (rep.json && !wref__json_signal_finding(json, json_len, rep.by_kind, rep.total, rep.suppressed) &&
        !rep.text)
        (void)!write(rep.signal_fd == 1 ? 1 : 2, text, text_len);   /* never lost: the text on the stream */
}

void wref__report_signal_suppressed(void)
{
    if (rep.finished)
        return;
    rep.suppressed++;   /* no lock, as wref__report_signal_finding */
    if (rep.json)
        (void)wref__json_signal_tail(rep.by_kind, rep.total, rep.suppressed);
}

void wref__report_dying_by_signal(void)
{
    rep.dying = true;
}

size_t wref__report_count_unlocked(void)
{
    return rep.total;
}

size_t wref__report_count(void)
{
    pthread_mutex_lock(&rep.lock);
    size_t n = rep.total;
    pthread_mutex_unlock(&rep.lock);
    return n;
}

void wref__report_finish(const char *leak_graph)
{
    pthread_mutex_lock(&rep.lock);
    if (rep.finished) {
        pthread_mutex_unlock(&rep.lock);
        return;
    }
    rep.finished = true;
    int pid = (int)getpid();
    wref__buf b = {0};
    if (rep.lsan.len) {
        wref__buf_printf(&b, "=================================================================\n"
                             "==%d==ERROR: LeakSanitizer: detected memory leaks\n\n", pid);
        wref__buf_printf(&b, "%.*s", (int)rep.lsan.len, rep.lsan.data);
        wref__buf_printf(&b, "SUMMARY: AddressSanitizer: %zu byte(s) leaked in %zu allocation(s).\n",
                         rep.lsan_bytes, rep.lsan_objects);
    }
    if (wref__opt.print_suppressions)
        wref__suppress_table_text(&b);
    if (rep.total && wref__opt.print_summary) {
        wref__buf_printf(&b, "SUMMARY: wref-check: %zu finding(s) in process %d:", rep.total, pid);
        const char *sep = " ";
        for (unsigned k = 0; k < WREF__K_COUNT; k++) {
            if (rep.by_kind[k]) {
                wref__buf_printf(&b, "%s%zu %s", sep, rep.by_kind[k], wref__kind_name((enum wref__kind)k));
                sep = ", ";
            }
        }
        wref__buf_printf(&b, "\n");
    }
    if (b.len && (rep.text || rep.lsan.len))
        report_write(b.data, b.len);
    wref__buf_free(&b);
    if (rep.json)
        wref__json_tail(rep.by_kind, rep.total, rep.suppressed, leak_graph, true,
                        rep.total && !rep.dying ? wref__opt.exitcode : -1);
    pthread_mutex_unlock(&rep.lock);
}
