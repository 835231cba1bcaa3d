/* symbolize.c: --format=symbolize, offline symbolization of report frames with libdwfl.
 *
 * Contract: every frame with a module and an offset but no file or line is looked up at
 * offset - 1 (the offset is a return address) in the module file; function, file and line
 * are filled by the checker's own symbolizer (src/check/engine/symbolize.c,
 * wref__symbolize_dwfl, compiled into the tool), so a frame is symbolized offline exactly as
 * the checker symbolizes it live. When the address is inside inlined code, the frame becomes
 * the whole inline chain, innermost first, each inlined level marked "inlined": true at its
 * own call-site line, then the holder, all with the frame's pc, module and offset. A module whose file is missing, unreadable, or whose build ID differs from
 * the frame's build_id is skipped with one warning. Results are cached per module and per
 * offset, so the cost is one DWARF lookup per distinct (module, offset). Only the JSON trees
 * change: the typed model of a report is stale afterwards. */
#include "model.h"

#include "check/engine/symbolize.h"

#include <elfutils/libdwfl.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHAIN 17   /* the checker's bound: 16 inlined levels and the holder */

struct module {
    char *path;
    Dwfl *dwfl;
    Dwfl_Module *mod;   /* NULL: unusable (warned once) */
    char *build_id;     /* hex, or NULL when the file has none */
};

struct entry {
    size_t module;           /* index + 1; 0: empty slot */
    unsigned long long offset;
    json_t *frames;          /* the replacement frames' symbol fields; empty: nothing known */
};

static struct {
    struct module *modules;
    size_t nmodules;
    struct entry *table;
    size_t cap, used;
} cache;

static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
};

static char *hex_build_id(Dwfl_Module *mod)
{
    const unsigned char *bits;
    GElf_Addr vaddr;
    int n = dwfl_module_build_id(mod, &bits, &vaddr);
    if (n <= 0)
        return NULL;
    char *s = report_xmalloc(2 * (size_t)n + 1);
    for (int i = 0; i < n; i++)
        snprintf(s + 2 * i, 3, "%02x", bits[i]);
    return s;
}

static void open_module(struct module *m)
{
    m->dwfl = dwfl_begin(&callbacks);
    if (!m->dwfl) {
        report_warning("%s: %s; its frames stay unsymbolized", m->path, dwfl_errmsg(-1));
        return;
    }
    dwfl_report_begin(m->dwfl);
    m->mod = dwfl_report_elf(m->dwfl, report_basename(m->path), m->path, -1, 0, false);
    dwfl_report_end(m->dwfl, NULL, NULL);
    if (!m->mod)
        report_warning("%s: %s; its frames stay unsymbolized", m->path, dwfl_errmsg(-1));
    else
        m->build_id = hex_build_id(m->mod);
}

/* Returns the module for `path`, opening it on first use. */
static size_t module_index(const char *path)
{
    for (size_t i = 0; i < cache.nmodules; i++)
        if (!strcmp(cache.modules[i].path, path))
            return i;
    struct module *grown = realloc(cache.modules, (cache.nmodules + 1) * sizeof *grown);
    if (!grown) {
        report_error("out of memory");
        exit(REPORT_EXIT_ERROR);
    }
    cache.modules = grown;
    struct module *m = &cache.modules[cache.nmodules];
    memset(m, 0, sizeof *m);
    m->path = report_xstrdup(path);
    open_module(m);
    return cache.nmodules++;
}

static json_t *sym(const char *function, const char *file, int line, int inlined)
{
    return json_pack("{s:s?,s:s?,s:o,s:b}", "function", function, "file", file, "line",
                     line > 0 ? json_integer(line) : json_null(), "inlined", inlined);
}

/* Looks `offset` up in module `mi`: a new array of symbol-field objects (maybe empty). */
static json_t *lookup(size_t mi, unsigned long long offset)
{
    json_t *out = json_array();
    Dwfl_Module *mod = cache.modules[mi].mod;
    if (!mod || offset == 0)
        return out;
    Dwarf_Addr start;
    dwfl_module_info(mod, NULL, &start, NULL, NULL, NULL, NULL, NULL);
    struct wref__frame_info frames[MAX_CHAIN];
    size_t n = wref__symbolize_dwfl(mod, (uintptr_t)(start + offset), frames, MAX_CHAIN);
    if (n == 1 && !frames[0].function && !frames[0].file)
        return out;   /* nothing known */
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, sym(frames[i].function, frames[i].file, frames[i].file ? frames[i].line : 0,
                                       frames[i].inlined));
    return out;
}

