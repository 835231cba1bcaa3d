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
 * The format is an API: tests and docs/reports.md match it. JSON: json.c.
 *
 * Repeats (fold_repeats=1, valgrind's "errors from contexts"): a finding whose context
 * (finding.h: kind, object type, every stack) equals that of one printed before is a repeat:
 * counted (exit status, the SUMMARY, wref_check_findings) and not printed; at exit one line
 * per folded context says how many it had, and the JSON's first finding carries the count.
 * A stack is compared by a key of its frames (stack_key: module and offset of each, up to the
 * C library's process or thread entry), not by its depot id alone: the first capture of a
 * call chain may hold the start-up frames below that entry (__libc_start_main, _start) where
 * later captures of the same chain end at it, two ids for one chain. The key of each depot
 * id is kept (a bounded cache), so a repeat whose stacks were all seen before is recognized
 * without resolving (symbolizing) them. Suppressions come first (a suppressed finding is no
 * context; equal contexts get the same verdict: the frames, type and kind decide it). The
 * table of contexts is bounded (MAX_CONTEXTS): past it, new contexts are printed and not
 * remembered, and the exit lines say how many. The fault handler's findings
 * (wref__report_signal_finding) are never folded: it cannot take the lock. */
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

/* A printed finding's context and its repeats. */
struct context {
    wref__context key;
    uint64_t hash;             /* wref__context_hash(&key); 0: empty slot */
    size_t id;                 /* the printed finding's id */
    size_t repeats;
    char *label;               /* "<kind> on <Type>#<serial> in <function>", for the exit line; may be NULL */
    bool has_object;
    uint64_t last_serial;      /* the latest repeat's object (has_object) or address */
    uintptr_t last_addr;
    char last_type[64];
    off_t json_slot;           /* its JSON "repeats" value (json.c), -1: none */
};

#define MAX_CONTEXTS 4096      /* remembered printed findings: 8192 slots of ~240 bytes, and their labels */
#define KEY_CACHE 16384        /* stack ids whose key is known: 16384 * 16 bytes at most */

struct key_slot {
    wref__stack_id id;         /* 0: empty */
    uint64_t key;
};

static struct {
    pthread_mutex_t lock;      /* one finding at a time; guards everything below */
    int fd;                    /* text destination; -1 until the first write */
    bool text, json;           /* formats asked for (report=) */
    bool finished;
    bool dying;                /* flush_on_signal: the process dies by a signal, not exitcode */
    size_t total, suppressed;  /* total: every finding, repeats included (the exit status) */
    size_t printed;            /* findings printed: the last id (total - repeats) */
    size_t repeats;            /* findings folded into a printed one */
    size_t by_kind[WREF__K_COUNT];   /* repeats included */
    struct context *ctx;       /* open addressing, cap a power of two (load <= 1/2); NULL: none yet */
    size_t n_ctx, cap_ctx;
    size_t unremembered;       /* printed findings whose context the full table could not keep */
    struct key_slot *keys;     /* open addressing, KEY_CACHE slots, filled to 3/4 at most; NULL: none yet */
    size_t n_keys;
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

/* ---- contexts (repeats) ---------------------------------------------------------------- */

static uint64_t nonzero(uint64_t h)
{
    return h ? h : 1;
}

/* The C library's (or a sanitizer runtime's) process or thread entry: a stack's key ends there. */
static bool is_start(const char *fn)
{
    static const char *const start[] = {"__libc_start_call_main", "__libc_start_main", "_start", "start_thread",
                                        "clone3", "clone", "__tsan_thread_start_func", "asan_thread_start"};
    for (size_t i = 0; fn && i < sizeof start / sizeof *start; i++)
        if (!strcmp(fn, start[i]))
            return true;
    return false;
}

static uint64_t fnv_bytes(uint64_t h, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001b3ULL;
    return h;
}

/* A resolved stack's key: its frames (module basename and offset, or the pc without a
 * module) up to and with the first process or thread entry; 0 for no frames. */
static uint64_t stack_key(const wref__rstack *rs)
{
    if (!rs->n)
        return 0;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < rs->n; i++) {
        const struct wref__frame_info *fi = &rs->frames[i];
        if (fi->module) {
            const char *m = base_name(fi->module);
            h = fnv_bytes(h, m, strlen(m) + 1);
            h = fnv_bytes(h, &fi->module_offset, sizeof fi->module_offset);
        } else {
            h = fnv_bytes(h, &fi->pc, sizeof fi->pc);
        }
        if (is_start(fi->function))
            break;
    }
    return h ? h : 1;
}

static size_t key_slot_of(wref__stack_id id)
{
    return (size_t)(id * 0x9E3779B1u) & (KEY_CACHE - 1);
}

/* The key of depot stack id (0 for id 0), when known; false when not. Under rep.lock. */
static bool key_known(wref__stack_id id, uint64_t *key)
{
    if (!id) {
        *key = 0;
        return true;
    }
    for (size_t i = key_slot_of(id); rep.keys && rep.keys[i].id; i = (i + 1) & (KEY_CACHE - 1))
        if (rep.keys[i].id == id) {
            *key = rep.keys[i].key;
            return true;
        }
    return false;
}

static void key_remember(wref__stack_id id, uint64_t key)
{
    uint64_t known;
    if (!id || key_known(id, &known) || rep.n_keys >= KEY_CACHE / 4 * 3)
        return;   /* full: such a stack is resolved again at each of its findings */
    if (!rep.keys && !(rep.keys = calloc(KEY_CACHE, sizeof *rep.keys)))
        return;
    size_t i = key_slot_of(id);
    while (rep.keys[i].id)
        i = (i + 1) & (KEY_CACHE - 1);
    rep.keys[i] = (struct key_slot){id, key};
    rep.n_keys++;
}

/* f's context from the keys of its stacks' ids; false when one is not known yet. Under rep.lock. */
static bool context_from_ids(const wref__finding *f, wref__context *out)
{
    uint64_t keys[WREF__MAX_STACKS + 1];
    if (!key_known(f->where, &keys[0]))
        return false;
    for (unsigned i = 0; i < f->n_history && i < WREF__MAX_STACKS; i++)
        if (!key_known(f->history[i].stack, &keys[1 + i]))
            return false;
    wref__context_of(f, keys, out);
    return true;
}

/* The key of stack id, resolved as rs, remembered for id. A stack that could not be resolved
 * (out of memory) is keyed by its id, never remembered: it matches only itself. */
static uint64_t resolved_key(wref__stack_id id, const wref__rstack *rs)
{
    if (!id)
        return 0;
    if (!rs->n)
        return 1ull << 63 | id;
    uint64_t key = stack_key(rs);
    key_remember(id, key);
    return key;
}

/* f's context from its resolved stacks (resolve_all's order), remembering each id's key.
 * Under rep.lock. */
static void context_from_stacks(const wref__finding *f, const wref__rstack *stacks, wref__context *out)
{
    uint64_t keys[WREF__MAX_STACKS + 1] = {0};
    size_t s = 0;
    if (f->where)
        keys[0] = resolved_key(f->where, &stacks[s++]);
    for (unsigned i = 0; i < f->n_history && i < WREF__MAX_STACKS; i++, s++)
        keys[1 + i] = resolved_key(f->history[i].stack, &stacks[s]);
    wref__context_of(f, keys, out);
}

/* The printed finding with context k, or NULL. Under rep.lock. */
static struct context *context_find(const wref__context *k, uint64_t h)
{
    if (!rep.cap_ctx)
        return NULL;
    for (size_t i = h & (rep.cap_ctx - 1);; i = (i + 1) & (rep.cap_ctx - 1)) {
        struct context *c = &rep.ctx[i];
        if (!c->hash)
            return NULL;
        if (c->hash == h && !memcmp(&c->key, k, sizeof *k))
            return c;
    }
}

/* Remembers printed finding `id`'s context; false when the table is full (or out of memory).
 * Under rep.lock. */
static struct context *context_add(const wref__context *k, uint64_t h, size_t id)
{
    if (rep.n_ctx >= MAX_CONTEXTS)
        return NULL;
    if ((rep.n_ctx + 1) * 2 > rep.cap_ctx) {   /* grow: 64, 128, ... 2 * MAX_CONTEXTS */
        size_t cap = rep.cap_ctx ? rep.cap_ctx * 2 : 64;
        struct context *t = calloc(cap, sizeof *t);
        if (!t)
            return NULL;
        for (size_t i = 0; i < rep.cap_ctx; i++) {
            if (!rep.ctx[i].hash)
                continue;
            size_t j = rep.ctx[i].hash & (cap - 1);
            while (t[j].hash)
                j = (j + 1) & (cap - 1);
            t[j] = rep.ctx[i];
        }
        free(rep.ctx);
        rep.ctx = t;
        rep.cap_ctx = cap;
    }
    size_t i = h & (rep.cap_ctx - 1);
    while (rep.ctx[i].hash)
        i = (i + 1) & (rep.cap_ctx - 1);
    rep.ctx[i] = (struct context){.key = *k, .hash = h, .id = id, .json_slot = -1};
    rep.n_ctx++;
    return &rep.ctx[i];
}

static void contexts_free(void)
{
    free(rep.keys);   /* the depot's ids are the child's too, but the cache goes with the table */
    rep.keys = NULL;
    rep.n_keys = 0;
    for (size_t i = 0; i < rep.cap_ctx; i++)
        free(rep.ctx[i].label);
    free(rep.ctx);
    rep.ctx = NULL;
    rep.n_ctx = rep.cap_ctx = 0;
    rep.unremembered = 0;
}

static bool is_power_of_two(size_t n)
{
    return n && !(n & (n - 1));
}

/* f is a repeat of c: counted, not printed. The JSON's count and tail are brought up to date at
 * the 1st, 2nd, 4th, ... repeat (and at exit): a crash leaves a lower bound. Under rep.lock. */
static void count_repeat(struct context *c, const wref__finding *f)
{
    rep.total++;
    rep.repeats++;
    rep.by_kind[f->kind]++;
    c->repeats++;
    c->last_addr = f->object ? f->object->addr : f->address;
    c->last_serial = f->object ? f->object->serial : 0;
    c->has_object = f->object != NULL;
    if (f->object)
        snprintf(c->last_type, sizeof c->last_type, "%s", wref__finding_type_name(f));
    if (rep.json && is_power_of_two(c->repeats)) {
        wref__json_set_repeats(c->json_slot, c->repeats);
        wref__json_tail(rep.by_kind, rep.total, rep.suppressed, rep.repeats, NULL, false, -1);
    }
}

static int by_id(const void *a, const void *b)
{
    size_t x = (*(const struct context *const *)a)->id, y = (*(const struct context *const *)b)->id;
    return x < y ? -1 : x > y;
}

/* At exit: one line per printed finding that had repeats, and one if the table was full. */
static void format_repeats(wref__buf *b, int pid)
{
    if (!rep.repeats && !rep.unremembered)
        return;
    if (rep.repeats)
        wref__buf_printf(b, "==%d==wref-check: %zu repeat(s) not printed: findings with the kind, object type and "
                            "stacks of one printed above (fold_repeats=0 prints each):\n", pid, rep.repeats);
    /* in the order of the findings they repeat (the table is in hash order) */
    size_t n = 0;
    const struct context **list = rep.repeats ? malloc(rep.n_ctx * sizeof *list) : NULL;
    for (size_t i = 0; list && i < rep.cap_ctx; i++)
        if (rep.ctx[i].hash && rep.ctx[i].repeats)
            list[n++] = &rep.ctx[i];
    if (n)
        qsort(list, n, sizeof *list, by_id);
    if (rep.repeats && !list)
        wref__buf_printf(b, "  (out of memory: the findings they repeat are not listed)\n");
    for (size_t i = 0; i < n; i++) {
        const struct context *c = list[i];
        wref__buf_printf(b, "  %s: and %zu more like it: same kind and stacks, other %s (the last: ",
                         c->label ? c->label : "(out of memory)", c->repeats, c->has_object ? "objects" : "addresses");
        if (c->has_object)
            wref__buf_printf(b, "%s#%llu at 0x%lx)\n", c->last_type, (unsigned long long)c->last_serial,
                             (unsigned long)c->last_addr);
        else
            wref__buf_printf(b, "at 0x%lx)\n", (unsigned long)c->last_addr);
    }
    free(list);
    if (rep.unremembered)
        wref__buf_printf(b, "==%d==WARNING: wref-check: %zu finding(s) printed without a repeat check: the table of "
                            "%d finding contexts was full, so their repeats are printed too\n",
                         pid, rep.unremembered, MAX_CONTEXTS);
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

/* Halts the process after a finding (halt_on_error=1). */
static void halt_if_asked(size_t id)
{
    if (id && wref__opt.halt_on_error) {
        wref__report_finish(NULL);
        fflush(NULL);
        _exit(wref__opt.exitcode);
    }
}

size_t wref__report(const wref__finding *f)
{
    bool fold = wref__opt.fold_repeats;
    wref__context key;
    uint64_t hash = 0;
    size_t id = 0;
    if (fold) {   /* a repeat whose stack ids were seen is recognized before resolving them */
        pthread_mutex_lock(&rep.lock);
        struct context *c = NULL;
        if (!rep.finished && context_from_ids(f, &key))
            c = context_find(&key, hash = nonzero(wref__context_hash(&key)));
        if (c) {
            count_repeat(c, f);
            id = c->id;
        }
        pthread_mutex_unlock(&rep.lock);
        if (id) {
            halt_if_asked(id);
            return id;
        }
    }

    wref__rstack stacks[WREF__MAX_STACKS + 1];
    size_t n = resolve_all(f, stacks);
    char fn_buf[256];
    const char *fn = user_function(stacks, n, fn_buf, sizeof fn_buf);

    pthread_mutex_lock(&rep.lock);
    struct context *c = NULL;
    if (fold) {
        context_from_stacks(f, stacks, &key);
        hash = nonzero(wref__context_hash(&key));
    }
    if (wref__suppress_match(f, stacks, n)) {
        rep.suppressed++;
    } else if (fold && !rep.finished && (c = context_find(&key, hash)) != NULL) {   /* printed meanwhile */
        count_repeat(c, f);
        id = c->id;
    } else {
        rep.total++;
        id = ++rep.printed;
        rep.by_kind[f->kind]++;
        if (fold && !(c = context_add(&key, hash, id)))
            rep.unremembered++;
        if (c) {
            wref__buf label = {0};
            wref__buf_printf(&label, "%s", wref__kind_name(f->kind));
            if (f->object)
                wref__buf_printf(&label, " on %s#%llu", wref__finding_type_name(f),
                                 (unsigned long long)f->object->serial);
            else if (f->address)
                wref__buf_printf(&label, " at 0x%lx", (unsigned long)f->address);
            wref__buf_printf(&label, " in %s", fn);
            c->label = label.failed ? NULL : label.data;   /* NULL: the exit line says out of memory */
            if (label.failed)
                wref__buf_free(&label);
        }
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
            off_t slot = wref__json_finding(id, f, stacks, n, summary);
            if (c)
                c->json_slot = slot;
            wref__json_tail(rep.by_kind, rep.total, rep.suppressed, rep.repeats, NULL, false, -1);
        }
        if (f->leak && wref__opt.leak_format == WREF__LEAK_FORMAT_LSAN)
            format_lsan(f, stacks, n);
    }
    pthread_mutex_unlock(&rep.lock);
    for (size_t i = 0; i < n; i++)
        free(stacks[i].frames);
    halt_if_asked(id);
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
        rep.total = rep.suppressed = rep.printed = rep.repeats = 0;
        contexts_free();   /* the parent's findings are not the child's */
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
    rep.printed++;  /* never a repeat: the table needs the lock */
    rep.by_kind[kind]++;
    if (rep.text) {
        if (rep.fd < 0) {   /* open_log formats and warns: not here. stderr if it fails */
            int fd = rep.signal_path[0] ? open(rep.signal_path, LOG_FLAGS, 0644) : rep.signal_fd;
            rep.fd = fd >= 0 ? fd : 2;
        }
        report_write(text, text_len);
    }
    if (rep.json && !wref__json_signal_finding(json, json_len, rep.by_kind, rep.total, rep.suppressed, rep.repeats) &&
        !rep.text)
        (void)!write(rep.signal_fd == 1 ? 1 : 2, text, text_len);   /* never lost: the text on the stream */
}

void wref__report_signal_suppressed(void)
{
    if (rep.finished)
        return;
    rep.suppressed++;   /* no lock, as wref__report_signal_finding */
    if (rep.json)
        (void)wref__json_signal_tail(rep.by_kind, rep.total, rep.suppressed, rep.repeats);
}

void wref__report_dying_by_signal(void)
{
    rep.dying = true;
}

size_t wref__report_count_unlocked(void)
{
    return rep.printed;
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
    format_repeats(&b, pid);
    if (rep.total && wref__opt.print_summary) {
        wref__buf_printf(&b, "SUMMARY: wref-check: %zu finding(s) in process %d:", rep.total, pid);
        const char *sep = " ";
        for (unsigned k = 0; k < WREF__K_COUNT; k++) {
            if (rep.by_kind[k]) {
                wref__buf_printf(&b, "%s%zu %s", sep, rep.by_kind[k], wref__kind_name((enum wref__kind)k));
                sep = ", ";
            }
        }
        if (rep.repeats)
            wref__buf_printf(&b, " (%zu printed, %zu repeat(s) folded)", rep.printed, rep.repeats);
        wref__buf_printf(&b, "\n");
    }
    if (b.len && (rep.text || rep.lsan.len))
        report_write(b.data, b.len);
    wref__buf_free(&b);
    if (rep.json) {
        for (size_t i = 0; i < rep.cap_ctx; i++)   /* the exact counts (count_repeat wrote powers of two) */
            if (rep.ctx[i].hash && rep.ctx[i].repeats)
                wref__json_set_repeats(rep.ctx[i].json_slot, rep.ctx[i].repeats);
        wref__json_tail(rep.by_kind, rep.total, rep.suppressed, rep.repeats, leak_graph, true,
                        rep.total && !rep.dying ? wref__opt.exitcode : -1);
    }
    pthread_mutex_unlock(&rep.lock);
}
