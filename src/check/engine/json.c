/* json.c: the JSON report, one document per process (docs/report-schema.json).
 *
 * Crash-safe layout: the file is
 *   <head: format, tool, program, options> "findings":[ f1, f2, ... ] <tail> }
 * and each finding is written, together with a fresh tail, in one pwrite() at the offset
 * where the previous tail began. So after every finding the file is a complete document
 * (complete=false), and a process that dies leaves every finding made so far. The final
 * tail (suppressions, leak_graph, complete=true) is written at exit. All calls come from
 * report.c under its lock.
 *
 * The document is created at the first finding (or at exit), so a process that only forks and
 * execs leaves none. A finding made in the SIGSEGV handler (a guard-page or poisoned-pointer
 * fault) can be the first: the handler cannot format or allocate, so the head and the file
 * name are rendered at init (and again in a fork child), and the handler creates the file
 * with open(2) and one pwrite (create_in_signal). */
#include "json.h"
#include "buf.h"
#include "core.h"
#include "finding.h"
#include "options.h"
#include "suppress.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef WREF_VERSION
#define WREF_VERSION "unknown"
#endif


static struct {
    int fd;              /* -1: not open (yet) */
    char *prefix;        /* NULL: no JSON report asked for */
    bool failed;         /* the file could not be created: stop trying */
    time_t start;        /* when the checker started in this process */
    off_t body_end;      /* where the next finding (and the tail) goes */
    size_t n_findings;
    wref__buf pending;   /* findings not yet written: they go out with the next tail */
    wref__buf head;      /* the rendered head, up to "findings":[ (render_head); empty: none */
    char path[600];
} js = {.fd = -1};

/* Writes it all at `at`; false (errno set) when it cannot. Async-signal-safe: no warning here,
 * so that the signal paths (create_in_signal, wref__json_signal_*) reach no formatting. */
