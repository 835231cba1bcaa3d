/* model.h: `wref-check report` — loaded reports, findings, frames, merged groups.
 *
 * The model is a typed, validated view over the jansson tree of each report
 * (docs/report-schema.json). Every `const char *` below points into that tree and lives as
 * long as the report; a NULL string is a JSON null. Integers that the schema allows to be
 * null are -1 when null (all valid values are >= 0).
 *
 * Table of contents (each file's contract is at its top):
 *   model.c          kinds table, frame classification, freeing
 *   load.c           bytes / files / directories -> struct report, strict validation
 *   fingerprint.c    finding -> stable fingerprint and its summary
 *   merge.c          reports -> groups of findings with the same fingerprint
 *   text.c sarif.c junit.c github.c graph.c json.c   one output format each
 *   symbolize.c      fills function/file/line offline with libdwfl
 *   suppressions.c   --gen-suppressions
 *   cli.c            report_main: options and dispatch
 */
#ifndef WREF_TOOLS_REPORT_MODEL_H
#define WREF_TOOLS_REPORT_MODEL_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#define REPORT_EXIT_CLEAN 0
#define REPORT_EXIT_FINDINGS 1
#define REPORT_EXIT_ERROR 2
#define REPORT_EXIT_SKIPPED 3   /* some inputs were skipped; the rest was written */

struct frame {
    const char *pc, *module, *build_id, *offset, *function, *file;
    long line;   /* -1: null */
    int inlined;
};

/* A Python frame (CPython frontend: a stack's python_frames, innermost first). */
struct pyframe {
    const char *file, *function;
    long line;   /* -1: null */
};

struct stack {
    const char *label;   /* "where" or a history label */
    long thread;         /* T<n>; -1: null */
    struct frame *frames;
    size_t nframes;
    struct pyframe *pyframes;   /* npyframes 0 when the stack has none */
    size_t npyframes;
};

struct kind {
    const char *id;          /* "dangling-borrow" */
    const char *name;        /* "DanglingBorrow" (SARIF rule name) */
    const char *short_desc;
    const char *full_desc;
    const char *level;       /* SARIF default level: "error" or "warning" */
};

struct finding {
    const struct report *report;
    json_t *json;             /* the finding's object in the report's tree */
    long id;
    const struct kind *kind;
    const char *severity;     /* "error" or "warning" */
    const char *message, *address, *summary;
    const char *test;         /* the pytest test that was running, or NULL */
    long repeats;             /* in-process repeats folded into it ("repeats"; 0 when absent) */
    int has_object;
    const char *type;         /* object fields, when has_object */
    long serial, size;
    const char *object_address;
    long thread_number, tid;  /* -1: null */
    struct stack *stacks;
    size_t nstacks;
    int has_leak;
    const char *leak_shape;
    long *cycle;              /* serials, first repeated at the end */
    size_t ncycle;
    char fingerprint[17];     /* fingerprint.c: 16 hex digits */
    char *fp_summary;         /* fingerprint.c: "kind in f (file) < g (file)", owned */
};

/* A weak reference known only by its pending callback (leak_graph objects[].weakrefs). */
struct graph_weak {
    const char *type, *address;   /* NULL when null */
    const char *callback, *api;   /* api: NULL when null */
    long finding;                 /* -1: null */
};

struct graph_node {
    long serial, size, finding;   /* finding: -1 when null */
    const char *type, *address, *role;
    const char *frontend;         /* NULL: the wref frontend's (edges and referents use its serials) */
    const char *created;          /* where it was created, or NULL */
    int is_weakref;
    long referent;                /* -1: null (cleared) */
    int callback;
    struct graph_weak *weaks;     /* owned */
    size_t nweaks;
};

struct report {
    char *name;                   /* file name as given, for messages; owned */
    size_t index;                 /* position in the merge (merge.c) */
    json_t *root;                 /* owned */
    const char *program, *cwd, *start_time, *tool_version;
    long pid, ppid;
    int complete;
    struct finding *findings;
    size_t nfindings;
    int has_graph, graph_truncated;
    struct graph_node *nodes;
    size_t nnodes;
    long (*edges)[2];
    size_t nedges;
};

/* One de-duplicated finding: every occurrence has the same fingerprint. */
struct group {
    struct finding **occ;         /* in load order; occ[0] is the first occurrence */
    size_t nocc;
    size_t count;                 /* occurrences: nocc plus their in-process repeats */
    size_t nprocesses;            /* distinct reports among the occurrences */
};

struct merged {
    struct report **reports;
    size_t nreports;
    struct group *groups;         /* in order of first occurrence */
    size_t ngroups;
    size_t noccurrences;          /* every finding, in-process repeats included */
};

/* Options every output format may read (cli.c fills them). */
struct out_opts {
    FILE *out;
    int color;                    /* text: ANSI colours */
    const char *source_root;      /* absolute, normalized, without trailing '/', or NULL */
    const char *help_uri_base;    /* sarif: rules' helpUri = base#kind; NULL: none */
    const char *information_uri;  /* sarif: the driver's informationUri; NULL: none */
};

