/* symbolize.c: the module map (one entry per load, signal-safe reads) and the report-time
 * symbolizer (elfutils libdwfl: symbol tables, DWARF line tables, inline scopes).
 *
 * Module map: an append-only array of loads in one mmap'd region. A refresh walks
 * dl_iterate_phdr under map.lock: a module not in the map (same range, bias and path) is
 * appended with gen_loaded = the new generation; a live load the walk did not see gets
 * gen_unloaded = the new generation. Entries are filled before `count` is release-stored and
 * never change afterwards, except gen_unloaded (set once, atomically), so readers need no
 * lock.
 *
 * Symbolizer: one Dwfl per load (reported at its exact load bias, so two loads of different
 * libraries at the same address never meet), created on first use and kept; results are
 * interned and cached per (pc, load). Everything runs under sym.lock. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "check/engine/symbolize.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <link.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- module map (signal-safe reads) ---------------------------------------------------------- */

#define MAX_LOADS 8192u
#define POOL_BYTES ((size_t)4 << 20)
#define LOADED UINT32_MAX   /* gen_unloaded of a load still mapped */

struct load {
    uintptr_t start, end;   /* [start, end): the module's PT_LOAD segments */
    uintptr_t bias;         /* load bias (dlpi_addr) */
    const char *path;       /* in the pool */
    const char *build_id;   /* in the pool; NULL when the module has none */
    uint32_t gen_loaded;    /* generation in which the load appeared */
    uint32_t gen_unloaded;  /* atomic; LOADED until a refresh no longer sees it */
    uint32_t seen;          /* map.lock: last refresh that saw it */
};

static struct {
    pthread_mutex_t lock;   /* serializes refreshes (writers) */
    struct load *loads;     /* MAX_LOADS entries, mmap'd at the first refresh */
    size_t count;           /* release-stored after an entry is filled */
    uint32_t gen;           /* atomic */
    uint32_t walk;          /* lock: refresh counter, for load.seen */
    char *pool;             /* lock: strings, bump-allocated, never freed */
    size_t pool_used;
    int full_warned;
    char exe[PATH_MAX];     /* lock: the main program's path ("" in dl_iterate_phdr) */
} map = { .lock = PTHREAD_MUTEX_INITIALIZER };

uint32_t wref__module_gen(void)
{
    return __atomic_load_n(&map.gen, __ATOMIC_RELAXED);
}

static const char *pool_copy(const char *s, size_t len)
{
    if (POOL_BYTES - map.pool_used < len + 1)
        return NULL;
    char *p = map.pool + map.pool_used;
    memcpy(p, s, len);
    p[len] = 0;
    map.pool_used += len + 1;
    return p;
}

/* The GNU build-id note of a loaded module as hex, read from its mapped PT_NOTE segments. */
static const char *build_id_of(const struct dl_phdr_info *info)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            size_t name = (nh->n_namesz + 3u) & ~3u, desc = (nh->n_descsz + 3u) & ~3u;
            const unsigned char *d = (const unsigned char *)p + sizeof *nh + name;
            if ((size_t)(end - p) < sizeof *nh + name + desc)
                break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(p + sizeof *nh, "GNU", 4) &&
                nh->n_descsz > 0 && nh->n_descsz <= 64) {
                char hex[129];
                for (size_t k = 0; k < nh->n_descsz; k++) {
                    hex[2 * k] = "0123456789abcdef"[d[k] >> 4];
                    hex[2 * k + 1] = "0123456789abcdef"[d[k] & 15];
                }
                return pool_copy(hex, 2 * nh->n_descsz);
            }
            p += sizeof *nh + name + desc;
        }
    }
    return NULL;
}

static int refresh_one(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    int *changed = arg;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        lo = a < lo ? a : lo;
        hi = a + ph->p_memsz > hi ? a + ph->p_memsz : hi;
    }
    if (lo >= hi)
        return 0;
    const char *path = info->dlpi_name != NULL && info->dlpi_name[0] != 0 ? info->dlpi_name : map.exe;
    for (size_t i = 0; i < map.count; i++) {
        struct load *l = &map.loads[i];
        if (l->gen_unloaded == LOADED && l->start == lo && l->end == hi && l->bias == info->dlpi_addr &&
            strcmp(l->path, path) == 0) {
            l->seen = map.walk;
            return 0;
        }
    }
    if (map.count == MAX_LOADS) {
        map.full_warned = 1;   /* a frame in a module beyond the limit stays unnamed */
        return 0;
    }
    struct load *l = &map.loads[map.count];
    const char *p = pool_copy(path, strlen(path));
    if (p == NULL)
        return 0;
    *l = (struct load){ lo, hi, info->dlpi_addr, p, build_id_of(info), map.gen + 1, LOADED, map.walk };
    __atomic_store_n(&map.count, map.count + 1, __ATOMIC_RELEASE);
    *changed = 1;
    return 0;
}

