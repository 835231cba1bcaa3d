/* pystack.h: the Python stack depot (pystack.c). */
#ifndef WREF_CHECK_PYTHON_PYSTACK_H
#define WREF_CHECK_PYTHON_PYSTACK_H

#include "../engine/core.h"
#include "../engine/finding.h"
#include "../engine/stack.h"
#include "capi.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The running Python frames (at most depth, innermost first) as a depot id; 0 when there is
 * no thread state or no frame. The GIL must be held. Keeps any pending exception as it is.
 * Read from the thread state (wref__py_frames_raw) once the layout is checked, else through
 * the C API. Formats a stack it has not seen before (allocates). */
uint32_t wref__py_stack_capture(unsigned depth);

/* The running frames read from the thread state: code objects (borrowed) and lines, innermost
 * first, at most max; the frames PyEval_GetFrame and PyFrame_GetBack would give (incomplete
 * frames and 3.12+ C-stack shims left out). Calls nothing in the interpreter but
 * PyCode_Addr2Line (through a per-thread cache of lines): no allocation, no code run, so it
 * may run inside an allocator hook. 0 when there is no frame, or before the layout is checked
 * (wref__py_frame.on). GIL held. */
size_t wref__py_frames_raw(py_object **code, int *line, size_t max);

/* The depot id of frames (code objects borrowed; a new stack takes references to them and is
 * formatted, which allocates); 0 for n == 0 or out of memory. GIL held. */
uint32_t wref__py_stack_store(py_object *const *code, const int *line, size_t n);

/* Statistics (verbosity >= 1): the stacks stored, and the stores refused because this thread
 * was inside a store already (an object freed by the store's C API calls, whose destroy stack
 * was being captured: it gets no Python stack). */
void wref__py_stack_stats(uint32_t *stored, uint64_t *nested);

/* Around fork (intercept.c's handlers): the depot's lock is held across it. It comes before the
 * frontend's other locks: a store holds it while its C API calls allocate and free (the hooks). */
void wref__py_stack_fork(enum wref__fork_phase phase);

/* How the running frame is read from the thread state (pystack.c fills it per version and
 * sets `on` once the offsets agree with the C API). */
typedef struct wref__py_frame_layout {
    int on;              /* checked: the minor version (the fast read is used); 0: not */
    unsigned ts_frame;   /* 3.9/3.10 tstate->frame; 3.11/3.12 tstate->cframe; 3.13 tstate->current_frame */
    int cf_frame;        /* 3.11/3.12: _PyCFrame.current_frame; -1: none (the frame is in tstate) */
    unsigned code;       /* frame->f_code (3.9-3.12), ->f_executable (3.13) */
    unsigned where;      /* f_lasti (int, 3.9/3.10), prev_instr (3.11/3.12), instr_ptr (3.13) */
    int owner;           /* _PyInterpreterFrame.owner (char); -1: none */
    unsigned code_units; /* offsetof(PyCodeObject, co_code_adaptive), 3.11+ */
    int where_int;       /* `where` is an int (f_lasti), else a pointer */
} wref__py_frame_layout;
extern wref__py_frame_layout wref__py_frame;

#define WREF__PY_FRAME_OWNED_BY_CSTACK 3   /* 3.12+: the entry shim of a C call into the eval loop */

/* The offsets per version (the headers' values; tests/python/layout_check.c asserts them). */
#define WREF__PY39_TS_FRAME 24      /* PyThreadState.frame */
#define WREF__PY39_F_CODE 32        /* PyFrameObject.f_code */
#define WREF__PY39_F_LASTI 104      /* PyFrameObject.f_lasti (int) */
#define WREF__PY310_F_LASTI 96
#define WREF__PY311_TS_CFRAME 56    /* PyThreadState.cframe (3.11, 3.12) */
#define WREF__PY311_CF_FRAME 8      /* _PyCFrame.current_frame */
#define WREF__PY311_F_CODE 32       /* _PyInterpreterFrame.f_code */
#define WREF__PY311_F_INSTR 56      /* _PyInterpreterFrame.prev_instr */
#define WREF__PY311_F_OWNER 69
#define WREF__PY312_CF_FRAME 0
#define WREF__PY312_F_CODE 0
#define WREF__PY312_F_INSTR 56
#define WREF__PY312_F_OWNER 70
#define WREF__PY313_TS_FRAME 72     /* PyThreadState.current_frame */
#define WREF__PY313_F_CODE 0        /* f_executable */
#define WREF__PY313_F_INSTR 56      /* instr_ptr */
#define WREF__PY313_F_OWNER 70
/* The links and fields of the frame walk (wref__py_frames_raw). */
#define WREF__PY39_F_BACK 24          /* PyFrameObject.f_back (3.9/3.10) */
#define WREF__PY311_F_PREVIOUS 48     /* _PyInterpreterFrame.previous */
#define WREF__PY312_F_PREVIOUS 8      /* idem, 3.12 and 3.13 */
#define WREF__PY311_CO_FIRSTTRACEABLE 168   /* PyCodeObject._co_firsttraceable (int) */
#define WREF__PY312_CO_FIRSTTRACEABLE 176
#define WREF__PY313_CO_FIRSTTRACEABLE 184
#define WREF__PY_FRAME_OWNED_BY_GENERATOR 1

/* The fast read (wref__py_frame.on holds the minor version once checked, 0 before or when the
 * check failed): false when there is no frame, or it is a C-stack shim, or (check_code) its code
 * is not a code object (then the C API answers). Without check_code the code address is
 * whatever the frame holds: good only for comparing with a code object's address known
 * otherwise. */