static void grow_table(void)
{
    struct entry *old = cache.table;
    size_t oldcap = cache.cap;
    cache.cap = oldcap ? oldcap * 2 : 1024;
    cache.table = report_xcalloc(cache.cap, sizeof *cache.table);
    for (size_t i = 0; i < oldcap; i++) {
        if (!old[i].module)
            continue;
        size_t s = (size_t)((old[i].offset * 0x9e3779b97f4a7c15ULL) >> 20 ^ old[i].module) & (cache.cap - 1);
        while (cache.table[s].module)
            s = (s + 1) & (cache.cap - 1);
        cache.table[s] = old[i];
    }
    free(old);
}

/* The cached result for (module, offset). */
static json_t *cached(size_t mi, unsigned long long offset)
{
    if (2 * (cache.used + 1) > cache.cap)
        grow_table();
    size_t s = (size_t)((offset * 0x9e3779b97f4a7c15ULL) >> 20 ^ (mi + 1)) & (cache.cap - 1);
    while (cache.table[s].module && (cache.table[s].module != mi + 1 || cache.table[s].offset != offset))
        s = (s + 1) & (cache.cap - 1);
    if (!cache.table[s].module) {
        cache.table[s] = (struct entry){mi + 1, offset, lookup(mi, offset)};
        cache.used++;
    }
    return cache.table[s].frames;
}

/* Whether the frame's module matches its build_id (warns once per module on mismatch). */
static int build_id_ok(struct module *m, const char *want)
{
    if (!want || !m->build_id || !strcmp(want, m->build_id))
        return 1;
    report_warning("%s: build ID %s differs from the report's %s (rebuilt since?); its frames "
                "stay unsymbolized", m->path, m->build_id, want);
    m->mod = NULL;
    return 0;
}

/* Appends the symbolized replacement(s) of frame `f` to `out`. */
static void symbolize_frame(json_t *f, json_t *out)
{
    const char *module = json_string_value(json_object_get(f, "module"));
    const char *offset = json_string_value(json_object_get(f, "offset"));
    if (!module || !offset || (json_is_string(json_object_get(f, "file")) &&
                               json_is_integer(json_object_get(f, "line")))) {
        json_array_append(out, f);
        return;
    }
    size_t mi = module_index(module);
    struct module *m = &cache.modules[mi];
    json_t *syms = m->mod && build_id_ok(m, json_string_value(json_object_get(f, "build_id")))
                       ? cached(mi, strtoull(offset, NULL, 16))
                       : NULL;
    if (!syms || !json_array_size(syms)) {
        json_array_append(out, f);
        return;
    }
    size_t i;
    json_t *s;
    json_array_foreach(syms, i, s) {
        json_t *copy = json_copy(f);
        const char *key;
        json_t *v;
        json_object_foreach(s, key, v) {
            if (!json_is_null(v) || !strcmp(key, "line"))
                json_object_set(copy, key, v);
        }
        json_array_append_new(out, copy);
    }
}

static void symbolize_stacks(json_t *finding)
{
    size_t i;
    json_t *stack;
    json_array_foreach(json_object_get(finding, "stacks"), i, stack) {
        json_t *frames = json_array(), *f;
        size_t j;
        json_array_foreach(json_object_get(stack, "frames"), j, f)
            symbolize_frame(f, frames);
        json_object_set_new(stack, "frames", frames);
    }
}

static void cache_free(void)
{
    for (size_t i = 0; i < cache.cap; i++)
        json_decref(cache.table[i].frames);
    for (size_t i = 0; i < cache.nmodules; i++) {
        if (cache.modules[i].dwfl)
            dwfl_end(cache.modules[i].dwfl);
        free(cache.modules[i].path);
        free(cache.modules[i].build_id);
    }
    free(cache.table);
    free(cache.modules);
    memset(&cache, 0, sizeof cache);
}

int report_symbolize(struct report **reports, size_t nreports)
{
    for (size_t r = 0; r < nreports; r++) {
        size_t i;
        json_t *finding;
        json_array_foreach(json_object_get(reports[r]->root, "findings"), i, finding)
            symbolize_stacks(finding);
    }
    cache_free();
    return 0;
}
