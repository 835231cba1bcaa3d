/* stack.h: backtrace capture and the stack depot.
 *
 * A captured stack is stored once (deduplicated by content) and named by a dense 32-bit id,
 * so the registry keeps 4 bytes per recorded event. Depot memory comes from mmap, never from
 * malloc: the checker must not recurse into the program's allocator. Stored stacks are never
 * freed.
 *
 * Thread safety: capture is safe from any number of threads (inserts take one mutex, lookups
 * of already stored stacks are lock-free). wref__stack_get is async-signal-safe: plain
 * acquire loads only, so the fault handler may call it.
 */
#ifndef WREF_CHECK_STACK_H
#define WREF_CHECK_STACK_H

#include <stddef.h>
#include <stdint.h>

typedef uint32_t wref__stack_id;    /* 0 means "no stack" */

#define WREF__STACK_MAX_DEPTH 64
#define WREF__STACK_UNWIND_MAX 128   /* most frames wref__stack_unwind gives */

/* Sets the number of frames kept per stack (clamped to [1, WREF__STACK_MAX_DEPTH]) and the
 * unwinder: fast_unwind != 0 walks frame pointers and keeps that walk only when it is
 * complete (it passed only through functions that keep frame records and ended where a full
 * unwind ends, or filled the depth); any other capture is redone with libunwind and counted
 * in the statistics (CAPTURES_SLOW). 0 always uses libunwind. A stack is never cut silently
 * because a function was built without frame pointers. Warms up libunwind and this thread's
 * stack bounds so that later captures do not dlopen or malloc. Call it once at checker init,
 * before other threads capture; calling it again only changes depth and unwinder.
 * Without it, captures use depth 16 and fast unwinding. */
void wref__stack_init(unsigned depth, int fast_unwind);

/* Captures the stack of the caller of wref__stack_capture (frame 0 is the return address
 * into the caller), dropping `skip` further innermost frames, stores it in the depot unless
 * an equal stack is already there, and returns its id. Returns 0 when out of memory or when
 * no frame was found. Not for signal handlers. */
wref__stack_id wref__stack_capture(unsigned skip);

/* Points *pcs at the frames of stack `id`, innermost first, and returns their count; the
 * frames are return addresses (symbolize pc - 1). Returns 0 (and sets *pcs to NULL) for id 0
 * or an id the depot never returned. The frames stay valid until process exit.
 * Async-signal-safe. */
size_t wref__stack_get(wref__stack_id id, const uintptr_t **pcs);

/* Unwinds the caller's stack into pcs (at most max frames, max <= WREF__STACK_UNWIND_MAX, innermost first, frame 0 is the
 * return address into the caller), dropping `skip` further frames; returns the count. Same
 * unwinder choice as wref__stack_capture. Not for signal handlers. */
size_t wref__stack_unwind(uintptr_t *pcs, size_t max, unsigned skip);

/* Unwinds the stack of a thread interrupted by a signal from its signal context (the third
 * argument of an SA_SIGINFO handler) into pcs, at most max frames (max <=
 * WREF__STACK_UNWIND_MAX): frame 0 is the interrupted pc + 1, the others are return
 * addresses, so that every frame is symbolized at pc - 1 as for any captured stack. Complete from a leaf function and through code without frame pointers (libc):
 * on x86-64 libunwind's local cursor over the interrupted context (unw_init_local2 with
 * UNW_INIT_SIGNAL_FRAME), elsewhere frame records from the interrupted registers (there a
 * leaf without a record loses its caller). The walk is
 * bounded (max frames, a fixed number of steps). Async-signal-safe: no allocation, no lock of
 * the checker's (libunwind's local unwinding is async-signal-safe once warmed up, which
 * wref__stack_init does). The one frame walk shared by captures and the fault handler. */
size_t wref__stack_unwind_signal(void *ucontext, uintptr_t *pcs, size_t max);

/* Stores n frames, captured at the current module generation, in the depot (deduplicated) and returns the id; 0 for n == 0 or when out
 * of memory. n is clamped to WREF__STACK_MAX_DEPTH. */
wref__stack_id wref__stack_store(const uintptr_t *pcs, size_t n);

/* A per-thread memo of captures (for wref__capture's trimmed stacks). fp is the frame of the
 * function that captures (its __builtin_frame_address(0)). memo_get returns the id memo_put
 * stored for a chain holding the same frame records from fp outwards (return addresses and
 * links, as far as they decided that stack), and the module generation it was stored at in
 * *gen (the caller compares it with wref__module_gen), or 0: a repeated stack costs one
 * compare per record and no call. memo_put keeps id only when this thread's last
 * wref__stack_unwind was a complete frame-pointer walk with skip 0 whose chain passed through
 * fp (called by fp's function or by a function it called); `used` is how many of that
 * unwind's frames decided id (frames beyond them did not change it). Not for signal handlers. */
wref__stack_id wref__stack_memo_get(uintptr_t fp, uint32_t *gen);
void wref__stack_memo_put(uintptr_t fp, size_t used, wref__stack_id id);

/* The module-list generation (symbolize.h) current when stack `id` was stored: symbolize its
 * frames at that generation. Async-signal-safe. */
uint32_t wref__stack_gen(wref__stack_id id);

/* Bytes of address space the depot has mapped (for statistics). */
size_t wref__stack_depot_bytes(void);

#endif /* WREF_CHECK_STACK_H */