static inline __attribute__((always_inline)) bool wref__py_innermost_read(void *ts, uintptr_t *code, uintptr_t *where,
                                                                          bool check_code)
{
#define WREF__PY_AT(p, off) (*(char **)((char *)(p) + (off)))
    char *f;
    py_object *c;
    uintptr_t w;
    int on = wref__py_frame.on;
    /* tested in this order (3.9-3.11 first: the lowest plain cost, so the tightest ratio) */
    if (on == 11) {
        f = WREF__PY_AT(ts, WREF__PY311_TS_CFRAME);
        if (!f || !(f = WREF__PY_AT(f, WREF__PY311_CF_FRAME)))
            return false;
        c = (py_object *)WREF__PY_AT(f, WREF__PY311_F_CODE);
        w = (uintptr_t)WREF__PY_AT(f, WREF__PY311_F_INSTR);
    } else if (on < 11) {
        if (!on)
            return false;   /* not checked (yet) */
        f = WREF__PY_AT(ts, WREF__PY39_TS_FRAME);
        if (!f)
            return false;
        c = (py_object *)WREF__PY_AT(f, WREF__PY39_F_CODE);
        w = (unsigned)*(const int *)(f + wref__py_frame.where);   /* f_lasti: 3.9's or 3.10's offset */
    } else if (on == 12) {
        f = WREF__PY_AT(ts, WREF__PY311_TS_CFRAME);
        if (!f || !(f = WREF__PY_AT(f, WREF__PY312_CF_FRAME)) || f[WREF__PY312_F_OWNER] == WREF__PY_FRAME_OWNED_BY_CSTACK)
            return false;
        c = (py_object *)WREF__PY_AT(f, WREF__PY312_F_CODE);
        w = (uintptr_t)WREF__PY_AT(f, WREF__PY312_F_INSTR);
    } else if (on == 13) {
        f = WREF__PY_AT(ts, WREF__PY313_TS_FRAME);
        if (!f || f[WREF__PY313_F_OWNER] == WREF__PY_FRAME_OWNED_BY_CSTACK)
            return false;
        c = (py_object *)WREF__PY_AT(f, WREF__PY313_F_CODE);
        w = (uintptr_t)WREF__PY_AT(f, WREF__PY313_F_INSTR);
    } else {
        return false;
    }
#undef WREF__PY_AT
    if (check_code && (!c || c->ob_type != wref__py.code_type))
        return false;
    *code = (uintptr_t)c;
    *where = w;
    return true;
}

static inline __attribute__((always_inline)) bool wref__py_innermost_fast(void *ts, uintptr_t *code, uintptr_t *where)
{
    return wref__py_innermost_read(ts, code, where, true);
}

/* This thread's PyThreadState without a call: the interpreter's own variable, read through
 * wref__py_ts_slot (3.9-3.11: _PyRuntime.gilstate.tstate_current, which
 * _PyThreadState_UncheckedGet reads; 3.12/3.13: libpython's thread-local _Py_tss_tstate, which
 * needs a __tls_get_addr call in the C API). The slot is set at this thread's first call of
 * wref__py_thread_state_slow after wref__py_thread_state_init, once its value is the C API's
 * answer there; until then, or when the variable is not found (pystack.c), the C API answers.
 * NULL: no thread state. GIL held. */
extern __thread __attribute__((tls_model("initial-exec"))) void *const *wref__py_ts_slot;
/* 3.9-3.11: the same variable for every thread (a global of the interpreter), set once by
 * wref__py_thread_state_init when it is the C API's answer; NULL otherwise. One load fewer
 * than the thread's slot on the interposer's path. */
extern void *const *wref__py_ts_global;
void *wref__py_thread_state_slow(void);
static inline __attribute__((always_inline)) void *wref__py_thread_state(void)
{
    void *const *slot = wref__py_ts_slot;
    if (__builtin_expect(slot != NULL, 1))
        return __atomic_load_n(slot, __ATOMIC_RELAXED);   /* as CPython reads it */
    return wref__py_thread_state_slow();
}
/* Finds the variable for wref__py_thread_state, once, GIL held: intercept.c calls it when the
 * frontend has started (so a thread's slot set means started) and sets this thread's slot. */
void wref__py_thread_state_init(void);

/* The C API's answer (and, the first time, the check of the layout); ts is the thread state. */
bool wref__py_innermost_slow(void *ts, uintptr_t *code, uintptr_t *where);

/* The innermost Python frame's code object (as an address: a key, not a reference) and its
 * position, a key too: the instruction (its address on 3.11+, f_lasti on 3.9/3.10; the C
 * API's offset or line when the thread state cannot be read directly); false when there is
 * none. Cheap: a few loads from the thread state, no frame walk, no call into the
 * interpreter. GIL held. */
static inline __attribute__((always_inline)) bool wref__py_innermost(uintptr_t *code, uintptr_t *where)
{
    void *ts = wref__py_thread_state();
    if (!ts)
        return false;
    if (wref__py_innermost_fast(ts, code, where))
        return true;
    uintptr_t c = 0, w = 0;   /* not code/where: their callers' variables stay in registers */
    bool ok = wref__py_innermost_slow(ts, &c, &w);
    *code = c, *where = w;
    return ok;
}

/* The innermost code object of stored stack id (an address), 0 when none. */
uintptr_t wref__py_stack_innermost_code(uint32_t id);

/* wref__lang_stack_get for the engine: the formatted frames of stack id. */
size_t wref__py_stack_get(uint32_t id, const wref__lang_frame **frames);

#endif /* WREF_CHECK_PYTHON_PYSTACK_H */