/* ---- model.c ---- */
extern const struct kind report_kinds[];
extern const size_t report_nkinds;
const struct kind *report_find_kind(const char *id);
/* Returns the last path component of `path` ("" for NULL). */
const char *report_basename(const char *path);
/* A frame of user code: it has a function, and its module is not libwref*, libc, ld-linux,
 * libpthread or the CPython interpreter (libpython*, or an executable python*: the checker's
 * own rule), so that an extension's bug is named after the extension. */
int report_is_user_frame(const struct frame *f);
/* The innermost Python frame of `s` with a real file (not "<frozen ...>", "<string>"); with
 * `need_line`, the innermost that also has a line. NULL if none. */
const struct pyframe *report_first_pyframe(const struct stack *s, int need_line);
/* The file of Python frame `p` of finding `f`, normalized and, when relative, joined to the
 * process's cwd (where CPython resolved it). Malloc'ed. */
char *report_pyframe_path(const struct finding *f, const struct pyframe *p);
/* The stack a finding is located by: "where" when present, else the first; NULL if none. */
const struct stack *report_main_stack(const struct finding *f);
/* The first user frame of `s` (NULL if none); with `need_line`, the first that also has a
 * file and a line. */
const struct frame *report_first_user_frame(const struct stack *s, int need_line);
void report_free(struct report *r);
void *report_xmalloc(size_t n);
void *report_xcalloc(size_t n, size_t size);
char *report_xstrdup(const char *s);
/* Writes a one-line error "wref-check report: ..." to stderr (the run then fails). */
void report_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes a one-line warning "==PID==WARNING: wref-check: ..." to stderr (the run goes on):
 * the prefix every warning of the tool and of the checker has. */
void report_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Returns prefix + `path` with everything but RFC 3986 unreserved characters and '/'
 * percent-encoded (malloc'ed): report_uri_encode("file://", "/a b") is "file:///a%20b". */
char *report_uri_encode(const char *prefix, const char *path);
/* Returns dir + "/" + name (malloc'ed) with exactly one '/' between them, whatever slashes
 * `dir` ends with ("d/" + "x" is "d/x", "/" + "x" is "/x"). */
char *report_join(const char *dir, const char *name);
/* Returns `path` lexically normalized (malloc'ed): no "." segment, no "//", every ".." that
 * follows a named segment removed with it ("a/b/../c" -> "a/c", "/x/../../y" -> "/y"). A
 * relative path keeps the leading ".." it cannot resolve ("../a"); "" and "." become ".".
 * Symbolic links are not consulted (the files need not exist here). */
char *report_normalize(const char *path);
/* "Node#1 -> Node#2 -> Node#1": the finding's reference cycle with each member's type (from
 * its report's leak_graph, or the finding's object), "#N" when the type is unknown; NULL when
 * the finding has no cycle. Malloc'ed. */
char *report_cycle_text(const struct finding *f);

/* ---- load.c ---- */
/* Parses and validates one report held in data[0..len). On success stores a new report in
 * *out and returns 0. On failure returns -1 and writes a one-line message naming `name` and
 * what is wrong ("r.json: line 3 column 5: ..." or "r.json: findings[0].kind: ...") into
 * err[0..errlen). Never crashes on any input (fuzz target entry point). */
int wref_report_load_buffer(const char *data, size_t len, const char *name,
                            struct report **out, char *err, size_t errlen);
/* Loads FILE, every *.json in DIR (sorted by name), or stdin for "-", appending to
 * *reports. Returns the number of inputs skipped, each after one warning that names it (a
 * file that cannot be read or is not a valid report); 0 when all loaded. A directory without
 * *.json gets a warning and adds nothing (the caller fails a run that read no report). */
int report_load_path(const char *path, struct report ***reports, size_t *nreports);

/* ---- fingerprint.c ---- */
/* Fills f->fingerprint and f->fp_summary. */
void report_fingerprint(struct finding *f);

/* ---- merge.c ---- */
void report_merge(struct merged *m, struct report **reports, size_t nreports);
void report_merged_free(struct merged *m);

/* ---- output formats: each returns 0, or -1 after printing an error ---- */
int report_write_text(const struct merged *m, const struct out_opts *o);
int report_write_sarif(const struct merged *m, const struct out_opts *o);
int report_write_junit(const struct merged *m, const struct out_opts *o);
int report_write_github(const struct merged *m, const struct out_opts *o);
int report_write_dot(const struct merged *m, const struct out_opts *o);
int report_write_svg(const struct merged *m, const struct out_opts *o);
int report_write_json(const struct merged *m, const struct out_opts *o);
int report_write_suppressions(const struct merged *m, const struct out_opts *o);
/* symbolize.c: rewrites each report's frames in its tree; then writes the tree(s). */
int report_symbolize(struct report **reports, size_t nreports);

/* text.c: the text of one group (no colour), for JUnit failures. Returns a malloc'ed string. */
char *report_group_text(const struct merged *m, const struct group *g);
/* Path of `file` relative to `root` when under it, else NULL (pointer into `file`). */
const char *report_relative(const char *file, const char *root);

/* ---- cli.c ---- */
int report_main(int argc, char **argv);

#endif
