/* sarif.c: --format=sarif, SARIF 2.1.0 for code scanning (validated by Microsoft's SARIF
 * Multitool in tests/report).
 *
 * Contract: one run; tool.driver "wref-check" with one rule per kind of report_kinds (id =
 * kind); one result per group: level from the finding's severity, location = the first user
 * frame with file and line of the main stack, else (CPython frontend) its innermost Python
 * frame with file and line (a relative file joined to the process's cwd), relatedLocations =
 * the same for each other stack (message = its label), stacks = every stack, each followed by
 * a stack "<label>: Python frames" when it has Python frames, partialFingerprints
 * {"wrefFingerprint/v1": fingerprint}, counts in properties; a leak's reference cycle, with
 * its type names, ends the message and is properties.cycle; the pytest test that was running
 * is properties.test.
 * Artifact URIs: every file path is normalized first (report_normalize: no "." or ".."
 * segment, no "//"). Under --source-root: relative to it with uriBaseId SRCROOT; other
 * absolute paths: file:// URIs; relative paths: relative references, except one that still
 * climbs out with k leading ".." segments (libc's "../sysdeps/..." is relative to a build
 * directory the report does not name): its URI is the rest of the path, relative to the
 * uriBaseId <MODULE>_BUILD_UP<k> ("LIBC_SO_6_BUILD_UP1": k levels above the directory the
 * frame's module was compiled in), which originalUriBaseIds describes without a uri (unknown
 * to the report). A climbing path with no module, or nothing after its "..", gets no
 * physicalLocation; its "file:line" stays in the location's message.
 * URLs: a rule has helpUri only with --help-uri-base (URI#kind) and only for a kind that
 * docs/reports.md has a section for (not the CPython frontend's own kinds, which docs/python.md
 * describes without an anchor of their own), the driver informationUri only with
 * --information-uri; nothing is made up. */
#include "model.h"

#include <stdlib.h>
#include <string.h>

#ifndef WREF_VERSION
#define WREF_VERSION "unknown"
#endif

static json_t *text_message(const char *text)
{
    return json_pack("{s:s}", "text", text);
}

/* The uriBaseIds of climbing paths used so far (id -> description), for originalUriBaseIds. */
static json_t *build_bases;

/* The artifactLocation of the normalized path `norm`. */
static json_t *artifact(const char *norm, const char *root)
{
    const char *rel = report_relative(norm, root);
    char *uri = report_uri_encode(rel ? "" : norm[0] == '/' ? "file://" : "", rel ? rel : norm);
    json_t *a = json_pack("{s:s}", "uri", uri);
    free(uri);
    if (rel)
        json_object_set_new(a, "uriBaseId", json_string("SRCROOT"));
    return a;
}

/* The artifactLocation of a relative `norm` that starts with `up` ".." segments, in `module`:
 * the rest relative to <MODULE>_BUILD_UP<up>; NULL when nothing follows the "..". */