static bool write_at(const char *data, size_t len, off_t at)
{
    while (len) {
        ssize_t n = pwrite(js.fd, data, len, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
        at += n;
    }
    return true;
}

static void warn_write(void)
{
    static bool once;
    wref__checker_warn(&once, "cannot write the JSON report %s (%s)", js.path, strerror(errno));
}

static void put_all(const char *data, size_t len, off_t at)
{
    if (!write_at(data, len, at))
        warn_write();
}

/* ---- head ------------------------------------------------------------------------------- */

static void program_json(wref__buf *b)
{
    char exe[4096] = "", cwd[4096] = "", when[32] = "";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    if (!getcwd(cwd, sizeof cwd))
        cwd[0] = 0;
    struct tm tm;
    if (gmtime_r(&js.start, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    wref__buf_printf(b, "\"program\":{\"path\":");
    wref__buf_json_string(b, exe);
    wref__buf_printf(b, ",\"argv\":[");
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char args[8192];
        ssize_t len = read(fd, args, sizeof args - 1);
        close(fd);
        for (ssize_t i = 0, first = 1; len > 0 && i < len; first = 0) {
            args[len] = 0;
            wref__buf_printf(b, first ? "" : ",");
            wref__buf_json_string(b, args + i);
            i += (ssize_t)strlen(args + i) + 1;
        }
    }
    wref__buf_printf(b, "],\"pid\":%d,\"ppid\":%d,\"cwd\":", (int)getpid(), (int)getppid());
    wref__buf_json_string(b, cwd);
    wref__buf_printf(b, ",\"start_time\":\"%s\"}", when);
}

#define JSON_OPT_bool(name) wref__buf_printf(b, "\"%s\":%s", #name, wref__opt.name ? "true" : "false")
#define JSON_OPT_int(name) wref__buf_printf(b, "\"%s\":%d", #name, wref__opt.name)
#define JSON_OPT_uint(name) wref__buf_printf(b, "\"%s\":%u", #name, wref__opt.name)
#define JSON_OPT_size(name) wref__buf_printf(b, "\"%s\":%zu", #name, wref__opt.name)
#define JSON_OPT_string(name) (wref__buf_printf(b, "\"%s\":", #name), wref__buf_json_string(b, wref__opt.name))
#define JSON_OPT_enum(name) wref__buf_printf(b, "\"%s\":\"%s\"", #name, wref__option_value_name(wref__opt.name))

static void options_json(wref__buf *b)
{
    wref__buf_printf(b, "\"options\":{");
    const char *sep = "";
#define WREF__OPTION(type, name, default_, help) \
    wref__buf_printf(b, "%s", sep);              \
    sep = ",";                                   \
    JSON_OPT_##type(name);
#include "options.def"
    (void)sep;
    wref__buf_printf(b, "}");
}

/* Formats <prefix>.<pid>.json (n == 0) or <prefix>.<pid>.<n>.json into js.path without stdio
 * or allocation (async-signal-safe); false when it does not fit. */
static bool format_path(int pid, int n)
{
    char digits[2][24];
    int v[2] = {pid, n}, len[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        char tmp[24];
        int t = 0;
        unsigned u = (unsigned)v[k];
        do {
            tmp[t++] = (char)('0' + u % 10);
            u /= 10;
        } while (u && t < 23);
        while (t)
            digits[k][len[k]++] = tmp[--t];
        digits[k][len[k]] = 0;
    }
    size_t at = 0, cap = sizeof js.path;
    const char *parts[] = {js.prefix, ".", digits[0], n ? "." : "", n ? digits[1] : "", ".json"};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        for (const char *c = parts[i]; *c; c++) {
            if (at + 1 >= cap)
                return false;
            js.path[at++] = *c;
        }
    js.path[at] = 0;
    return true;
}

/* Creates <prefix>.<pid>.json, never through a symlink and never over an existing file: when
 * the name is taken (a process that exec'd keeps its pid), <prefix>.<pid>.<n>.json.
 * Async-signal-safe. */
static int create(void)
{
    int pid = (int)getpid();
    for (int n = 0; n < 100; n++) {
        if (!format_path(pid, n)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(js.path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

/* Renders the head into js.head: at init and in a fork child (pid, ppid and start time are
 * the process's), so that the signal handler can create the document without formatting. */
static void render_head(void)
{
    wref__buf_free(&js.head);
    wref__buf *b = &js.head;
    wref__buf_printf(b, "{\"format\":\"wref-check-report\",\"version\":1,"
                        "\"tool\":{\"name\":\"libwref-check\",\"version\":\"" WREF_VERSION "\"},\n");
    program_json(b);
    wref__buf_printf(b, ",\n");
    options_json(b);
    wref__buf_printf(b, ",\n\"findings\":[");
    if (!b->data || b->failed)
        wref__buf_free(b);   /* out of memory: ensure_open says so */
}

/* A complete (empty) document from the start: a process that dies before its first finding or
 * exit still leaves valid JSON. */
static const char empty_tail[] = "\n],\n\"suppressions\":[],\n\"summary\":{\"findings\":0,\"by_kind\":{},"
                                 "\"suppressed\":0,\"exit_status\":null},\n\"complete\":false}\n";

/* Creates the file and writes the head and an empty tail; async-signal-safe (js.head is
 * rendered). False (js.failed set) when the file cannot be created; *wrote false when it was
 * created but could not be written (the caller warns, outside a signal handler). */
static bool create_with_head(bool *wrote)
{
    js.fd = create();
    if (js.fd < 0) {
        js.failed = true;
        return false;
    }
    *wrote = write_at(js.head.data, js.head.len, 0);
    js.body_end = (off_t)js.head.len;
    *wrote = write_at(empty_tail, sizeof empty_tail - 1, js.body_end) && *wrote;
    return true;
}

/* Opens the document and writes its head, at the first finding or at exit (lazily, so that a
 * process that only forks and execs leaves no empty report behind). */
static bool ensure_open(void)
{
    if (js.fd >= 0)
        return true;
    if (!js.prefix || js.failed)
        return false;
    if (!js.head.len)
        render_head();
    if (!js.head.len) {
        js.failed = true;
        wref__checker_warn(NULL, "out of memory: no JSON report (%s.%d.json)", js.prefix, (int)getpid());
        return false;
    }
    bool wrote;
    if (!create_with_head(&wrote)) {
        wref__checker_warn(NULL, "cannot create the JSON report %s (%s); no JSON report", js.path, strerror(errno));
        return false;
    }
    if (!wrote)
        warn_write();
    return true;
}

/* From the signal handler: ensure_open without formatting, allocating or warning. */
static bool create_in_signal(void)
{
    if (js.fd >= 0)
        return true;
    if (!js.prefix || js.failed || !js.head.len)
        return false;
    bool wrote;
    return create_with_head(&wrote);   /* a failed write: the next tail write tries again */
}

/* One line on stderr at exit, so that a user of report=json knows where to look:
 *   ==PID==wref-check: JSON report (N finding(s)) written to /abs/path.PID.json */
static void say_where(size_t total)
{
    char cwd[512] = "";
    if (js.path[0] != '/' && !getcwd(cwd, sizeof cwd))
        cwd[0] = 0;
    char line[1200];
    int n = snprintf(line, sizeof line, "==%d==wref-check: JSON report (%zu finding(s)) written to %s%s%s\n",
                     (int)getpid(), total, cwd, cwd[0] ? "/" : "", js.path);
    if (n > 0)
        (void)!write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

void wref__json_open(const char *prefix)
{
    js.prefix = strdup(prefix);
    js.start = time(NULL);
    if (js.prefix)
        render_head();
}

void wref__json_after_fork(void)
{
    if (js.fd >= 0)
        close(js.fd);
    js.fd = -1;
    js.failed = false;
    js.body_end = 0;
    js.n_findings = 0;
    wref__buf_free(&js.pending);
    js.start = time(NULL);
    if (js.prefix)
        render_head();   /* this process's pid, ppid and start time */
    if (wref__opt.guard != WREF__GUARD_NONE)
        (void)ensure_open();
}

/* ---- findings ------------------------------------------------------------------------- */

static void frame_json(wref__buf *b, const struct wref__frame_info *fi)
{
    wref__buf_printf(b, "{\"pc\":\"0x%lx\",\"module\":", (unsigned long)fi->pc);
    wref__buf_json_string(b, fi->module);
    wref__buf_printf(b, ",\"build_id\":");
    wref__buf_json_string(b, fi->build_id);
    if (fi->module)
        wref__buf_printf(b, ",\"offset\":\"0x%lx\",\"function\":", (unsigned long)fi->module_offset);
    else
        wref__buf_printf(b, ",\"offset\":null,\"function\":");
    wref__buf_json_string(b, fi->function);
    wref__buf_printf(b, ",\"file\":");
    wref__buf_json_string(b, fi->file);
    if (fi->file && fi->line > 0)
        wref__buf_printf(b, ",\"line\":%d", fi->line);
    else
        wref__buf_printf(b, ",\"line\":null");
    wref__buf_printf(b, ",\"inlined\":%s}", fi->inlined ? "true" : "false");
}

static void object_json(wref__buf *b, const wref__finding *f)
{
    const wref__rec_copy *o = f->object;
    if (!o) {
        wref__buf_printf(b, "null");
        return;
    }
    wref__buf_printf(b, "{\"type\":");
    wref__buf_json_string(b, wref__finding_type_name(f));
    wref__buf_printf(b, ",\"serial\":%llu,\"size\":%u,\"address\":\"0x%lx\"}", (unsigned long long)o->serial, o->size,
                     (unsigned long)o->addr);
}

static void leak_json(wref__buf *b, const wref__leak_info *l)
{
    static const char *const shapes[] = {"direct", "indirect", "cycle"};
    wref__buf_printf(b, ",\"leak\":{\"shape\":\"%s\",\"count\":%zu,\"bytes\":%zu,\"indirect_count\":%zu,"
                        "\"indirect_bytes\":%zu",
                     shapes[l->shape], l->count, l->bytes, l->indirect_count, l->indirect_bytes);
    if (l->cycle_len) {
        wref__buf_printf(b, ",\"cycle\":[");
        for (size_t i = 0; i < l->cycle_len; i++)
            wref__buf_printf(b, "%s%llu", i ? "," : "", (unsigned long long)l->cycle[i]);
        wref__buf_printf(b, "]");
    }
    wref__buf_printf(b, "}");
}

/* A finding's "repeats" value: a number, left-aligned and padded with spaces (JSON whitespace)
 * to a fixed width, so that it is rewritten in place as the count grows. */
#define REPEATS_WIDTH 20   /* the digits of SIZE_MAX */

static void repeats_text(char out[REPEATS_WIDTH], size_t n)
{
    char tmp[24];
    int len = 0;
    do {
        tmp[len++] = (char)('0' + n % 10);
        n /= 10;
    } while (n && len < REPEATS_WIDTH);
    for (int i = 0; i < REPEATS_WIDTH; i++)
        out[i] = i < len ? tmp[len - 1 - i] : ' ';
}

off_t wref__json_finding(size_t id, const wref__finding *f, const wref__rstack *stacks, size_t n_stacks,
                         const char *summary)
{
    if (!ensure_open())
        return -1;
    wref__buf b = {0};
    wref__buf_printf(&b, "%s\n{\"id\":%zu,\"kind\":\"%s\",\"severity\":\"%s\",\"message\":", js.n_findings ? "," : "",
                     id, wref__kind_name(f->kind), wref__kind_severity(f->kind));
    wref__buf_json_string(&b, f->what);
    wref__buf_printf(&b, ",\"object\":");
    object_json(&b, f);
    wref__buf_printf(&b, ",\"address\":\"0x%lx\",\"thread\":", (unsigned long)f->address);
    if (f->where)
        wref__buf_printf(&b, "{\"number\":%u,\"tid\":%d}", wref__thread_no(), wref__tid());
    else
        wref__buf_printf(&b, "null");
    wref__buf_printf(&b, ",\"stacks\":[");
    for (size_t s = 0; s < n_stacks; s++) {
        wref__buf_printf(&b, "%s{\"label\":", s ? "," : "");
        wref__buf_json_string(&b, stacks[s].label);
        if (stacks[s].tno != ~0u)
            wref__buf_printf(&b, ",\"thread\":%u,\"frames\":[", stacks[s].tno);
        else
            wref__buf_printf(&b, ",\"thread\":null,\"frames\":[");
        for (size_t i = 0; i < stacks[s].n; i++) {
            wref__buf_printf(&b, i ? "," : "");
            frame_json(&b, &stacks[s].frames[i]);
        }
        wref__buf_printf(&b, "]");
        if (stacks[s].n_lang) {   /* interpreter frames (Python's), innermost first */
            wref__buf_printf(&b, ",\"python_frames\":[");
            for (size_t i = 0; i < stacks[s].n_lang; i++) {
                const wref__lang_frame *lf = &stacks[s].lang[i];
                wref__buf_printf(&b, "%s{\"file\":", i ? "," : "");
                wref__buf_json_string(&b, lf->file);
                if (lf->line > 0)
                    wref__buf_printf(&b, ",\"line\":%d,\"function\":", lf->line);
                else
                    wref__buf_printf(&b, ",\"line\":null,\"function\":");
                wref__buf_json_string(&b, lf->function);
                wref__buf_printf(&b, "}");
            }
            wref__buf_printf(&b, "]");
        }
        wref__buf_printf(&b, "}");
    }
    wref__buf_printf(&b, "]");
    if (f->test_name) {
        wref__buf_printf(&b, ",\"test\":");
        wref__buf_json_string(&b, f->test_name);
    }
    if (f->leak)
        leak_json(&b, f->leak);
    wref__buf_printf(&b, ",\"summary\":");
    wref__buf_json_string(&b, summary);
    size_t slot = 0;   /* the "repeats" value's offset in b; 0: none */
    if (wref__opt.fold_repeats) {
        char zero[REPEATS_WIDTH];
        repeats_text(zero, 0);
        wref__buf_printf(&b, ",\"repeats\":");
        slot = b.len;
        wref__buf_printf(&b, "%.*s", REPEATS_WIDTH, zero);
    }
    wref__buf_printf(&b, "}");
    size_t before = js.pending.len;
    if (b.data)
        wref__buf_printf(&js.pending, "%.*s", (int)b.len, b.data);
    if (!b.data || b.failed || js.pending.len != before + b.len) {
        static bool once;
        js.pending.len = before;   /* never half a finding: the document must stay valid */
        wref__checker_warn(&once, "out of memory: finding %zu is missing from the JSON report %s", id, js.path);
        wref__buf_free(&b);
        return -1;
    }
    js.n_findings++;
    wref__buf_free(&b);
    /* pending is written at body_end (with the next tail), so its bytes keep their file offsets */
    return slot ? js.body_end + (off_t)(before + slot) : -1;
}

void wref__json_set_repeats(off_t slot, size_t n)
{
    if (slot < 0 || js.fd < 0)
        return;
    char text[REPEATS_WIDTH];
    repeats_text(text, n);
    if (slot + REPEATS_WIDTH <= js.body_end) {   /* written: in place, same length, still valid JSON */
        if (!write_at(text, REPEATS_WIDTH, slot))
            warn_write();
    } else if (slot >= js.body_end && (size_t)(slot - js.body_end) + REPEATS_WIDTH <= js.pending.len) {
        memcpy(js.pending.data + (slot - js.body_end), text, REPEATS_WIDTH);   /* not written yet */
    }
}

/* ---- tail --------------------------------------------------------------------------------- */

void wref__json_tail(const size_t *by_kind, size_t total, size_t suppressed, size_t repeats, const char *leak_graph,
                     bool final, int exit_status)
{
    if (!ensure_open())
        return;
    wref__buf b = js.pending;   /* pending findings, then the tail: one pwrite */
    size_t pending_len = b.len;
    off_t tail_at = js.body_end + (off_t)b.len;
    js.pending = (wref__buf){0};
    wref__buf_printf(&b, "\n],\n\"suppressions\":");
    wref__suppress_table_json(&b);
    if (leak_graph)
        wref__buf_printf(&b, ",\n\"leak_graph\":%s", leak_graph);
    wref__buf_printf(&b, ",\n\"summary\":{\"findings\":%zu,\"by_kind\":{", total);
    const char *sep = "";
    for (unsigned k = 0; k < WREF__K_COUNT; k++) {
        if (by_kind[k]) {
            wref__buf_printf(&b, "%s\"%s\":%zu", sep, wref__kind_name((enum wref__kind)k), by_kind[k]);
            sep = ",";
        }
    }
    wref__buf_printf(&b, "},\"suppressed\":%zu,", suppressed);
    if (wref__opt.fold_repeats)
        wref__buf_printf(&b, "\"repeats\":%zu,", repeats);
    wref__buf_printf(&b, "\"exit_status\":");
    if (exit_status >= 0)
        wref__buf_printf(&b, "%d", exit_status);
    else
        wref__buf_printf(&b, "null");
    wref__buf_printf(&b, "},\n\"complete\":%s}\n", final ? "true" : "false");
    if (b.failed) {   /* a cut tail would break the document: keep the findings for the next try */
        static bool once;
        wref__checker_warn(&once, "out of memory: the JSON report %s is not up to date", js.path);
        js.pending = (wref__buf){b.data, pending_len, b.cap, false};
        return;
    }
    off_t end = js.body_end + (off_t)b.len;
    put_all(b.data, b.len, js.body_end);
    js.body_end = tail_at;
    if (ftruncate(js.fd, end) != 0) {
        static bool once;
        wref__checker_warn(&once, "cannot truncate the JSON report %s (%s)", js.path, strerror(errno));
    }
    wref__buf_free(&b);
    if (final)
        say_where(total);
}

/* ---- from a signal handler ------------------------------------------------------------------ */

void wref__json_open_now(void)
{
    (void)ensure_open();
}

struct sbuf {
    char *p;
    size_t len, cap;
};

static void s_put(struct sbuf *b, const char *s)
{
    while (*s && b->len < b->cap)
        b->p[b->len++] = *s++;
}

static void s_num(struct sbuf *b, size_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < 24);
    while (n && b->len < b->cap)
        b->p[b->len++] = tmp[--n];
}

static void s_put_n(void *ctx, const char *p, size_t n)
{
    struct sbuf *b = ctx;
    while (n-- && b->len < b->cap)
        b->p[b->len++] = *p++;
}

/* The tail as wref__json_tail writes it (no leak graph), complete=false. */
static void s_tail(struct sbuf *b, const size_t *by_kind, size_t total, size_t suppressed, size_t repeats)
{
    s_put(b, "\n],\n\"suppressions\":");
    wref__suppress_table_json_put(s_put_n, b);
    s_put(b, ",\n\"summary\":{\"findings\":");
    s_num(b, total);
    s_put(b, ",\"by_kind\":{");
    const char *sep = "";
    for (unsigned k = 0; k < WREF__K_COUNT; k++) {
        if (by_kind[k]) {
            s_put(b, sep);
            s_put(b, "\"");
            s_put(b, wref__kind_name((enum wref__kind)k));
            s_put(b, "\":");
            s_num(b, by_kind[k]);
            sep = ",";
        }
    }
    s_put(b, "},\"suppressed\":");
    s_num(b, suppressed);
    if (wref__opt.fold_repeats) {
        s_put(b, ",\"repeats\":");
        s_num(b, repeats);
    }
    s_put(b, ",\"exit_status\":null},\n\"complete\":false}\n");
}

/* The signal path's one output buffer: the handler runs one report at a time (fault.c's
 * reporter), and static because it may run on a small alternate stack. */
static char signal_out[65536];

bool wref__json_signal_tail(const size_t *by_kind, size_t total, size_t suppressed, size_t repeats)
{
    if (!create_in_signal())
        return false;
    struct sbuf b = {signal_out, 0, sizeof signal_out};
    s_tail(&b, by_kind, total, suppressed, repeats);
    if (b.len == b.cap)
        return false;   /* cut short (a suppressions table larger than the buffer): keep the old tail */
    if (!write_at(signal_out, b.len, js.body_end))
        return false;
    (void)!ftruncate(js.fd, js.body_end + (off_t)b.len);
    return true;
}

bool wref__json_signal_finding(const char *finding, size_t len, const size_t *by_kind, size_t total,
                               size_t suppressed, size_t repeats)
{
    char *out = signal_out;
    if (!create_in_signal())
        return false;   /* no JSON report asked for, or the file cannot be created */
    struct sbuf b = {out, 0, sizeof signal_out};
    s_put(&b, js.n_findings ? ",\n" : "\n");
    if (len > b.cap - b.len - 1024)
        return false;   /* cannot happen: the handler's buffer is smaller */
    memcpy(out + b.len, finding, len);
    b.len += len;
    size_t tail_at = b.len;
    s_tail(&b, by_kind, total, suppressed, repeats);
    if (b.len == b.cap)
        return false;   /* cut short: nothing written, the text goes to the stream instead */
    if (!write_at(out, b.len, js.body_end))
        return false;   /* the text goes to the stream instead */
    if (ftruncate(js.fd, js.body_end + (off_t)b.len) == 0)
        js.body_end += (off_t)tail_at;
    js.n_findings++;
    return true;
}

