/* symbolize.h: the module map and program counters -> module, function, file:line.
 *
 * Two halves with different contracts:
 * - The module map (wref__module_*): every module the process ever loaded, one entry per
 *   load, stamped with the generation of the module list in which it appeared and vanished.
 *   A stack records the generation current when it was captured (stack.c), so a frame in a
 *   plugin that was dlclose'd since, or whose address now holds another library, is still
 *   named after the right file. Reads are async-signal-safe (plain acquire loads of an
 *   append-only mmap'd table).
 * - wref__symbolize*: report time only. elfutils libdwfl (symbol tables, so static functions
 *   of executables linked without -rdynamic are named; DWARF line tables and inline scopes
 *   for file:line). May malloc and read files; NOT async-signal-safe; thread-safe (one
 *   mutex); results cached per (pc, load).
 */
#ifndef WREF_CHECK_SYMBOLIZE_H
#define WREF_CHECK_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>

struct wref__frame_info {
    uintptr_t pc;
    const char *function;       /* symbol name (not demangled); NULL when unknown */
    uintptr_t function_offset;  /* pc - start of function (0 for an inlined frame) */
    const char *module;         /* path of the ELF module; NULL when unknown */
    const char *build_id;       /* hex GNU build-id of the module; NULL when it has none */
    uintptr_t module_offset;    /* pc - module load bias: the address to give addr2line -e module */
    const char *file;           /* source file from DWARF; NULL without debug info */
    int line;                   /* 0 when unknown */
    int inlined;                /* 1: a function inlined at pc; the next frame is its caller */
};

/* The generation of the module list: it grows each time a refresh sees a library appear or
 * vanish. Async-signal-safe; one relaxed load. */
uint32_t wref__module_gen(void);

/* Re-reads the loaded modules (dl_iterate_phdr) into the module map. Call it at checker
 * init and around dlopen/dlclose; not from a signal handler. An unchanged module list
 * costs one walk and changes nothing. */
void wref__symbolize_snapshot_modules(void);

/* Finds the module holding pc now: sets *path (valid until process exit) and *offset
 * (pc - load bias) and returns 1; returns 0 if pc is in no module. Async-signal-safe. */
int wref__module_of(uintptr_t pc, const char **path, uintptr_t *offset);

/* The load that held pc at generation gen (see wref__stack_gen): its path, build-id (NULL when
 * it has none) and pc's offset from its load bias. Returns 0 if pc is in no module.
 * Async-signal-safe. */
int wref__module_info(uintptr_t pc, uint32_t gen, const char **path, const char **build_id, uintptr_t *offset);

/* Resolves pc, a return address captured at module generation gen, into at most max frames,
 * innermost first: the functions inlined at pc (inlined = 1), then the function that holds
 * it. Frames share pc, module and offsets; each has its own function and file:line (an
 * inlined function's caller is at the call site's line). The function and file:line are
 * looked up for pc - 1 (the call instruction). Unknown fields are NULL / 0; strings stay
 * valid until process exit. Returns the number of frames filled: at least 1 when max >= 1. */
size_t wref__symbolize_frames(uintptr_t pc, uint32_t gen, struct wref__frame_info *out, size_t max);

/* The frame of the function that holds pc (the last of wref__symbolize_frames, at the
 * current generation), with the file:line in that function. To symbolize the first
 * instruction of a function, pass its address + 1. Returns 1 if anything beyond pc was
 * found, else 0. */
int wref__symbolize(uintptr_t pc, struct wref__frame_info *out);

/* Offline (the report tool, which compiles this file too): resolves the return address pc,
 * in the address space of the libdwfl module mod (its start + the frame's module offset), as
 * wref__symbolize_frames does a live pc: the inlined functions innermost first, then the
 * holder (named from the symbol table). module, build_id and module_offset are left 0 for
 * the caller. Strings stay valid until exit. Returns the number of frames (>= 1 if max >= 1). */
struct Dwfl_Module;
size_t wref__symbolize_dwfl(struct Dwfl_Module *mod, uintptr_t pc, struct wref__frame_info *out, size_t max);

/* fork(): prepare != 0 takes the module map's and the symbolizer's locks, 0 releases them
 * (in the parent and in the child). Registered by the checker with pthread_atfork. */
void wref__symbolize_fork(int prepare);

#endif /* WREF_CHECK_SYMBOLIZE_H */