void wref__symbolize_snapshot_modules(void)
{
    pthread_mutex_lock(&map.lock);
    if (map.loads == NULL) {
        size_t bytes = MAX_LOADS * sizeof(struct load) + POOL_BYTES;
        void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            pthread_mutex_unlock(&map.lock);
            return;
        }
        map.loads = m;
        map.pool = (char *)m + MAX_LOADS * sizeof(struct load);
    }
    ssize_t n = readlink("/proc/self/exe", map.exe, sizeof map.exe - 1);
    map.exe[n > 0 ? n : 0] = 0;
    map.walk++;
    int changed = 0;
    dl_iterate_phdr(refresh_one, &changed);
    for (size_t i = 0; i < map.count; i++) {
        struct load *l = &map.loads[i];
        if (l->gen_unloaded == LOADED && l->seen != map.walk) {
            __atomic_store_n(&l->gen_unloaded, map.gen + 1, __ATOMIC_RELEASE);
            changed = 1;
        }
    }
    if (changed)
        __atomic_store_n(&map.gen, map.gen + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&map.lock);
}

/* The load that held pc at generation gen: the one live then; else the earliest that
 * appeared after gen (a stack captured while a library's constructors ran, before the
 * refresh that follows dlopen); else the latest. NULL when pc is in no load. */
static const struct load *load_at(uintptr_t pc, uint32_t gen)
{
    size_t count = __atomic_load_n(&map.count, __ATOMIC_ACQUIRE);
    const struct load *later = NULL, *any = NULL;
    for (size_t i = 0; i < count; i++) {
        const struct load *l = &map.loads[i];
        if (pc < l->start || pc >= l->end)
            continue;
        uint32_t gone = __atomic_load_n(&l->gen_unloaded, __ATOMIC_ACQUIRE);
        if (l->gen_loaded <= gen && gen < gone)
            return l;
        if (l->gen_loaded > gen && (later == NULL || l->gen_loaded < later->gen_loaded))
            later = l;
        any = l;
    }
    return later != NULL ? later : any;
}

int wref__module_info(uintptr_t pc, uint32_t gen, const char **path, const char **build_id, uintptr_t *offset)
{
    const struct load *l = load_at(pc, gen);
    if (l == NULL)
        return 0;
    *path = l->path;
    *build_id = l->build_id;
    *offset = pc - l->bias;
    return 1;
}

int wref__module_of(uintptr_t pc, const char **path, uintptr_t *offset)
{
    const char *build_id;
    return wref__module_info(pc, wref__module_gen(), path, &build_id, offset);
}

/* ---- symbolizer (report time, under sym.lock) ---------------------------------------------- */

#define MAX_INLINE 16   /* inlined levels kept per pc */

struct cached {
    uintptr_t pc;                   /* 0: empty slot */
    const struct load *load;        /* NULL: pc in no module */
    size_t n;
    struct wref__frame_info *frames;   /* n frames, malloc'd, never freed */
};

