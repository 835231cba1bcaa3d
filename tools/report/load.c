/* load.c: JSON report -> struct report, with strict validation of what the tool relies on.
 *
 * Contract: the input is untrusted. Every required field of docs/report-schema.json is checked
 * for presence and type (and hex strings for their pattern, kinds against the table) before it
 * is used; the first problem ends the load with one message naming the file and the JSON path
 * ("r.json: findings[2].stacks[0].frames[1]: missing required field 'pc'"); syntax errors
 * carry jansson's line and column. Unknown fields are ignored: the schema lets a version add
 * fields. Nothing here aborts or exits on bad input. */
#include "model.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct ctx {
    const char *name;
    char *err;
    size_t errlen;
};

static int fail(struct ctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct ctx *c, const char *path, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s: %s%s%s", c->name, path, path[0] ? ": " : "", msg);
    return -1;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Field access: each returns 0, or -1 with the message set. `path` names `obj`. */
enum { REQUIRED = 0, NULLABLE = 1 };

static json_t *field(struct ctx *c, json_t *obj, const char *path, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        fail(c, path, "missing required field '%s'", key);
    return v;
}

static int wrong(struct ctx *c, const char *path, const char *key, const char *want, json_t *v)
{
    return fail(c, path, "field '%s': expected %s, got %s", key, want, type_name(v));
}

static int get_str(struct ctx *c, json_t *obj, const char *path, const char *key, int nullable,
                   const char **out)
{
    json_t *v = field(c, obj, path, key);
    if (!v)
        return -1;
    if (nullable && json_is_null(v)) {
        *out = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return wrong(c, path, key, nullable ? "a string or null" : "a string", v);
    *out = json_string_value(v);
    return 0;
}

static int get_hex(struct ctx *c, json_t *obj, const char *path, const char *key, int nullable,
                   const char **out)
{
    if (get_str(c, obj, path, key, nullable, out))
        return -1;
    const char *s = *out;
    if (s && (strncmp(s, "0x", 2) || !s[2] || strspn(s + 2, "0123456789abcdef") != strlen(s + 2)))
        return fail(c, path, "field '%s': expected a hex string like \"0x1a2b\", got \"%.40s\"",
                    key, s);
    return 0;
}

static int get_int(struct ctx *c, json_t *obj, const char *path, const char *key, int nullable,
                   long min, long *out)
{
    json_t *v = field(c, obj, path, key);
    if (!v)
        return -1;
    if (nullable && json_is_null(v)) {
        *out = -1;
        return 0;
    }
    if (!json_is_integer(v))
        return wrong(c, path, key, nullable ? "an integer or null" : "an integer", v);
    json_int_t n = json_integer_value(v);
    if (n < min || n > 0x7fffffffffffL)
        return fail(c, path, "field '%s': %lld is out of range", key, (long long)n);
    *out = (long)n;
    return 0;
}

static int get_bool(struct ctx *c, json_t *obj, const char *path, const char *key, int *out)
{
    json_t *v = field(c, obj, path, key);
    if (!v)
        return -1;
    if (!json_is_boolean(v))
        return wrong(c, path, key, "a boolean", v);
    *out = json_is_true(v);
    return 0;
}

static int get_typed(struct ctx *c, json_t *obj, const char *path, const char *key,
                     json_type type, json_t **out)
{
    json_t *v = field(c, obj, path, key);
    if (!v)
        return -1;
    if (json_typeof(v) != type)
        return wrong(c, path, key, type == JSON_ARRAY ? "an array" : "an object", v);
    *out = v;
    return 0;
}

/* Writes "<path>.<key>[<i>]" into buf. */
static void subpath(char *buf, size_t cap, const char *path, const char *key, size_t i)
{
    snprintf(buf, cap, "%s%s%s[%zu]", path, path[0] ? "." : "", key, i);
}

/* Requires `v` to be an object (an array element named by `path`). */
static int need_object(struct ctx *c, json_t *v, const char *path)
{
    return json_is_object(v) ? 0 : fail(c, path, "expected an object, got %s", type_name(v));
}

static int load_frame(struct ctx *c, json_t *v, const char *path, struct frame *f)
{
    if (need_object(c, v, path) || get_hex(c, v, path, "pc", REQUIRED, &f->pc) ||
        get_str(c, v, path, "module", NULLABLE, &f->module) ||
        get_str(c, v, path, "build_id", NULLABLE, &f->build_id) ||
        get_hex(c, v, path, "offset", NULLABLE, &f->offset) ||
        get_str(c, v, path, "function", NULLABLE, &f->function) ||
        get_str(c, v, path, "file", NULLABLE, &f->file) ||
        get_int(c, v, path, "line", NULLABLE, 1, &f->line) ||
        get_bool(c, v, path, "inlined", &f->inlined))
        return -1;
    return 0;
}

static int load_pyframe(struct ctx *c, json_t *v, const char *path, struct pyframe *f)
{
    if (need_object(c, v, path) || get_str(c, v, path, "file", REQUIRED, &f->file) ||
        get_int(c, v, path, "line", NULLABLE, 1, &f->line) ||
        get_str(c, v, path, "function", REQUIRED, &f->function))
        return -1;
    return 0;
}

static int load_stack(struct ctx *c, json_t *v, const char *path, struct stack *s)
{
    json_t *frames = NULL;
    char sub[224];   /* path (< 160) + ".python_frames[<20 digits>]" */
    if (need_object(c, v, path) || get_str(c, v, path, "label", REQUIRED, &s->label) ||
        get_int(c, v, path, "thread", NULLABLE, 0, &s->thread) ||
        get_typed(c, v, path, "frames", JSON_ARRAY, &frames))
        return -1;
    s->nframes = json_array_size(frames);
    s->frames = report_xcalloc(s->nframes, sizeof *s->frames);
    for (size_t i = 0; i < s->nframes; i++) {
        subpath(sub, sizeof sub, path, "frames", i);
        if (load_frame(c, json_array_get(frames, i), sub, &s->frames[i]))
            return -1;
    }
    json_t *py = json_object_get(v, "python_frames");   /* optional: CPython frontend */
    if (!py)
        return 0;
    if (!json_is_array(py))
        return wrong(c, path, "python_frames", "an array", py);
    s->npyframes = json_array_size(py);
    s->pyframes = report_xcalloc(s->npyframes, sizeof *s->pyframes);
    for (size_t i = 0; i < s->npyframes; i++) {
        subpath(sub, sizeof sub, path, "python_frames", i);
        if (load_pyframe(c, json_array_get(py, i), sub, &s->pyframes[i]))
            return -1;
    }
    return 0;
}

/* The optional "repeats" (fold_repeats=1): later findings of the process folded into this
 * one; 0 when absent. */
static int load_repeats(struct ctx *c, json_t *v, const char *path, struct finding *f)
{
    f->repeats = 0;
    return json_object_get(v, "repeats") ? get_int(c, v, path, "repeats", REQUIRED, 0, &f->repeats) : 0;
}

/* The optional "test" (CPython frontend, under pytest): a string when present. */
static int load_test(struct ctx *c, json_t *v, const char *path, struct finding *f)
{
    json_t *t = json_object_get(v, "test");
    if (!t)
        return 0;
    if (!json_is_string(t))
        return wrong(c, path, "test", "a string", t);
    f->test = json_string_value(t);
    return 0;
}

static int load_object(struct ctx *c, json_t *v, const char *path, struct finding *f)
{
    json_t *o = field(c, v, path, "object");
    if (!o)
        return -1;
    if (json_is_null(o))
        return 0;
    if (!json_is_object(o))
        return wrong(c, path, "object", "an object or null", o);
    char sub[160];
    snprintf(sub, sizeof sub, "%s.object", path);
    f->has_object = 1;
    return get_str(c, o, sub, "type", REQUIRED, &f->type) ||
                   get_int(c, o, sub, "serial", REQUIRED, 1, &f->serial) ||
                   get_int(c, o, sub, "size", REQUIRED, 0, &f->size) ||
                   get_hex(c, o, sub, "address", REQUIRED, &f->object_address)
               ? -1
               : 0;
}

static int load_thread(struct ctx *c, json_t *v, const char *path, struct finding *f)
{
    f->thread_number = f->tid = -1;
    json_t *t = field(c, v, path, "thread");
    if (!t)
        return -1;
    if (json_is_null(t))
        return 0;
    if (!json_is_object(t))
        return wrong(c, path, "thread", "an object or null", t);
    char sub[160];
    snprintf(sub, sizeof sub, "%s.thread", path);
    return get_int(c, t, sub, "number", REQUIRED, 0, &f->thread_number) ||
                   get_int(c, t, sub, "tid", REQUIRED, 1, &f->tid)
               ? -1
               : 0;
}

static int load_leak(struct ctx *c, json_t *v, const char *path, struct finding *f)
{
    json_t *l = json_object_get(v, "leak");
    if (!l)
        return 0;
    char sub[160];
    snprintf(sub, sizeof sub, "%s.leak", path);
    if (need_object(c, l, sub) || get_str(c, l, sub, "shape", REQUIRED, &f->leak_shape))
        return -1;
    f->has_leak = 1;
    json_t *cycle = json_object_get(l, "cycle");
    if (!cycle)
        return 0;
    if (!json_is_array(cycle))
        return wrong(c, sub, "cycle", "an array", cycle);
    f->ncycle = json_array_size(cycle);
    f->cycle = report_xcalloc(f->ncycle, sizeof *f->cycle);
    for (size_t i = 0; i < f->ncycle; i++) {
        json_t *n = json_array_get(cycle, i);
        if (!json_is_integer(n))
            return fail(c, sub, "cycle[%zu]: expected an integer, got %s", i, type_name(n));
        f->cycle[i] = (long)json_integer_value(n);
    }
    return 0;
}

static int load_finding(struct ctx *c, json_t *v, const char *path, struct finding *f)
{
    const char *kind;
    json_t *stacks = NULL;
    if (need_object(c, v, path) || get_int(c, v, path, "id", REQUIRED, 1, &f->id) ||
        get_str(c, v, path, "kind", REQUIRED, &kind))
        return -1;
    f->json = v;
    f->kind = report_find_kind(kind);
    if (!f->kind)
        return fail(c, path, "unknown kind \"%.40s\"", kind);
    if (get_str(c, v, path, "severity", REQUIRED, &f->severity) ||
        get_str(c, v, path, "message", REQUIRED, &f->message) ||
        get_hex(c, v, path, "address", REQUIRED, &f->address) ||
        get_str(c, v, path, "summary", REQUIRED, &f->summary) || load_object(c, v, path, f) ||
        load_thread(c, v, path, f) || load_leak(c, v, path, f) || load_test(c, v, path, f) ||
        load_repeats(c, v, path, f) ||
        get_typed(c, v, path, "stacks", JSON_ARRAY, &stacks))
        return -1;
    if (strcmp(f->severity, "error") && strcmp(f->severity, "warning"))
        return fail(c, path, "field 'severity': expected \"error\" or \"warning\"");
    f->nstacks = json_array_size(stacks);
    f->stacks = report_xcalloc(f->nstacks, sizeof *f->stacks);
    char sub[160];
    for (size_t i = 0; i < f->nstacks; i++) {
        subpath(sub, sizeof sub, path, "stacks", i);
        if (load_stack(c, json_array_get(stacks, i), sub, &f->stacks[i]))
            return -1;
    }
    return 0;
}

/* An optional string field: absent -> *out stays NULL. */
static int opt_str(struct ctx *c, json_t *obj, const char *path, const char *key, const char **out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return wrong(c, path, key, "a string", v);
    *out = json_string_value(v);
    return 0;
}

static int load_weaks(struct ctx *c, json_t *v, const char *path, struct graph_node *n)
{
    json_t *ws = json_object_get(v, "weakrefs");
    if (!ws)
        return 0;
    if (!json_is_array(ws))
        return wrong(c, path, "weakrefs", "an array", ws);
    n->nweaks = json_array_size(ws);
    n->weaks = report_xcalloc(n->nweaks, sizeof *n->weaks);
    char sub[192];
    for (size_t i = 0; i < n->nweaks; i++) {
        json_t *w = json_array_get(ws, i);
        struct graph_weak *g = &n->weaks[i];
        subpath(sub, sizeof sub, path, "weakrefs", i);
        if (need_object(c, w, sub) || get_str(c, w, sub, "type", NULLABLE, &g->type) ||
            get_hex(c, w, sub, "address", NULLABLE, &g->address) ||
            get_str(c, w, sub, "callback", REQUIRED, &g->callback) ||
            get_str(c, w, sub, "api", NULLABLE, &g->api) ||
            get_int(c, w, sub, "finding", NULLABLE, 1, &g->finding))
            return -1;
    }
    return 0;
}

static int load_node(struct ctx *c, json_t *v, const char *path, struct graph_node *n)
{
    if (need_object(c, v, path) || get_int(c, v, path, "serial", REQUIRED, 1, &n->serial) ||
        get_str(c, v, path, "type", REQUIRED, &n->type) ||
        get_int(c, v, path, "size", REQUIRED, 0, &n->size) ||
        get_hex(c, v, path, "address", REQUIRED, &n->address) ||
        get_str(c, v, path, "role", REQUIRED, &n->role) ||
        get_int(c, v, path, "finding", NULLABLE, 1, &n->finding) ||
        opt_str(c, v, path, "frontend", &n->frontend) || opt_str(c, v, path, "created", &n->created) ||
        load_weaks(c, v, path, n))
        return -1;
    json_t *w = json_object_get(v, "weakref");
    if (!w)
        return 0;
    char sub[160];
    snprintf(sub, sizeof sub, "%s.weakref", path);
    n->is_weakref = 1;
    return need_object(c, w, sub) || get_int(c, w, sub, "referent", NULLABLE, 1, &n->referent) ||
                   get_bool(c, w, sub, "callback", &n->callback)
               ? -1
               : 0;
}

static int load_edge(struct ctx *c, json_t *v, const char *path, long edge[2])
{
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(json_array_get(v, 0)) ||
        !json_is_integer(json_array_get(v, 1)))
        return fail(c, path, "expected [holder serial, held serial]");
    edge[0] = (long)json_integer_value(json_array_get(v, 0));
    edge[1] = (long)json_integer_value(json_array_get(v, 1));
    return 0;
}

static int load_graph(struct ctx *c, json_t *root, struct report *r)
{
    json_t *g = json_object_get(root, "leak_graph"), *objects = NULL, *edges = NULL;
    if (!g)
        return 0;
    const char *path = "leak_graph";
    char sub[96];
    if (need_object(c, g, path) || get_typed(c, g, path, "objects", JSON_ARRAY, &objects) ||
        get_typed(c, g, path, "edges", JSON_ARRAY, &edges) ||
        get_bool(c, g, path, "truncated", &r->graph_truncated))
        return -1;
    r->has_graph = 1;
    r->nnodes = json_array_size(objects);
    r->nodes = report_xcalloc(r->nnodes, sizeof *r->nodes);
    for (size_t i = 0; i < r->nnodes; i++) {
        subpath(sub, sizeof sub, path, "objects", i);
        if (load_node(c, json_array_get(objects, i), sub, &r->nodes[i]))
            return -1;
    }
    r->nedges = json_array_size(edges);
    r->edges = report_xcalloc(r->nedges, sizeof *r->edges);
    for (size_t i = 0; i < r->nedges; i++) {
        subpath(sub, sizeof sub, path, "edges", i);
        if (load_edge(c, json_array_get(edges, i), sub, r->edges[i]))
            return -1;
    }
    return 0;
}

static int load_header(struct ctx *c, json_t *root, struct report *r)
{
    const char *format;
    json_t *version, *tool = NULL, *program = NULL, *findings = NULL, *dummy = NULL;
    if (!json_is_object(root))
        return fail(c, "", "expected a JSON object (a wref-check report), got %s", type_name(root));
    if (get_str(c, root, "", "format", REQUIRED, &format))
        return -1;
    if (strcmp(format, "wref-check-report"))
        return fail(c, "", "field 'format': expected \"wref-check-report\", got \"%.40s\"", format);
    version = json_object_get(root, "version");
    if (!json_is_integer(version) || json_integer_value(version) != 1)
        return fail(c, "", "unsupported report version (field 'version'): this tool reads version 1");
    return get_typed(c, root, "", "tool", JSON_OBJECT, &tool) ||
                   get_str(c, tool, "tool", "version", REQUIRED, &r->tool_version) ||
                   get_typed(c, root, "", "program", JSON_OBJECT, &program) ||
                   get_str(c, program, "program", "path", REQUIRED, &r->program) ||
                   get_int(c, program, "program", "pid", REQUIRED, 1, &r->pid) ||
                   get_int(c, program, "program", "ppid", REQUIRED, 0, &r->ppid) ||
                   get_str(c, program, "program", "cwd", REQUIRED, &r->cwd) ||
                   get_str(c, program, "program", "start_time", REQUIRED, &r->start_time) ||
                   get_typed(c, program, "program", "argv", JSON_ARRAY, &dummy) ||
                   get_typed(c, root, "", "options", JSON_OBJECT, &dummy) ||
                   get_typed(c, root, "", "summary", JSON_OBJECT, &dummy) ||
                   get_bool(c, root, "", "complete", &r->complete) ||
                   get_typed(c, root, "", "findings", JSON_ARRAY, &findings)
               ? -1
               : 0;
}

static int load_root(struct ctx *c, json_t *root, struct report *r)
{
    if (load_header(c, root, r))
        return -1;
    json_t *findings = json_object_get(root, "findings");
    r->nfindings = json_array_size(findings);
    r->findings = report_xcalloc(r->nfindings, sizeof *r->findings);
    char path[64];
    for (size_t i = 0; i < r->nfindings; i++) {
        r->findings[i].report = r;
        subpath(path, sizeof path, "", "findings", i);
        if (load_finding(c, json_array_get(findings, i), path, &r->findings[i]))
            return -1;
        report_fingerprint(&r->findings[i]);
    }
    return load_graph(c, root, r);
}

int wref_report_load_buffer(const char *data, size_t len, const char *name,
                            struct report **out, char *err, size_t errlen)
{
    struct ctx c = {name, err, errlen};
    json_error_t je;
    *out = NULL;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (je.line > 0)
            return fail(&c, "", "line %d column %d: %s", je.line, je.column, je.text);
        return fail(&c, "", "%s", je.text);
    }
    struct report *r = report_xcalloc(1, sizeof *r);
    r->name = report_xstrdup(name);
    r->root = root;
    if (load_root(&c, root, r)) {
        report_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

/* ---- files -------------------------------------------------------------------------------- */

/* Reads all of `fp` into a malloc'ed buffer; returns NULL on a read error. */
static char *slurp(FILE *fp, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = report_xmalloc(cap);
    for (;;) {
        n += fread(buf + n, 1, cap - n, fp);
        if (n < cap)
            break;
        char *bigger = realloc(buf, cap *= 2);
        if (!bigger) {
            free(buf);
            report_error("out of memory");
            exit(REPORT_EXIT_ERROR);
        }
        buf = bigger;
    }
    if (ferror(fp)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static void append_report(struct report ***reports, size_t *n, struct report *r)
{
    struct report **grown = realloc(*reports, (*n + 1) * sizeof **reports);
    if (!grown) {
        report_error("out of memory");
        exit(REPORT_EXIT_ERROR);
    }
    grown[(*n)++] = r;
    *reports = grown;
}

/* Loads one file (or stdin for "-"). Returns 0, or 1 after a warning naming the file when
 * it cannot be read or is not a valid report (the caller skips it). */
static int load_file(const char *path, struct report ***reports, size_t *nreports)
{
    int is_stdin = !strcmp(path, "-");
    const char *name = is_stdin ? "<stdin>" : path;
    FILE *fp = is_stdin ? stdin : fopen(path, "rb");
    if (!fp) {
        report_warning("%s: %s (input skipped)", name, strerror(errno));
        return 1;
    }
    size_t len = 0;
    char *data = slurp(fp, &len);
    int read_errno = errno;
    if (!is_stdin)
        fclose(fp);
    if (!data) {
        report_warning("%s: read error: %s (input skipped)", name, strerror(read_errno));
        return 1;
    }
    char err[512];
    struct report *r;
    int rc = wref_report_load_buffer(data, len, name, &r, err, sizeof err);
    free(data);
    if (rc) {
        report_warning("%s (input skipped)", err);
        return 1;
    }
    append_report(reports, nreports, r);
    return 0;
}

static int is_json_name(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && !strcmp(name + n - 5, ".json") && name[0] != '.';
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads every *.json of the directory; returns the number of inputs skipped (a directory that
 * cannot be read, or a file that cannot be loaded, counts one each). */
static int load_dir(const char *path, struct report ***reports, size_t *nreports)
{
    DIR *d = opendir(path);
    if (!d) {
        report_warning("%s: %s (input skipped)", path, strerror(errno));
        return 1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_json_name(e->d_name))
            continue;
        char **grown = realloc(names, (n + 1) * sizeof *names);
        if (!grown) {
            report_error("out of memory");
            exit(REPORT_EXIT_ERROR);
        }
        names = grown;
        names[n++] = report_join(path, e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);   /* names is NULL when n is 0 */
    int skipped = 0;
    for (size_t i = 0; i < n; i++) {
        skipped += load_file(names[i], reports, nreports);
        free(names[i]);
    }
    free(names);
    if (n == 0)
        report_warning("%s: no *.json report in this directory", path);
    return skipped;
}

int report_load_path(const char *path, struct report ***reports, size_t *nreports)
{
    struct stat st;
    if (strcmp(path, "-") && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return load_dir(path, reports, nreports);
    return load_file(path, reports, nreports);
}
