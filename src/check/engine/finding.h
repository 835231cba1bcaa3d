/* finding.h: what a finding is, as every report writer sees it (report.c, json.c,
 * suppress.c) and every finder fills it (census.c, heap.c, the frontends). Data only, plus
 * the finding's type name (finding.c). */
#ifndef WREF_CHECK_ENGINE_FINDING_H
#define WREF_CHECK_ENGINE_FINDING_H

#include "kinds.h"
#include "registry.h"
#include "stack.h"
#include "symbolize.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A labelled stack of a finding: "freed by thread T1 here". */
typedef struct wref__labelled {
    const char *label;       /* "destroyed", "created", ... */
    wref__stack_id stack;
    unsigned tno;            /* thread number, or ~0u when unknown */
} wref__labelled;

/* Interpreter frames (Python's), kept by a frontend and shown after the C frames of a stack.
 * The engine only prints them: the frontend stores them as text, so reporting never touches
 * an interpreter object. */
typedef struct wref__lang_frame {
    const char *file;        /* never NULL */
    int line;                /* 0 when unknown */
    const char *function;    /* never NULL */
} wref__lang_frame;
/* Set by a frontend (python/): points *frames at the frames of its stack `id`, innermost
 * first, and returns their count; 0 for an unknown id. The frames stay valid until exit. */
extern size_t (*wref__lang_stack_get)(uint32_t id, const wref__lang_frame **frames);
/* Set by a frontend (python/): true for a C frame of the language runtime itself (the
 * interpreter), which the SUMMARY line passes over to name the extension's function. */
extern bool (*wref__lang_frame_is_runtime)(const struct wref__frame_info *fi);

#define WREF__MAX_STACKS 6

/* What a leak finding covers (census.c), for the JSON report and leak_format=lsan. */
enum wref__leak_shape { WREF__LEAK_DIRECT, WREF__LEAK_INDIRECT, WREF__LEAK_CYCLE };
typedef struct wref__leak_info {
    enum wref__leak_shape shape;
    size_t count, bytes;                   /* the objects of the finding itself */
    size_t indirect_count, indirect_bytes; /* reachable only from them */
    const uint64_t *cycle;                 /* cycle: serials along it, first repeated last */
    size_t cycle_len;
} wref__leak_info;

typedef struct wref__finding {
    enum wref__kind kind;
    const char *what;                /* one sentence after the kind */
    const wref__rec_copy *object;    /* may be NULL (invalid-object) */
    uintptr_t address;               /* the pointer involved */
    wref__stack_id where;            /* where it happened (0: at exit) */
    wref__labelled history[WREF__MAX_STACKS];
    unsigned n_history;
    const char *extra;               /* optional extra lines (leak tables, cycles) */
    const wref__leak_info *leak;     /* leak findings only */
    uint32_t lang_where;             /* interpreter frames of `where` (wref__lang_stack_get); 0: none */
    uint32_t lang_history[WREF__MAX_STACKS];   /* ... and of each history stack */
    const char *type_name;           /* the object's type when its record has no type token (Python's); or NULL */
    const char *test_name;           /* the test that was running (PYTEST_CURRENT_TEST); or NULL */
} wref__finding;

const char *wref__finding_type_name(const wref__finding *f);   /* f->type_name, else the record's */

/* A finding's context: what makes two findings the same report (report.c folds a repeat of a
 * printed one, fold_repeats=1). Equal contexts: the same kind, the same stacks (`where` and
 * each history stack in order, each named by a key of its frames that report.c gives: the
 * code they are in, up to the C library's process or thread entry; and their interpreter
 * stacks' ids) and the same strings (object type, history labels, test name: compared by a
 * 64-bit hash, a collision of which would also need equal stacks). The objects, addresses,
 * threads and sentences may differ. Unused slots are zero, so a context compares and hashes
 * as bytes. */
typedef struct wref__context {
    uint64_t strings;                         /* FNV-1a 64 of type name, labels, test name */
    uint32_t kind, n_history;
    uint64_t where;                           /* stack keys; 0: no stack */
    uint64_t history[WREF__MAX_STACKS];
    uint32_t lang_where;
    uint32_t lang_history[WREF__MAX_STACKS];
} wref__context;

/* f's context; stack_keys[0] is the key of f->where, stack_keys[1 + i] that of history[i]. */
void wref__context_of(const wref__finding *f, const uint64_t *stack_keys, wref__context *out);
uint64_t wref__context_hash(const wref__context *c);

/* A stack resolved for output: its frames symbolized (inlined frames expanded). */
typedef struct wref__rstack {
    const char *label;               /* "where" for the place of the finding */
    unsigned tno;                    /* thread number, or ~0u */
    size_t n;
    struct wref__frame_info *frames; /* n frames, owned by report.c */
    size_t n_lang;                   /* interpreter frames (wref__lang_stack_get), not owned */
    const wref__lang_frame *lang;
} wref__rstack;

#endif /* WREF_CHECK_ENGINE_FINDING_H */
