/* checker.h: what the checker's files share, grouped by the file that defines it.
 *
 * Data flow: the runtime calls hooks (hooks.h) -> hooks.c decides what is a finding, using
 * the registry (one record per object), the heap (memory, redzones, quarantine, guard pages)
 * and the per-thread borrow table -> report.c formats every finding, census.c adds the
 * findings known only at exit (leaks, callbacks that never ran). Stacks are captured into
 * the depot (stack.c) as 32-bit ids and symbolized only when printed (symbolize.c). */
#ifndef WREF_CHECK_CHECKER_H
#define WREF_CHECK_CHECKER_H

#include "../../runtime/internal.h"
#include "../wref/hooks.h"
#include "options.h"
#include "stack.h"
#include "symbolize.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- checker.c: life of the checker ---------------------------------------------------------- */
void wref__checker_init(void);           /* idempotent; runs from the constructor */
unsigned wref__thread_no(void);          /* T0, T1, ... in order of first contact */
int wref__tid(void);                     /* kernel thread id */
extern bool wref__checker_ready;         /* init done: hooks may record */
bool wref__self_contains(uintptr_t pc);  /* pc is inside libwref-check itself */
/* One-line warning about the checker itself (not a finding), printed once per `once` flag. */
void wref__checker_warn(bool *once, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* fork(): the checker's locks are taken before fork and released after it in both processes
 * (the registry's bucket locks are re-initialized in the child instead), so a child never
 * inherits a lock held by a thread that does not exist there.
 * Order (the checker's lock order): heap, report, registry, symbolize (checker.c). */
enum wref__fork_phase { WREF__FORK_PREPARE, WREF__FORK_PARENT, WREF__FORK_CHILD };
void wref__heap_fork(enum wref__fork_phase phase);
void wref__report_fork(enum wref__fork_phase phase);    /* the child starts its own report */
void wref__registry_fork(enum wref__fork_phase phase);
void wref__fault_fork(enum wref__fork_phase phase);     /* the interposed sigaction's slot lock */
void wref__json_after_fork(void);                       /* child: a new document, opened lazily */

/* ---- registry.c: one record per object -------------------------------------------------------
 * Records live from creation until they leave the graveyard (long after the object's memory
 * was reused), so a borrow or a finding can still name an object by its record. Every field
 * below except the immutable ones (addr, serial, type, size, st_created, tno_created) is
 * written under the record's bucket lock. */
enum wref__state {
    WREF__ALIVE,
    WREF__FINALIZING,   /* count reached 0, finalize running (temporarily alive) */
    WREF__CLEARING,     /* weakrefs being cleared, callbacks running */
    WREF__DESTROYING,   /* destroy running, then late weakrefs cleared */
    WREF__FREED,        /* memory in quarantine, poisoned */
    WREF__GONE          /* memory returned; the record is kept in the graveyard */
};

/* rec->reported bits: a kind is reported at most once per object (docs/checker.md's table) */
#define WREF__REPORTED_UAF (1u << 0)
#define WREF__REPORTED_UAC (1u << 1)
#define WREF__REPORTED_OVERFLOW (1u << 2)
#define WREF__REPORTED_WAF (1u << 3)
#define WREF__REPORTED_LEAK (1u << 4)
#define WREF__REPORTED_CB (1u << 5)
#define WREF__REPORTED_DANGLING (1u << 6)
#define WREF__REPORTED_CLEAR_LIVE (1u << 7)

/* Borrowers remembered per object (borrow.c): its last WREF__BORROWERS borrowing threads. */
#define WREF__BORROWERS 2
/* rec->borrow bits */
#define WREF__BORROW_USED(i) (1u << (i))   /* borrower slot i holds an open borrow */
#define WREF__BORROW_USED_ANY 3u
#define WREF__BORROW_NEXT (1u << 2)        /* the slot a borrow by a third thread replaces */
#define WREF__BORROW_PINNED (1u << 3)      /* memory kept beyond the quarantine (heap.c) */

/* 80 bytes on LP64. */
typedef struct wref__rec {
    struct wref__rec *hash_next;   /* bucket chain; under the bucket lock */
    struct wref__rec *fifo_next;   /* quarantine / pins / graveyard / free list; under the heap lock */
    uintptr_t addr;
    uint64_t serial;               /* 1, 2, ...: never reused */
    const wref_type *type;
    uint32_t size;                 /* the object's declared size (type->size) */
    uint8_t state;                 /* enum wref__state */
    uint8_t reported;              /* WREF__REPORTED_* */
    uint8_t guarded;               /* memory is on its own pages (heap.c) */
    uint8_t leak_mark;             /* census scratch */
    uint16_t tno_created, tno_destroyed, tno_cleared;
    uint8_t borrow;                /* WREF__BORROW_* */
    uint8_t unused_;
    wref__stack_id st_created, st_cleared, st_destroyed;
    /* The open borrows of this object: the borrowing thread and its latest borrow's stack. */
    uint16_t tno_borrow[WREF__BORROWERS];
    wref__stack_id st_borrow[WREF__BORROWERS];
} wref__rec;

_Static_assert(sizeof(void *) != 8 || sizeof(struct wref__rec) == 80, "wref__rec: 80 bytes on LP64");

/* Snapshot of a record taken under its lock, for reporting without holding it. */
typedef wref__rec wref__rec_copy;

/* The snapshot of r: every field but the links (hash_next, fifo_next), which belong to other
 * locks (bucket, heap/allocation) and are never read from a copy. */
static inline wref__rec_copy wref__rec_snapshot(const wref__rec *r)
{
    wref__rec_copy c = {.addr = r->addr, .serial = r->serial, .type = r->type, .size = r->size,
                        .state = r->state, .reported = r->reported, .guarded = r->guarded,
                        .leak_mark = r->leak_mark, .tno_created = r->tno_created,
                        .tno_destroyed = r->tno_destroyed, .tno_cleared = r->tno_cleared,
                        .borrow = r->borrow, .st_created = r->st_created,
                        .st_cleared = r->st_cleared, .st_destroyed = r->st_destroyed};
    for (unsigned i = 0; i < WREF__BORROWERS; i++) {
        c.tno_borrow[i] = r->tno_borrow[i];
        c.st_borrow[i] = r->st_borrow[i];
    }
    return c;
}

/* A FIFO of records linked through fifo_next (quarantine, graveyard); the caller holds the
 * lock that owns it. */
typedef struct wref__rec_fifo {
    wref__rec *head, *tail;   /* oldest first */
} wref__rec_fifo;

static inline void wref__fifo_push(wref__rec_fifo *q, wref__rec *r)
{
    r->fifo_next = NULL;
    if (q->tail)
        q->tail->fifo_next = r;
    else
        q->head = r;
    q->tail = r;
}

/* The oldest record, unlinked; NULL when empty. */
static inline wref__rec *wref__fifo_pop(wref__rec_fifo *q)
{
    wref__rec *r = q->head;
    if (r) {
        q->head = r->fifo_next;
        if (!q->head)
            q->tail = NULL;
        r->fifo_next = NULL;
    }
    return r;
}

wref__rec *wref__registry_add(wref_object *ob);     /* NULL when out of memory (then degraded) */
/* Calls fn(rec, arg) with ob's record locked (NULL when unknown); returns fn's result. */
int wref__registry_with(const void *ob, int (*fn)(wref__rec *rec, void *arg), void *arg);
/* The memory of rec (FREED) is about to be returned: rec leaves the hash table (state GONE)
 * and true is returned, unless it has open borrows and !force: then it is marked
 * WREF__BORROW_PINNED, stays, and false is returned. *dropped: the open borrows it had. */
bool wref__registry_retire(wref__rec *rec, bool force, unsigned *dropped);
/* Walks every record in the table (live and quarantined) with its bucket locked. */
void wref__registry_each(void (*fn)(wref__rec *rec, void *arg), void *arg);
bool wref__registry_degraded(void);                /* a record could not be made: stay quiet */
/* A record that left the table, found by serial in the graveyard; copies it. */
bool wref__graveyard_find(uint64_t serial, wref__rec_copy *out);
void wref__graveyard_add(wref__rec *rec);          /* takes ownership; recycles the oldest */
size_t wref__registry_live_count(void);

/* ---- heap.c: the debugging allocator ------------------------------------------------------- */
void *wref__heap_alloc(size_t size);                 /* object memory: redzone after it */
/* Checks the redzone (heap-overflow), poisons, quarantines; may evict older objects. */
void wref__heap_free(wref_object *ob, size_t size, wref__rec *rec);
/* Offset of the first modified redzone byte, or -1 when intact. */
long wref__heap_check_redzone(const wref_object *ob, size_t size);
void wref__heap_drain_check(void);                   /* at exit: check quarantined poison */
/* wref_set_allocator: the chunks of the program's allocator that the checker still holds
 * although the program freed them (quarantine and pins), and their hand-back before the
 * allocator changes (their open borrows are dropped). */
size_t wref__heap_held_chunks(void);
void wref__heap_release_held(void);
bool wref__heap_is_guarded(const void *ob);
void wref__heap_set_guard_rec(const void *ob, wref__rec *rec);   /* for the fault handler */
/* Signal-safe: the record of the guarded object whose pages hold addr, or NULL. */
wref__rec *wref__heap_guarded_find(uintptr_t addr, uintptr_t *obj_addr);

/* ---- borrow.c: borrowed pointers (wref_get_object / WREF_GET_OBJECT) ---------------------
 * A borrow is remembered in the borrowed object's own record (rec->tno_borrow/st_borrow), for
 * its last WREF__BORROWERS borrowing threads, so no per-thread table can forget one and a
 * pointer handed to another thread still names its borrower. It stays open until the
 * borrowing thread calls wref_check_borrow_end, or the misuse is reported, or the object's
 * memory is finally returned (heap.c: kept up to borrow_pin_mb beyond the quarantine while a
 * borrow is open). The functions taking a record run under its bucket lock. */
void wref__borrow_add(wref__rec *r, unsigned tno, wref__stack_id st);
void wref__borrow_end_rec(wref__rec *r, unsigned tno);   /* tno's borrow of r is over */
void wref__borrow_end(uintptr_t addr);   /* wref_check_borrow_end: this thread's, of the object at addr */
static inline bool wref__borrowed(const wref__rec *r)
{
    return (r->borrow & WREF__BORROW_USED_ANY) != 0;
}
/* The borrower slot to name for a use by thread tno: tno's own, else the latest; -1: none.
 * *other: the other open slot, or -1. */
int wref__borrow_pick(const wref__rec_copy *r, unsigned tno, int *other);
/* Statistics (printed at exit with verbosity>=1). */
enum wref__borrow_stat {
    WREF__BSTAT_BORROWS,      /* borrows recorded */
    WREF__BSTAT_REPLACED,     /* a third thread's borrow replaced the oldest borrower slot */
    WREF__BSTAT_PINNED,       /* destroyed objects kept beyond the quarantine for a borrow */
    WREF__BSTAT_PIN_BYTES,    /* ... their bytes now */
    WREF__BSTAT_PIN_PEAK,     /* ... peak bytes */
    WREF__BSTAT_DROPPED,      /* open borrows whose memory was returned (pin limit, allocator switch) */
    WREF__BSTAT_COUNT
};
void wref__borrow_stat_add(enum wref__borrow_stat s, size_t n);
void wref__borrow_stat_pin_bytes(size_t now);
void wref__borrow_stats_print(void);

/* ---- report.c: the one place that formats output ----------------------------------------- */
enum wref__kind {
    WREF__K_DANGLING_BORROW,
    WREF__K_USE_AFTER_FREE,
    WREF__K_USE_AFTER_CLEAR,
    WREF__K_INVALID_OBJECT,
    WREF__K_HEAP_OVERFLOW,
    WREF__K_WRITE_AFTER_FREE,
    WREF__K_CLEAR_LIVE,
    WREF__K_LEAK,
    WREF__K_CALLBACK_NEVER_RAN,
    WREF__K_CALLBACK_SUPPRESSED,
    WREF__K_CALLBACK_ERROR,
    WREF__K_DANGLING_WEAKREF,   /* CPython frontend: freed while weakrefs still pointed at it */
    WREF__K_COUNT
};
const char *wref__kind_name(enum wref__kind k);

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
struct wref__frame_info;
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
    const char *type_name;           /* the object's type when it is no wref_type (Python's); or NULL */
    const char *test_name;           /* the test that was running (PYTEST_CURRENT_TEST); or NULL */
} wref__finding;

/* Reports f in every format the options ask for (text, json, lsan), unless a suppression
 * matches it. Returns the finding's id (1, 2, ... in this process) or 0 when suppressed.
 * Halts the process when halt_on_error=1. */
size_t wref__report(const wref__finding *f);
size_t wref__report_count(void);
size_t wref__report_count_unlocked(void);
void wref__report_dying_by_signal(void);   /* flush_on_signal: no exit status of ours */   /* for the signal handler */
/* A finding formatted by the fault handler: counted and written as text and JSON with no lock
 * and no allocation. Async-signal-safe (for a process about to die). */
void wref__report_signal_finding(enum wref__kind kind, const char *text, size_t text_len, const char *json,
                                 size_t json_len);
size_t wref__utf8_len(const unsigned char *p);   /* well-formed UTF-8 sequence length, 0 if not */
void wref__report_init(void);     /* at checker init: formats, the JSON file, suppressions */
/* At exit (or halt): the LeakSanitizer-shaped block, the suppressions table, the JSON
 * document's final tail (leak_graph: JSON text of the leak graph or NULL) and the SUMMARY
 * line. Idempotent. */
void wref__report_finish(const char *leak_graph);
/* Output helpers shared with census.c. */
typedef struct wref__buf {
    char *data;
    size_t len, cap;
    bool failed;   /* a printf did not fit (out of memory): the text is cut short */
} wref__buf;
void wref__buf_printf(wref__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void wref__buf_free(wref__buf *b);
void wref__buf_json_string(wref__buf *b, const char *s);   /* a JSON string literal, or null */
/* The body of a JSON string literal for s (no quotes), piece by piece through put: quotes,
 * backslashes and control bytes escaped, bytes that are not UTF-8 as U+FFFD. Allocates
 * nothing: async-signal-safe when put is. */
void wref__json_escape(const char *s, void (*put)(void *ctx, const char *p, size_t n), void *ctx);
const char *wref__type_name(const wref__rec_copy *r);
const char *wref__finding_type_name(const wref__finding *f);   /* f->type_name, else the record's */

/* A stack resolved for output: its frames symbolized (inlined frames expanded). */
typedef struct wref__rstack {
    const char *label;               /* "where" for the place of the finding */
    unsigned tno;                    /* thread number, or ~0u */
    size_t n;
    struct wref__frame_info *frames; /* n frames, owned by report.c */
    size_t n_lang;                   /* interpreter frames (wref__lang_stack_get), not owned */
    const wref__lang_frame *lang;
} wref__rstack;

/* ---- json.c: the JSON report (docs/report-schema.json) -------------------------------------
 * The file is valid JSON after every finding: each finding and the document's tail are
 * written in one pwrite at the end of the findings array. Called under report.c's lock. */
/* Asks for a JSON report at <prefix>.<pid>.json; the file is created (O_EXCL|O_NOFOLLOW) at
 * the first finding or at exit. */
void wref__json_open(const char *prefix);
void wref__json_finding(size_t id, const wref__finding *f, const wref__rstack *stacks, size_t n_stacks,
                        const char *summary);
/* Rewrites the tail: counts, suppressions used, the leak graph; complete=true when final. */
void wref__json_tail(const size_t *by_kind, size_t total, size_t suppressed, const char *leak_graph,
                     bool final, int exit_status);

/* From a signal handler (fault.c), for a process about to die: appends one finding (JSON
 * object text, no separator) and a tail with the counts, complete=false. Async-signal-safe:
 * no allocation, no lock; returns false (and writes nothing) when the document is not open. */
bool wref__json_signal_finding(const char *finding, size_t len, const size_t *by_kind, size_t total,
                               size_t suppressed);
/* Opens the document now (guard pages: the signal handler cannot create it). */
void wref__json_open_now(void);

/* ---- suppress.c: suppressions (option suppressions=FILE) ----------------------------------- */
void wref__suppress_load(const char *path);    /* warns about bad lines; idempotent */
/* The suppression matching f, counted; false when none. */
bool wref__suppress_match(const wref__finding *f, const wref__rstack *stacks, size_t n_stacks);
/* For the fault handler, which cannot symbolize: only 'kind:type=Pattern' entries apply. */
bool wref__suppress_match_type(enum wref__kind kind, const char *type_name);
void wref__suppress_table_text(wref__buf *b);  /* "suppressions used:" table, or nothing */
void wref__suppress_table_json(wref__buf *b);  /* [{"kind","pattern","count"}...] */

/* ---- census.c: findings known at exit ------------------------------------------------------ */
/* Leaks and callbacks that never ran; returns the findings made. With graph != NULL, also
 * writes the leak graph's JSON there (json.c's leak_graph). */
size_t wref__census(wref__buf *graph);

/* ---- fault.c: guard-page faults -------------------------------------------------------- */
void wref__fault_install(void);

/* ---- capture helper: the caller's stack without the checker's own frames -------------------- */
wref__stack_id wref__capture(void);

#endif /* WREF_CHECK_CHECKER_H */
