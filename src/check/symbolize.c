/* symbolize.c: module map, function names and file:line for report time.
 *
 * DWARF/ELF reader: elfutils libdwfl (libdw). The modules come from the dynamic loader
 * (dl_iterate_phdr, exact load biases); Dwfl reads each file's .symtab (so static functions
 * are named even without -rdynamic) and DWARF line table. Everything behind wref__symbolize
 * runs under sym.lock and may malloc; it is never called on a hot path or from a signal
 * handler.
 *
 * The signal-safe half (wref__module_of) reads only an immutable, mmap'd module table that is
 * published with a release store and never freed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "check/symbolize.h"

#include <dlfcn.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <link.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- module table (signal-safe reads) ------------------------------------------------------ */

struct module {
    uintptr_t start, end;   /* [start, end): the module's PT_LOAD segments */
    uintptr_t bias;         /* load bias (dlpi_addr) */
    const char *path;       /* into the table's string pool */
};

struct module_table {
    size_t map_size;        /* bytes mmap'd for this table */
    size_t count;
    struct module mods[];   /* then the string pool */
};

static struct {
    pthread_mutex_t lock;           /* serializes snapshots */
    struct module_table *current;   /* release-stored under lock; acquire-loaded by readers */
} modules = { .lock = PTHREAD_MUTEX_INITIALIZER };

struct snap {
    struct module_table *table;     /* NULL during the counting pass */
    size_t capacity;                /* modules that fit */
    char *pool, *pool_end;
    size_t count, path_bytes;
    char exe[PATH_MAX];             /* the main program's path ("" in dl_iterate_phdr) */
};

static int snap_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct snap *s = arg;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo)
            lo = a;
        if (a + ph->p_memsz > hi)
            hi = a + ph->p_memsz;
    }
    if (lo >= hi)
        return 0;
    const char *path = info->dlpi_name != NULL && info->dlpi_name[0] != 0 ? info->dlpi_name : s->exe;
    size_t len = strlen(path) + 1;
    if (s->table == NULL) {
        s->count++;
        s->path_bytes += len;
        return 0;
    }
    if (s->table->count == s->capacity || (size_t)(s->pool_end - s->pool) < len)
        return 0; /* a library loaded between the two passes: next snapshot gets it */
    memcpy(s->pool, path, len);
    s->table->mods[s->table->count++] = (struct module){ lo, hi, info->dlpi_addr, s->pool };
    s->pool += len;
    return 0;
}

static int same_modules(const struct module_table *a, const struct module_table *b)
{
    if (a == NULL || a->count != b->count)
        return 0;
    for (size_t i = 0; i < a->count; i++) {
        const struct module *x = &a->mods[i], *y = &b->mods[i];
        if (x->start != y->start || x->end != y->end || x->bias != y->bias ||
            strcmp(x->path, y->path) != 0)
            return 0;
    }
    return 1;
}

void wref__symbolize_snapshot_modules(void)
{
    static struct snap s; /* under modules.lock; too big for a small thread stack */
    pthread_mutex_lock(&modules.lock);
    memset(&s, 0, sizeof s);
    ssize_t n = readlink("/proc/self/exe", s.exe, sizeof s.exe - 1);
    s.exe[n > 0 ? n : 0] = 0;
    dl_iterate_phdr(snap_module, &s);

    s.capacity = s.count + 8; /* room for libraries loaded between the passes */
    size_t pool_size = s.path_bytes + 8 * 256;
    size_t size = sizeof(struct module_table) + s.capacity * sizeof(struct module) + pool_size;
    struct module_table *t = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                  -1, 0);
    if (t != MAP_FAILED) {
        t->map_size = size;
        t->count = 0;
        s.table = t;
        s.pool = (char *)&t->mods[s.capacity];
        s.pool_end = (char *)t + size;
        dl_iterate_phdr(snap_module, &s);
        if (same_modules(modules.current, t))
            munmap(t, size);
        else
            __atomic_store_n(&modules.current, t, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&modules.lock);
}

int wref__module_of(uintptr_t pc, const char **path, uintptr_t *offset)
{
    const struct module_table *t = __atomic_load_n(&modules.current, __ATOMIC_ACQUIRE);
    if (t == NULL)
        return 0;
    for (size_t i = 0; i < t->count; i++) {
        if (pc >= t->mods[i].start && pc < t->mods[i].end) {
            *path = t->mods[i].path;
            *offset = pc - t->mods[i].bias;
            return 1;
        }
    }
    return 0;
}

/* ---- symbolizer (report time, under sym.lock) ---------------------------------------------- */