static struct {
    pthread_mutex_t lock;       /* protects everything below */
    Dwfl **dwfl;                /* per load index; NULL until first use */
    unsigned char *dwfl_failed; /* per load index */
    size_t dwfl_cap;
    struct cached *cache;       /* open addressing by (pc, load), capacity a power of two */
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

static size_t hash_key(uintptr_t pc, const struct load *l)
{
    uint64_t k = pc ^ ((uint64_t)(uintptr_t)l << 17);
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

static struct cached *cache_find(uintptr_t pc, const struct load *l)
{
    if (sym.cache_cap == 0)
        return NULL;
    size_t j = hash_key(pc, l) & (sym.cache_cap - 1);
    for (; sym.cache[j].pc != 0; j = (j + 1) & (sym.cache_cap - 1))
        if (sym.cache[j].pc == pc && sym.cache[j].load == l)
            return &sym.cache[j];
    return NULL;
}

static void cache_put(uintptr_t pc, const struct load *l, const struct wref__frame_info *frames, size_t n)
{
    if (sym.cache_count * 2 >= sym.cache_cap) {
        size_t cap = sym.cache_cap ? sym.cache_cap * 2 : 1024;
        struct cached *t = calloc(cap, sizeof *t);
        if (t == NULL)
            return; /* uncached: looked up again next time */
        for (size_t i = 0; i < sym.cache_cap; i++) {
            if (sym.cache[i].pc == 0)
                continue;
            size_t j = hash_key(sym.cache[i].pc, sym.cache[i].load) & (cap - 1);
            while (t[j].pc != 0)
                j = (j + 1) & (cap - 1);
            t[j] = sym.cache[i];
        }
        free(sym.cache);
        sym.cache = t;
        sym.cache_cap = cap;
    }
    struct wref__frame_info *copy = malloc(n * sizeof *copy);
    if (copy == NULL)
        return;
    memcpy(copy, frames, n * sizeof *copy);
    size_t j = hash_key(pc, l) & (sym.cache_cap - 1);
    while (sym.cache[j].pc != 0)
        j = (j + 1) & (sym.cache_cap - 1);
    sym.cache[j] = (struct cached){ pc, l, n, copy };
    sym.cache_count++;
}

/* The Dwfl of load l (its file reported alone, at its load bias), or NULL when the file
 * cannot be read (the vDSO, a deleted file). */
static Dwfl_Module *module_of_load(const struct load *l)
{
    static char *debuginfo_path = NULL;
    static const Dwfl_Callbacks callbacks = {
        .find_elf = dwfl_linux_proc_find_elf,
        .find_debuginfo = dwfl_standard_find_debuginfo,
        .debuginfo_path = &debuginfo_path,
    };
    size_t i = (size_t)(l - map.loads);
    if (i >= sym.dwfl_cap) {
        size_t cap = sym.dwfl_cap ? sym.dwfl_cap * 2 : 64;
        while (cap <= i)
            cap *= 2;
        Dwfl **d = realloc(sym.dwfl, cap * sizeof *d);
        if (d == NULL)
            return NULL;
        sym.dwfl = d;
        unsigned char *f = realloc(sym.dwfl_failed, cap);
        if (f == NULL)
            return NULL;
        sym.dwfl_failed = f;
        memset(d + sym.dwfl_cap, 0, (cap - sym.dwfl_cap) * sizeof *d);
        memset(f + sym.dwfl_cap, 0, cap - sym.dwfl_cap);
        sym.dwfl_cap = cap;
    }
    if (sym.dwfl[i] == NULL && !sym.dwfl_failed[i]) {
        Dwfl *d = dwfl_begin(&callbacks);
        if (d != NULL) {
            dwfl_report_begin(d);
            Dwfl_Module *m = dwfl_report_elf(d, l->path, l->path, -1, l->bias, false);
            if (dwfl_report_end(d, NULL, NULL) != 0 || m == NULL) {
                dwfl_end(d);
                d = NULL;
            }
        }
        sym.dwfl[i] = d;
        sym.dwfl_failed[i] = d == NULL;
    }
    return sym.dwfl[i] != NULL ? dwfl_addrmodule(sym.dwfl[i], l->start) : NULL;
}

/* The compile unit holding addr. dwfl_module_addrdie uses .debug_aranges, which clang does
 * not emit by default and libdw 0.188 does not rebuild; then the CUs are scanned. */
static Dwarf_Die *cu_of(Dwfl_Module *mod, uintptr_t addr, Dwarf_Addr *bias)
{
    Dwarf_Die *cu = dwfl_module_addrdie(mod, addr, bias);
    if (cu != NULL)
        return cu;
    while ((cu = dwfl_module_nextcu(mod, cu, bias)) != NULL)
        if (dwarf_haspc(cu, addr - *bias) > 0)
            return cu;
    return NULL;
}

static const char *source_line(Dwarf_Die *cu, Dwarf_Addr addr, int *lineno)
{
    Dwarf_Line *l = dwarf_getsrc_die(cu, addr);
    if (l == NULL || dwarf_lineno(l, lineno) != 0)
        return NULL;
    return dwarf_linesrc(l, NULL, NULL);
}

static const char *die_name(Dwarf_Die *die)
{
    Dwarf_Attribute a;
    const char *s = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &a));
    return s != NULL ? s : dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &a));
}

/* Collects, outermost first, the DW_TAG_inlined_subroutine DIEs whose ranges hold addr, by
 * descending the concrete DIE tree from `parent` (the CU): at each level, into the one child
 * scope that holds addr. Namespaces and classes are descended without being scopes (C++
 * functions defined inside them). dwarf_getscopes is not used: after an inlined instance it
 * continues with the scopes of the inlined function's abstract definition, so every level
 * between the innermost and the holder would be lost. Returns the count (at most max; a
 * deeper chain keeps its outermost levels, the holder's closest callees). */
