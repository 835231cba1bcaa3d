/* audit.c: libwref-audit.so, the rtld-audit module (LD_AUDIT) that lets the preloaded checker
 * see CPython calls from extension modules when the executable itself defines the C API
 * (Debian's python3.11 has libpython linked in, so its definitions come before any
 * LD_PRELOAD in symbol lookup).
 *
 * For every binding of an interposed name (PyWeakref_GetObject, NewRef, NewProxy, 3.13's
 * PyUnstable_Object_ClearWeakRefsNoCallbacks) from an object other than
 * libwref-check.so to a definition elsewhere, la_symbind64 returns libwref-check.so's
 * definition instead, found in its dynamic symbol table through its GNU hash table (dlsym on a
 * map of the main namespace crashes when called from here, glibc 2.36). The checker finds the real one itself (dlsym RTLD_DEFAULT: the
 * executable's).
 *
 * Rules for this file (ld.so(8), rtld-audit(7)): it runs in its own link-map namespace with
 * its own copy of libc, so it shares no state with the checker but addresses; la_version
 * returns the version it is given (LAV_CURRENT changed in glibc 2.35); la_pltenter and
 * la_pltexit are not defined (they would send every PLT call through the slow trampoline);
 * no allocation, no output. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <link.h>
#include <stdint.h>
#include <string.h>

#define AUDIT_EXPORT __attribute__((visibility("default")))

static struct link_map *checker;   /* libwref-check.so in the main namespace */

/* The names libwref-check.so interposes for CPython (src/check/python/intercept.c). */
static const char *const interposed[] = {"PyWeakref_GetObject", "PyWeakref_NewRef", "PyWeakref_NewProxy",
                                         "PyUnstable_Object_ClearWeakRefsNoCallbacks",
                                         "PyModule_Create2", "PyModuleDef_Init"};   /* wide.c */

static int interposed_name(const char *name)
{
    if (name[0] != 'P' || name[1] != 'y')
        return 0;
    for (size_t i = 0; i < sizeof interposed / sizeof interposed[0]; i++)
        if (!strcmp(name, interposed[i]))
            return 1;
    return 0;
}

static int is_checker(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return !strncmp(base, "libwref-check.so", 16);
}

/* Address of the definition of `name` in map's dynamic symbol table, or 0. */
static uintptr_t gnu_lookup(struct link_map *map, const char *name)
{
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    const uint32_t *gh = NULL;
    for (const ElfW(Dyn) *d = map->l_ld; d->d_tag != DT_NULL; d++) {
        uintptr_t p = d->d_un.d_ptr;
        if (p < map->l_addr)
            p += map->l_addr;   /* not relocated in place (read-only dynamic section) */
        if (d->d_tag == DT_SYMTAB)
            symtab = (const ElfW(Sym) *)p;
        else if (d->d_tag == DT_STRTAB)
            strtab = (const char *)p;
        else if (d->d_tag == DT_GNU_HASH)
            gh = (const uint32_t *)p;
    }
    if (!symtab || !strtab || !gh)
        return 0;
    uint32_t h = 5381;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = h * 33 + *c;
    uint32_t nbuckets = gh[0], symoffset = gh[1], bloom_size = gh[2];
    const uint32_t *buckets = gh + 4 + bloom_size * (sizeof(ElfW(Addr)) / 4);
    const uint32_t *chain = buckets + nbuckets;
    if (!nbuckets)
        return 0;
    uint32_t idx = buckets[h % nbuckets];
    if (idx < symoffset)
        return 0;
    for (;; idx++) {
        uint32_t ch = chain[idx - symoffset];
        const ElfW(Sym) *s = &symtab[idx];
        if ((h | 1) == (ch | 1) && s->st_shndx != SHN_UNDEF && !strcmp(strtab + s->st_name, name))
            return map->l_addr + s->st_value;
        if (ch & 1)
            return 0;
    }
}

AUDIT_EXPORT unsigned int la_version(unsigned int version)
{
    return version;
}

AUDIT_EXPORT unsigned int la_objopen(struct link_map *map, Lmid_t lmid, uintptr_t *cookie)
{
    *cookie = (uintptr_t)map;
    if (lmid == LM_ID_BASE && map->l_name && !checker && is_checker(map->l_name))
        checker = map;
    return LA_FLG_BINDTO | LA_FLG_BINDFROM;
}

AUDIT_EXPORT uintptr_t la_symbind64(Elf64_Sym *sym, unsigned int ndx, uintptr_t *refcook, uintptr_t *defcook,
                                    unsigned int *flags, const char *symname)
{
    (void)ndx;
    (void)flags;
    if (checker && interposed_name(symname) && *refcook != (uintptr_t)checker && *defcook != (uintptr_t)checker) {
        uintptr_t ours = gnu_lookup(checker, symname);
        if (ours)
            return ours;
    }
    return sym->st_value;
}