struct cached {
    int found;
    struct wref__frame_info info;   /* info.pc == 0: empty slot */
};

static struct {
    pthread_mutex_t lock;       /* protects everything below */
    Dwfl *dwfl;                 /* NULL until first use or when libdwfl failed */
    int dwfl_failed;
    const struct module_table *reported; /* the snapshot Dwfl was last given */
    struct cached *cache;       /* open addressing by pc, capacity a power of two */
    size_t cache_cap, cache_count;
    char **strings;             /* interned strings, open addressing */
    size_t strings_cap, strings_count;
} sym = { .lock = PTHREAD_MUTEX_INITIALIZER };

static size_t hash_str(const char *s)
{
    size_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static size_t hash_pc(uintptr_t pc)
{
    uint64_t k = pc;
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k;
}

/* Returns a copy of s that lives until exit, the same copy for equal strings; NULL for NULL
 * or when out of memory. */
static const char *intern(const char *s)
{
    if (s == NULL)
        return NULL;
    if (sym.strings_count * 2 >= sym.strings_cap) {
        size_t cap = sym.strings_cap ? sym.strings_cap * 2 : 256;
        char **t = calloc(cap, sizeof *t);
        if (t == NULL)
            return NULL;
        for (size_t i = 0; i < sym.strings_cap; i++) {
            if (sym.strings[i] == NULL)
                continue;
            size_t j = hash_str(sym.strings[i]) & (cap - 1);
            while (t[j] != NULL)
                j = (j + 1) & (cap - 1);
            t[j] = sym.strings[i];
        }
        free(sym.strings);
        sym.strings = t;
        sym.strings_cap = cap;
    }
    size_t j = hash_str(s) & (sym.strings_cap - 1);
    while (sym.strings[j] != NULL) {
        if (strcmp(sym.strings[j], s) == 0)
            return sym.strings[j];
        j = (j + 1) & (sym.strings_cap - 1);
    }
    char *copy = strdup(s);
    if (copy == NULL)
        return NULL;
    sym.strings[j] = copy;
    sym.strings_count++;
    return copy;
}

static struct cached *cache_find(uintptr_t pc)
{
    if (sym.cache_cap == 0)
        return NULL;
    size_t j = hash_pc(pc) & (sym.cache_cap - 1);
    while (sym.cache[j].info.pc != 0) {
        if (sym.cache[j].info.pc == pc)
            return &sym.cache[j];
        j = (j + 1) & (sym.cache_cap - 1);
    }
    return NULL;
}

static void cache_put(const struct wref__frame_info *info, int found)
{
    if (sym.cache_count * 2 >= sym.cache_cap) {
        size_t cap = sym.cache_cap ? sym.cache_cap * 2 : 1024;
        struct cached *t = calloc(cap, sizeof *t);
        if (t == NULL)
            return; /* uncached: looked up again next time */
        for (size_t i = 0; i < sym.cache_cap; i++) {
            if (sym.cache[i].info.pc == 0)
                continue;
            size_t j = hash_pc(sym.cache[i].info.pc) & (cap - 1);
            while (t[j].info.pc != 0)
                j = (j + 1) & (cap - 1);
            t[j] = sym.cache[i];
        }
        free(sym.cache);
        sym.cache = t;
        sym.cache_cap = cap;
    }
    size_t j = hash_pc(info->pc) & (sym.cache_cap - 1);
    while (sym.cache[j].info.pc != 0)
        j = (j + 1) & (sym.cache_cap - 1);
    sym.cache[j] = (struct cached){ found, *info };
    sym.cache_count++;
}

/* Reports the modules of the latest snapshot to Dwfl, each at the load bias the dynamic loader
 * used (exact, unlike guessing from /proc/self/maps). A module whose file cannot be read
 * (the vDSO) is skipped; the dladdr fallback still names its symbols. Returns 0 if Dwfl is
 * unusable. */
static int report_modules(void)
{
    static char *debuginfo_path = NULL;
    static const Dwfl_Callbacks callbacks = {
        .find_elf = dwfl_linux_proc_find_elf,
        .find_debuginfo = dwfl_standard_find_debuginfo,
        .debuginfo_path = &debuginfo_path,
    };
    if (sym.dwfl_failed)
        return 0;
    /* A fresh Dwfl each time: re-reporting modules into an old one loses them in libdw 0.188.
     * Nothing outlives it: results are copied (intern) before they are cached. */
    if (sym.dwfl != NULL)
        dwfl_end(sym.dwfl);
    if ((sym.dwfl = dwfl_begin(&callbacks)) == NULL) {
        sym.dwfl_failed = 1;
        return 0;
    }
    const struct module_table *t = __atomic_load_n(&modules.current, __ATOMIC_ACQUIRE);
    sym.reported = t;
    dwfl_report_begin(sym.dwfl);
    for (size_t i = 0; t != NULL && i < t->count; i++)
        (void)dwfl_report_elf(sym.dwfl, t->mods[i].path, t->mods[i].path, -1, t->mods[i].bias,
                              false);
    if (dwfl_report_end(sym.dwfl, NULL, NULL) != 0) {
        dwfl_end(sym.dwfl);
        sym.dwfl = NULL;
        sym.dwfl_failed = 1;
        return 0;
    }
    return 1;
}

/* The module containing addr from the loader's view, taking a new snapshot when addr is in
 * none (a library loaded since); Dwfl follows the snapshot. Returns 0 if addr is in no
 * module. */
static int locate(uintptr_t addr, const char **path, uintptr_t *offset, Dwfl_Module **mod)
{
    *mod = NULL;
    if (!wref__module_of(addr, path, offset)) {
        wref__symbolize_snapshot_modules();
        if (!wref__module_of(addr, path, offset))
            return 0;
    }
    if (sym.dwfl == NULL || sym.reported != __atomic_load_n(&modules.current, __ATOMIC_ACQUIRE))
        if (!report_modules())
            return 1;
    *mod = dwfl_addrmodule(sym.dwfl, addr);
    return 1;
}

/* file:line of addr from the module's DWARF line table, or NULL. dwfl_module_getsrc finds the
 * compile unit through .debug_aranges, which clang does not emit by default and libdw 0.188
 * does not rebuild; then the CUs are scanned for one whose ranges contain addr. */
static const char *source_line(Dwfl_Module *mod, uintptr_t addr, int *lineno)
{
    Dwfl_Line *line = dwfl_module_getsrc(mod, addr);
    if (line != NULL)
        return dwfl_lineinfo(line, NULL, lineno, NULL, NULL, NULL);
    Dwarf_Die *cu = NULL;
    Dwarf_Addr bias = 0;
    while ((cu = dwfl_module_nextcu(mod, cu, &bias)) != NULL) {
        if (dwarf_haspc(cu, addr - bias) <= 0)
            continue;
        Dwarf_Line *l = dwarf_getsrc_die(cu, addr - bias);
        if (l == NULL || dwarf_lineno(l, lineno) != 0)
            return NULL;
        return dwarf_linesrc(l, NULL, NULL);
    }
    return NULL;
}

static int resolve(uintptr_t pc, struct wref__frame_info *out)
{
    uintptr_t addr = pc - 1; /* the call instruction, not the one after it */
    const char *path;
    uintptr_t offset;
    Dwfl_Module *mod;
    int found = 0;
    if (locate(addr, &path, &offset, &mod)) {
        out->module = path;             /* lives in a snapshot, never freed */
        out->module_offset = offset + 1;
        found = 1;
    }
    if (mod != NULL) {
        GElf_Off off = 0;
        GElf_Sym s;
        const char *fn = dwfl_module_addrinfo(mod, addr, &off, &s, NULL, NULL, NULL);
        if (fn != NULL && (out->function = intern(fn)) != NULL)
            out->function_offset = (uintptr_t)off + 1;
        int lineno = 0;
        const char *file = source_line(mod, addr, &lineno);
        if (file != NULL && (out->file = intern(file)) != NULL)
            out->line = lineno;
    }
    if (out->function == NULL) {
        /* Dwfl could not read the module (the vDSO) or has no symbol: the loader's view. */
        Dl_info dl;
        if (dladdr((void *)addr, &dl) != 0 && dl.dli_sname != NULL && dl.dli_saddr != NULL &&
            (out->function = intern(dl.dli_sname)) != NULL)
            out->function_offset = pc - (uintptr_t)dl.dli_saddr;
    }
    return found || out->function != NULL;
}

int wref__symbolize(uintptr_t pc, struct wref__frame_info *out)
{
    memset(out, 0, sizeof *out);
    out->pc = pc;
    if (pc < 2)
        return 0;
    pthread_mutex_lock(&sym.lock);
    const struct cached *c = cache_find(pc);
    int found;
    if (c != NULL) {
        *out = c->info;
        found = c->found;
    } else {
        found = resolve(pc, out);
        cache_put(out, found);
    }
    pthread_mutex_unlock(&sym.lock);
    return found;
}
