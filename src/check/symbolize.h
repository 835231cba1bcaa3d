/* symbolize.h: program counters -> module, function, file:line.
 *
 * Two halves with different contracts:
 * - wref__symbolize: report time only. Uses elfutils libdwfl (symbol tables, so static
 *   functions of executables linked without -rdynamic are named, and DWARF line tables for
 *   file:line). May malloc and read files; NOT async-signal-safe; thread-safe (one mutex).
 * - wref__module_of: async-signal-safe (plain reads), for the fault handler. It answers from a
 *   module table snapshotted by wref__symbolize_snapshot_modules.
 */
#ifndef WREF_CHECK_SYMBOLIZE_H
#define WREF_CHECK_SYMBOLIZE_H

#include <stdint.h>

struct wref__frame_info {
    uintptr_t pc;
    const char *function;       /* symbol name (not demangled); NULL when unknown */
    uintptr_t function_offset;  /* pc - start of function */
    const char *module;         /* path of the ELF module; NULL when unknown */
    uintptr_t module_offset;    /* pc - module load bias: the address to give addr2line -e module */
    const char *file;           /* source file from DWARF; NULL without debug info */
    int line;                   /* 0 when unknown */
};

/* Fills *out for pc, a return address as stored by wref__stack_capture: the function and
 * file:line are looked up for pc - 1 (the call instruction), while out->pc and the offsets
 * are for pc itself. To symbolize the first instruction of a function, pass its address + 1.
 * Unknown fields are NULL / 0. Strings stay valid until process exit. Results are cached per
 * pc. Returns 1 if anything beyond pc was found, else 0. */
int wref__symbolize(uintptr_t pc, struct wref__frame_info *out);

/* Takes a snapshot of the loaded modules (dl_iterate_phdr) for wref__module_of. Call it at
 * checker init and after the program loads or unloads a library; not from a signal handler.
 * Snapshots are mmap'd and never freed (a reader may be using an older one); an unchanged
 * module list costs nothing. */
void wref__symbolize_snapshot_modules(void);

/* Finds the module containing pc in the latest snapshot: sets *path (valid until process
 * exit) and *offset (pc - load bias) and returns 1; returns 0 if pc is in no module or no
 * snapshot was taken. Async-signal-safe. */
int wref__module_of(uintptr_t pc, const char **path, uintptr_t *offset);

#endif /* WREF_CHECK_SYMBOLIZE_H */