static size_t inlined_scopes(Dwarf_Die *parent, Dwarf_Addr addr, Dwarf_Die *chain, size_t n, size_t max,
                             unsigned depth)
{
    Dwarf_Die child;
    if (depth > 256 || dwarf_child(parent, &child) != 0)
        return n;
    do {
        switch (dwarf_tag(&child)) {
        case DW_TAG_subprogram:
        case DW_TAG_lexical_block:
        case DW_TAG_try_block:
        case DW_TAG_catch_block:
        case DW_TAG_inlined_subroutine:
            if (dwarf_haspc(&child, addr) <= 0)
                break;
            if (dwarf_tag(&child) == DW_TAG_inlined_subroutine && n < max)
                chain[n++] = child;
            return inlined_scopes(&child, addr, chain, n, max, depth + 1);
        case DW_TAG_namespace:
        case DW_TAG_class_type:
        case DW_TAG_structure_type:
        case DW_TAG_union_type: {
            size_t m = inlined_scopes(&child, addr, chain, n, max, depth + 1);
            if (m != n)
                return m;
            break;
        }
        default:
            break;
        }
    } while (dwarf_siblingof(&child, &child) == 0);
    return n;
}

/* Fills the inlined frames at addr (innermost first) and, in *outer, the file:line of the
 * call site in the function that holds them. Frame 0's file:line is left as in `base` (the
 * line table's, which is inside the innermost inlined body); frame k > 0 stands at the call
 * site of frame k - 1 (its DW_AT_call_file/line); the holder stands at the outermost one's.
 * Returns the number of inlined frames (as `addr2line -i` lists them, minus the holder). */
static size_t inline_chain(Dwarf_Die *cu, Dwarf_Addr addr, const struct wref__frame_info *base,
                           struct wref__frame_info *out, size_t max, struct wref__frame_info *outer)
{
    Dwarf_Die chain[MAX_INLINE];
    size_t n = inlined_scopes(cu, addr, chain, 0, max < MAX_INLINE ? max : MAX_INLINE, 0);
    Dwarf_Files *files = NULL;
    size_t nfiles = 0;
    (void)dwarf_getsrcfiles(cu, &files, &nfiles);
    for (size_t k = 0; k < n; k++) {
        Dwarf_Die *scope = &chain[n - 1 - k];   /* innermost first */
        out[k] = *base;
        out[k].inlined = 1;
        out[k].function = intern(die_name(scope));
        out[k].function_offset = 0;
        if (k > 0) {   /* at the call site recorded in the previous (inner) scope */
            out[k].file = outer->file;
            out[k].line = outer->line;
        }
        /* this scope's call site is where its caller (the next frame) stands */
        Dwarf_Attribute a;
        Dwarf_Word file_idx = 0, line = 0;
        outer->file = NULL;
        outer->line = 0;
        if (dwarf_formudata(dwarf_attr(scope, DW_AT_call_file, &a), &file_idx) == 0 && files != NULL &&
            file_idx < nfiles)
            outer->file = intern(dwarf_filesrc(files, file_idx, NULL, NULL));
        if (dwarf_formudata(dwarf_attr(scope, DW_AT_call_line, &a), &line) == 0)
            outer->line = (int)line;
    }
    return n;
}

/* The DWARF and symbol-table part of a lookup: fills fi's function and file:line for addr (the
 * call instruction, in mod's address space) and out[0..] with the functions inlined there,
 * innermost first; fi becomes the holder, at the outermost inlined call site. Returns the
 * number of inlined frames (at most max - 1). Under sym.lock. */
static size_t dwarf_frames(Dwfl_Module *mod, uintptr_t addr, struct wref__frame_info *fi,
                           struct wref__frame_info *out, size_t max)
{
    size_t n_inl = 0;
    GElf_Off off = 0;
    GElf_Sym s;
    const char *fn = dwfl_module_addrinfo(mod, addr, &off, &s, NULL, NULL, NULL);
    if (fn != NULL && (fi->function = intern(fn)) != NULL)
        fi->function_offset = (uintptr_t)off + 1;
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = cu_of(mod, addr, &bias);
    if (cu != NULL) {
        int lineno = 0;
        const char *file = source_line(cu, addr - bias, &lineno);
        if (file != NULL && (fi->file = intern(file)) != NULL)
            fi->line = lineno;
        struct wref__frame_info outer = *fi;
        if (max > 1)
            n_inl = inline_chain(cu, addr - bias, fi, out, max - 1, &outer);
        if (n_inl > 0) {
            out[0].file = fi->file;   /* the innermost inlined body is where the line table points */
            out[0].line = fi->line;
            fi->file = outer.file;
            fi->line = outer.line;
        }
    }
    return n_inl;
}