static json_t *climbing_artifact(const char *norm, unsigned up, const char *module)
{
    const char *rest = norm + 3 * up;   /* past "../" up times */
    if (!*rest)
        return NULL;
    const char *base = report_basename(module);
    char id[300];
    size_t n = 0;
    for (const char *c = base; *c && n < 200; c++)
        id[n++] = (*c >= 'a' && *c <= 'z') ? (char)(*c - 'a' + 'A')
                  : ((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')) ? *c : '_';
    snprintf(id + n, sizeof id - n, "_BUILD_UP%u", up);
    if (!build_bases)
        build_bases = json_object();
    if (!json_object_get(build_bases, id)) {
        char *text = NULL;
        if (asprintf(&text, "%u level(s) above the directory %s was compiled in (its debug information names "
                     "files relative to it); not known to the report", up, base) < 0)
            text = NULL;
        json_object_set_new(build_bases, id, json_pack("{s:{s:s}}", "description", "text", text ? text : base));
        free(text);
    }
    char *uri = report_uri_encode("", rest);
    json_t *a = json_pack("{s:s,s:s}", "uri", uri, "uriBaseId", id);
    free(uri);
    return a;
}

/* A physicalLocation for a frame with a file (region only when it has a line); NULL when the
 * file cannot be a URI (a climbing path without module). */
static json_t *physical(const struct frame *f, const char *root)
{
    char *norm = report_normalize(f->file);
    unsigned up = 0;
    while (norm[0] != '/' && (!strncmp(norm + 3 * up, "../", 3) || !strcmp(norm + 3 * up, "..")))
        up++;
    json_t *a = !up ? artifact(norm, root) : f->module ? climbing_artifact(norm, up, f->module) : NULL;
    free(norm);
    if (!a)
        return NULL;
    json_t *p = json_pack("{s:o}", "artifactLocation", a);
    if (f->line > 0)
        json_object_set_new(p, "region", json_pack("{s:I}", "startLine", (json_int_t)f->line));
    return p;
}

static json_t *frame_location(const struct frame *f, const char *root)
{
    json_t *loc = json_object();
    json_t *phys = f->file ? physical(f, root) : NULL;
    if (phys)
        json_object_set_new(loc, "physicalLocation", phys);
    if (f->function)
        json_object_set_new(loc, "logicalLocations",
                            json_pack("[{s:s,s:s}]", "name", f->function, "kind", "function"));
    char where[640];
    int n = snprintf(where, sizeof where, "%s+%s", report_basename(f->module), f->offset ? f->offset : f->pc);
    if (f->file && !phys && n > 0 && (size_t)n < sizeof where) {
        if (f->line > 0)
            snprintf(where + n, sizeof where - (size_t)n, " %s:%ld", f->file, f->line);
        else
            snprintf(where + n, sizeof where - (size_t)n, " %s", f->file);
    }
    json_object_set_new(loc, "message", text_message(where));
    return loc;
}

/* A physicalLocation for Python frame `p` of `f` (its file joined to the process's cwd); NULL
 * for a file that is not one ("<frozen ...>", "<string>") or cannot be a URI. */
static json_t *py_physical(const struct finding *f, const struct pyframe *p, const char *root)
{
    if (!p->file[0] || p->file[0] == '<')
        return NULL;
    char *path = report_pyframe_path(f, p);
    struct frame as_c = {.file = path, .line = p->line, .function = p->function};
    json_t *phys = physical(&as_c, root);
    free(path);
    return phys;
}

/* The location of a stack's C frame with a file and line, else of its Python frame with one
 * (the CPython frontend's findings without an extension frame); NULL when it has neither. */
static json_t *stack_physical(const struct finding *f, const struct stack *s, const char *root)
{
    const struct frame *c = report_first_user_frame(s, 1);
    const struct pyframe *py = c ? NULL : report_first_pyframe(s, 1);
    return c ? physical(c, root) : py ? py_physical(f, py, root) : NULL;
}

/* The stack's Python frames as a stack of their own, innermost first ("<label>: Python frames"). */
static json_t *sarif_pystack(const struct finding *f, const struct stack *s, const char *root)
{
    json_t *frames = json_array();
    for (size_t i = 0; i < s->npyframes; i++) {
        const struct pyframe *p = &s->pyframes[i];
        json_t *loc = json_object();
        json_t *phys = py_physical(f, p, root);
        if (phys)
            json_object_set_new(loc, "physicalLocation", phys);
        json_object_set_new(loc, "logicalLocations", json_pack("[{s:s,s:s}]", "name", p->function, "kind", "function"));
        char *where = NULL;
        if ((p->line > 0 ? asprintf(&where, "%s:%ld in %s", p->file, p->line, p->function)
                         : asprintf(&where, "%s in %s", p->file, p->function)) < 0)
            where = NULL;
        json_object_set_new(loc, "message", text_message(where ? where : p->function));
        free(where);
        json_t *fr = json_pack("{s:o}", "location", loc);
        if (s->thread >= 0)
            json_object_set_new(fr, "threadId", json_integer(s->thread));
        json_array_append_new(frames, fr);
    }
    char *label = NULL;
    if (asprintf(&label, "%s: Python frames", s->label) < 0)
        label = NULL;
    json_t *st = json_pack("{s:o,s:o}", "message", text_message(label ? label : s->label), "frames", frames);
    free(label);
    return st;
}

static json_t *sarif_stack(const struct stack *s, const char *root)
{
    json_t *frames = json_array();
    for (size_t i = 0; i < s->nframes; i++) {
        const struct frame *f = &s->frames[i];
        json_t *fr = json_pack("{s:o}", "location", frame_location(f, root));
        if (f->module)
            json_object_set_new(fr, "module", json_string(f->module));
        if (s->thread >= 0)
            json_object_set_new(fr, "threadId", json_integer(s->thread));
        json_array_append_new(frames, fr);
    }
    return json_pack("{s:o,s:o}", "message", text_message(s->label), "frames", frames);
}

/* The kinds docs/reports.md has no "## <kind>" section for (tests/report checks the headings). */
static int documented_in_reports_md(const char *id)
{
    return strcmp(id, "dangling-weakref") != 0;
}

static json_t *rules(const char *help_uri_base)
{
    json_t *a = json_array();
    for (size_t i = 0; i < report_nkinds; i++) {
        const struct kind *k = &report_kinds[i];
        json_t *rule = json_pack("{s:s,s:s,s:o,s:o}", "id", k->id, "name", k->name,
                                 "shortDescription", text_message(k->short_desc),
                                 "fullDescription", text_message(k->full_desc));
        if (help_uri_base && documented_in_reports_md(k->id)) {
            char *help = NULL;
            if (asprintf(&help, "%s#%s", help_uri_base, k->id) >= 0) {
                json_object_set_new(rule, "helpUri", json_string(help));
                free(help);
            }
        }
        json_object_set_new(rule, "help", text_message(k->full_desc));
        json_object_set_new(rule, "defaultConfiguration", json_pack("{s:s}", "level", k->level));
        json_array_append_new(a, rule);
    }
    return a;
}

static json_t *related(const struct finding *f, const struct stack *main_stack, const char *root)
{
    json_t *a = json_array();
    for (size_t i = 0; i < f->nstacks; i++) {
        if (&f->stacks[i] == main_stack)
            continue;
        json_t *phys = stack_physical(f, &f->stacks[i], root);
        if (!phys)
            continue;
        json_array_append_new(a, json_pack("{s:I,s:o,s:o}", "id", (json_int_t)json_array_size(a),
                                           "message", text_message(f->stacks[i].label),
                                           "physicalLocation", phys));
    }
    return a;
}

static json_t *result(const struct group *g, const char *root)
{
    const struct finding *f = g->occ[0];
    const struct stack *ms = report_main_stack(f);
    char *text = NULL, *cycle = report_cycle_text(f);
    if (asprintf(&text, "%s: %s%s%s", f->fp_summary, f->message, cycle ? "; reference cycle: " : "",
                 cycle ? cycle : "") < 0)
        text = NULL;
    json_t *stacks = json_array();
    for (size_t i = 0; i < f->nstacks; i++) {
        json_array_append_new(stacks, sarif_stack(&f->stacks[i], root));
        if (f->stacks[i].npyframes)
            json_array_append_new(stacks, sarif_pystack(f, &f->stacks[i], root));
    }
    json_t *r = json_pack("{s:s,s:I,s:s,s:o}", "ruleId", f->kind->id, "ruleIndex",
                          (json_int_t)(f->kind - report_kinds), "level", f->severity, "message",
                          text_message(text ? text : f->message));
    free(text);
    json_t *at_phys = ms ? stack_physical(f, ms, root) : NULL;
    if (at_phys)
        json_object_set_new(r, "locations", json_pack("[{s:o}]", "physicalLocation", at_phys));
    json_object_set_new(r, "partialFingerprints", json_pack("{s:s}", "wrefFingerprint/v1", f->fingerprint));
    json_object_set_new(r, "relatedLocations", related(f, ms, root));
    json_object_set_new(r, "stacks", stacks);
    json_t *props = json_pack("{s:I,s:I,s:s,s:I,s:s}", "occurrenceCount", (json_int_t)g->count,
                              "processCount", (json_int_t)g->nprocesses, "program",
                              f->report->program, "pid", (json_int_t)f->report->pid, "fingerprintSummary",
                              f->fp_summary);
    if (f->has_object)
        json_object_set_new(props, "object", json_pack("{s:s,s:I,s:I}", "type", f->type, "serial",
                                                       (json_int_t)f->serial, "size", (json_int_t)f->size));
    if (cycle)
        json_object_set_new(props, "cycle", json_string(cycle));
    if (f->test)
        json_object_set_new(props, "test", json_string(f->test));
    free(cycle);
    json_object_set_new(r, "properties", props);
    return r;
}

int report_write_sarif(const struct merged *m, const struct out_opts *o)
{
    json_t *results = json_array();
    for (size_t i = 0; i < m->ngroups; i++)
        json_array_append_new(results, result(&m->groups[i], o->source_root));
    json_t *driver = json_pack("{s:s,s:s}", "name", "wref-check", "version", WREF_VERSION);
    if (o->information_uri)
        json_object_set_new(driver, "informationUri", json_string(o->information_uri));
    json_object_set_new(driver, "rules", rules(o->help_uri_base));
    json_t *run = json_pack("{s:{s:o},s:o}", "tool", "driver", driver, "results", results);
    json_t *bases = build_bases ? build_bases : json_object();
    build_bases = NULL;
    if (o->source_root) {
        char *dir = report_uri_encode("file://", o->source_root);
        size_t n = strlen(dir);
        char *with_slash = report_xmalloc(n + 2);
        snprintf(with_slash, n + 2, "%s/", dir);
        json_object_set_new(bases, "SRCROOT", json_pack("{s:s}", "uri", with_slash));
        free(dir);
        free(with_slash);
    }
    if (json_object_size(bases))
        json_object_set_new(run, "originalUriBaseIds", bases);
    else
        json_decref(bases);
    json_t *doc = json_pack("{s:s,s:s,s:[o]}", "$schema", "https://json.schemastore.org/sarif-2.1.0.json",
                            "version", "2.1.0", "runs", run);
    int rc = json_dumpf(doc, o->out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', o->out);
    json_decref(doc);
    return rc ? -1 : 0;
}