static size_t resolve(uintptr_t pc, const struct load *l, struct wref__frame_info *out, size_t max)
{
    uintptr_t addr = pc - 1; /* the call instruction, not the one after it */
    struct wref__frame_info fi = { .pc = pc };
    if (l != NULL) {
        fi.module = l->path;
        fi.build_id = l->build_id;
        fi.module_offset = pc - l->bias;
    }
    Dwfl_Module *mod = l != NULL ? module_of_load(l) : NULL;
    size_t n_inl = mod != NULL ? dwarf_frames(mod, addr, &fi, out, max) : 0;
    if (fi.function == NULL) {
        /* Dwfl could not read the module (the vDSO) or has no symbol: the loader's view. */
        Dl_info dl;
        if (dladdr((void *)addr, &dl) != 0 && dl.dli_sname != NULL && dl.dli_saddr != NULL &&
            (fi.function = intern(dl.dli_sname)) != NULL)
            fi.function_offset = pc - (uintptr_t)dl.dli_saddr;
    }
    out[n_inl] = fi;
    return n_inl + 1;
}

size_t wref__symbolize_dwfl(struct Dwfl_Module *mod, uintptr_t pc, struct wref__frame_info *out, size_t max)
{
    if (max == 0)
        return 0;
    struct wref__frame_info tmp[MAX_INLINE + 1], fi = { .pc = pc };
    pthread_mutex_lock(&sym.lock);
    size_t n = pc >= 2 ? dwarf_frames(mod, pc - 1, &fi, tmp, MAX_INLINE + 1) : 0;
    pthread_mutex_unlock(&sym.lock);
    tmp[n++] = fi;
    size_t skip = n > max ? n - max : 0;   /* keep the holder when max cuts the chain */
    memcpy(out, tmp + skip, (n - skip) * sizeof *out);
    return n - skip;
}

size_t wref__symbolize_frames(uintptr_t pc, uint32_t gen, struct wref__frame_info *out, size_t max)
{
    if (max == 0)
        return 0;
    memset(out, 0, sizeof *out);
    out->pc = pc;
    if (pc < 2)
        return 1;
    const struct load *l = load_at(pc - 1, gen);
    if (l == NULL) {   /* a library loaded since the last refresh */
        wref__symbolize_snapshot_modules();
        l = load_at(pc - 1, gen);
    }
    struct wref__frame_info tmp[MAX_INLINE + 1];
    pthread_mutex_lock(&sym.lock);
    const struct cached *c = cache_find(pc, l);
    size_t n;
    if (c != NULL) {
        n = c->n;
        memcpy(tmp, c->frames, n * sizeof *tmp);
    } else {
        n = resolve(pc, l, tmp, MAX_INLINE + 1);
        cache_put(pc, l, tmp, n);
    }
    pthread_mutex_unlock(&sym.lock);
    /* keep the outermost frame (the real function) when max cuts the chain */
    size_t skip = n > max ? n - max : 0;
    memcpy(out, tmp + skip, (n - skip) * sizeof *out);
    return n - skip;
}

int wref__symbolize(uintptr_t pc, struct wref__frame_info *out)
{
    struct wref__frame_info frames[MAX_INLINE + 1];
    size_t n = wref__symbolize_frames(pc, wref__module_gen(), frames, MAX_INLINE + 1);
    *out = frames[n - 1];
    return out->module != NULL || out->function != NULL;
}

/* Lock order: sym.lock, then map.lock. A resolve under sym.lock can take map.lock: libdw
 * dlopens (libdebuginfod, lazily), and the interposed dlopen refreshes the module map. Fork
 * took them the other way round and deadlocked with such a resolve (victim.fork_under_load). */
void wref__symbolize_fork(int prepare)
{
    if (prepare) {
        pthread_mutex_lock(&sym.lock);
        pthread_mutex_lock(&map.lock);
    } else {
        pthread_mutex_unlock(&map.lock);
        pthread_mutex_unlock(&sym.lock);
    }
}
