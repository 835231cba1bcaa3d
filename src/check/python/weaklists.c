/* weaklists.c: dangling-weakref for objects nobody watched (every python_watch mode).
 *
 * gh-108295's shape: a type with a weakref list (tp_weaklistoffset, or 3.12+'s managed
 * weakref) whose tp_dealloc never calls PyObject_ClearWeakRefs, and a weakref made in Python
 * code (weakref.ref(x)), which no interposer sees. So the free hook (objects.c) asks here, for
 * every freed block that is not watched: is it a dead object whose weakref list is not empty?
 *
 * Recognition, as wide.c's (see there): the object is at offset 0, 16 or 32 of the block; its
 * count is 0, an untracked GC head (0, 0 or 1) comes right before it, and its type word is a
 * type whose pre-header equals the offset. The header words are read directly when they lie on
 * the block's own page (live memory), else probed.
 *
 * The per-type decision is cached, so that a common free costs a few loads and one table
 * lookup: an open-addressing table of 64-bit entries, each a type's address (bits 3-46) with
 * its decision packed around it (bit 0: its instances are types; bits 1-2: the pre-header / 16;
 * bits 47-63: the weakref list's offset / 8, MANAGED for obj - 4 words, 0 for none). One word,
 * so a reader never sees a key with another type's decision: lookups take no lock; inserts,
 * removals and resets take `lock`. A type word not in the table is validated once
 * (wref__py_type_valid: probed, never dereferenced before), and a word found to be no type is
 * remembered for BAD_TTL lookups. A type's entry is removed at its own free (recognized with
 * bit 0 of its metatype's entry), and an unrecognized block's offsets 16 and 32 are removed too
 * (a type freed some way we do not recognize), so a cached address is never another object's.
 *
 * A non-empty list is trusted only when its head is a weakref to this very object (its
 * wr_object, probed: the head may be garbage when the block was no object): only then is the
 * object reported (objects.c, tombstone.c) and its memory kept. */
#include "frontend.h"

#include <pthread.h>
#include <string.h>

bool wref__py_weaklists;

#define ENTRIES 4096      /* at most half full, then reset */
#define MAX_PROBE 8       /* a lookup's linear probing; an insert that finds no slot resets */
#define BAD 4096          /* direct-mapped: words that are no type */
#define BAD_TTL 100000    /* lookups a "not a type" verdict is trusted */
#define ADDR_MASK (((1ull << 47) - 1) & ~7ull)
#define META 1ull
#define PRE_SHIFT 1
#define WL_SHIFT 47
#define WL_MANAGED 0x1FFFFull
#define DELETED 2ull      /* no address: matches no type */
/* statistics: plain moves, no locked add on the free path (a lost count is harmless) */
#define COUNT(x) __atomic_store_n(&(x), __atomic_load_n(&(x), __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED)

static struct {
    pthread_mutex_t lock;
    uint64_t e[ENTRIES];
    size_t used;
    struct {
        uintptr_t word;
        uint64_t until;
    } bad[BAD];
    uint64_t learns, checked, found, resets;
} d = {.lock = PTHREAD_MUTEX_INITIALIZER};

static inline size_t eslot(uintptr_t t)
{
    return (size_t)((t >> 3) * 0x9E3779B97F4A7C15ull >> 52) & (ENTRIES - 1);
}

/* The entry of type t, or 0 (lock-free). */
static inline __attribute__((always_inline)) uint64_t lookup(uintptr_t t)
{
    for (size_t i = eslot(t), k = 0; k < MAX_PROBE; i = (i + 1) & (ENTRIES - 1), k++) {
        uint64_t e = __atomic_load_n(&d.e[i], __ATOMIC_ACQUIRE);
        if ((e & ADDR_MASK) == t)
            return e;
        if (!e)
            return 0;
    }
    return 0;
}

/* Removes the entry of t, if any. */
static __attribute__((noinline)) void forget_locked(uintptr_t t);
static inline __attribute__((always_inline)) void forget(uintptr_t t)
{
    if (__builtin_expect(lookup(t) != 0, 0))
        forget_locked(t);
}

static __attribute__((noinline)) void forget_locked(uintptr_t t)
{
    pthread_mutex_lock(&d.lock);
    for (size_t i = eslot(t), k = 0; k < MAX_PROBE; i = (i + 1) & (ENTRIES - 1), k++)
        if ((d.e[i] & ADDR_MASK) == t)
            __atomic_store_n(&d.e[i], DELETED, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&d.lock);
}

/* The decision for the validated type t. */
static uint64_t decide(uintptr_t t)
{
    py_object *type = (py_object *)t;
    uint64_t e = t | ((uint64_t)(wref__py_preheader(type) / 16) << PRE_SHIFT);
    if (wref__py_type_flags(type) & PY_TPFLAGS_TYPE_SUBCLASS)
        e |= META;
    intptr_t wl = wref__py_weaklist_offset(type);
    if (wl == -4 * (intptr_t)sizeof(void *))
        e |= WL_MANAGED << WL_SHIFT;
    else if (wl > 0 && !(wl & 7) && (uint64_t)(wl >> 3) < WL_MANAGED)
        e |= (uint64_t)(wl >> 3) << WL_SHIFT;
    return e;   /* any other offset: not checked */
}

/* The entry of t after validating it (once: a type is inserted; a word that is no type is
 * remembered for a while), or 0. */
static __attribute__((noinline)) uint64_t learn(uintptr_t t)
{
    pthread_mutex_lock(&d.lock);
    uint64_t e = lookup(t);
    size_t b = (t >> 3) % BAD;
    d.learns++;
    if (e || (d.bad[b].word == t && d.bad[b].until > d.learns))
        goto out;
    bool not_ready;
    if (!wref__py_type_valid(t, &not_ready)) {
        if (!not_ready) {   /* a type being readied is one later: no verdict kept (wide.c) */
            d.bad[b].word = t;
            d.bad[b].until = d.learns + BAD_TTL;
        }
        goto out;
    }
    e = decide(t);
    size_t i = eslot(t), k = 0;
    for (; k < MAX_PROBE && d.e[i] > DELETED; i = (i + 1) & (ENTRIES - 1), k++)
        ;
    if (k == MAX_PROBE || d.used >= ENTRIES / 2) {   /* start over (readers then miss, and come here) */
        for (size_t j = 0; j < ENTRIES; j++)
            __atomic_store_n(&d.e[j], 0, __ATOMIC_RELEASE);
        d.used = 0;
        d.resets++;
        i = eslot(t);
    }
    if (!d.e[i])
        d.used++;
    __atomic_store_n(&d.e[i], e, __ATOMIC_RELEASE);
out:
    pthread_mutex_unlock(&d.lock);
    return e;
}

/* The head of obj's non-empty weakref list (at obj + wl) is trusted only when it is a live
 * weakref to obj (its wr_object, the word after the header, probed: the block may have been no
 * object) of a type we can validate. */
static __attribute__((noinline)) py_object *verify(uintptr_t obj, intptr_t wl, uintptr_t head, wref__py_weaklist *out)
{
    uintptr_t wr[3];
    if (!wref__py_plausible(head) || !wref__py_probe(head, wr, sizeof wr) || wr[2] != obj)
        return NULL;
    uint64_t we = lookup(wr[1]);
    if (!we && !(we = learn(wr[1])))
        return NULL;
    COUNT(d.found);
    out->wl = wl;
    out->head = head;
    out->head_block = head - ((we >> PRE_SHIFT) & 3) * 16;
    return (py_object *)obj;
}

/* The entry of the type word t of a candidate at offset off of its block, or 0 when t is no
 * type or its instances do not start at that offset. */
static inline __attribute__((always_inline)) uint64_t candidate(uintptr_t t, size_t off)
{
    uint64_t e = lookup(t);
    if (!e && !(e = learn(t)))
        return 0;
    return ((e >> PRE_SHIFT) & 3) * 16 == off ? e : 0;
}

/* The rest of wref__py_weaklisted once the object is found at obj with its type's entry e. */
static inline __attribute__((always_inline)) py_object *found(uintptr_t p, uintptr_t obj, uint64_t e,
                                                              wref__py_weaklist *out)
{
    if (__builtin_expect(e & META, 0))   /* the freed object is itself a type */
        forget(obj);
    uint64_t code = e >> WL_SHIFT;
    if (!code)
        return NULL;
    uintptr_t at = obj + (code == WL_MANAGED ? (uintptr_t)(-4 * (intptr_t)sizeof(void *)) : (uintptr_t)(code << 3));
    uintptr_t head;
    COUNT(d.checked);
    if (__builtin_expect(((p ^ (at + 7)) >> 12) == 0, 1))
        head = *(const uintptr_t *)at;
    else if (!wref__py_probe(at, &head, sizeof head))
        return NULL;
    return head ? verify(obj, at - obj, head, out) : NULL;
}

/* wref__py_weaklisted on its six header words w (read or probed by the caller). */
static inline __attribute__((always_inline)) py_object *recognize(uintptr_t p, const uintptr_t *w,
                                                                  wref__py_weaklist *out)
{
    uint64_t e;
    if (!w[0] && wref__py_plausible(w[1]) && (e = candidate(w[1], 0)))
        return found(p, p, e, out);
    if (!w[0] && w[1] <= 1 && !w[2] && wref__py_plausible(w[3]) && (e = candidate(w[3], 16)))
        return found(p, p + 16, e, out);
    if (!w[2] && w[3] <= 1 && !w[4] && wref__py_plausible(w[5]) && (e = candidate(w[5], 32)))
        return found(p, p + 32, e, out);
    forget(p + 16);   /* maybe the block of a type freed some way we do not recognize */
    forget(p + 32);
    return NULL;
}

/* A block within 48 bytes of its page's end: the words on the next page are probed. */
static __attribute__((noinline)) py_object *weaklisted_page_end(uintptr_t p, wref__py_weaklist *out)
{
    uintptr_t w[6] = {((const uintptr_t *)p)[0], ((const uintptr_t *)p)[1], 1, 1, 1, 1};   /* 1: no match */
    for (unsigned i = 2; i < 6; i++)
        if (!wref__py_read_block(p, p + 8 * i, &w[i], sizeof w[i]))
            break;
    return recognize(p, w, out);
}

py_object *wref__py_weaklisted(uintptr_t p, wref__py_weaklist *out)
{
    if (__builtin_expect(((p ^ (p + 47)) >> 12) != 0, 0))
        return weaklisted_page_end(p, out);
    return recognize(p, (const uintptr_t *)p, out);
}

/* The common free, with no call at all (a leaf: nothing to save): recognize() with lookups
 * only; anything that needs more (a type word not cached, a type dying, a cached address
 * freed, a list not empty, a word on the next page) is left to wref__py_weaklisted. */
bool wref__py_weaklisted_maybe(uintptr_t p)
{
    if (__builtin_expect(((p ^ (p + 47)) >> 12) != 0, 0))
        return true;
    const uintptr_t *w = (const uintptr_t *)p;   /* a block has 16 bytes at least; the rest is on its page */
    uint64_t e;
    uintptr_t obj;
    if (!w[0] && wref__py_plausible(w[1])) {
        if (!(e = lookup(w[1])))
            return true;
        if (!((e >> PRE_SHIFT) & 3)) {
            obj = p;
            goto found;
        }
    }
    if (!w[0] && w[1] <= 1 && !w[2] && wref__py_plausible(w[3])) {
        if (!(e = lookup(w[3])))
            return true;
        if (((e >> PRE_SHIFT) & 3) == 1) {
            obj = p + 16;
            goto found;
        }
    }
    if (!w[2] && w[3] <= 1 && !w[4] && wref__py_plausible(w[5])) {
        if (!(e = lookup(w[5])))
            return true;
        if (((e >> PRE_SHIFT) & 3) == 2) {
            obj = p + 32;
            goto found;
        }
    }
    return lookup(p + 16) || lookup(p + 32);
found:;
    uint64_t code = e >> WL_SHIFT;
    if (e & META)
        return true;
    if (!code)
        return false;
    uintptr_t at = obj + (code == WL_MANAGED ? (uintptr_t)(-4 * (intptr_t)sizeof(void *)) : (uintptr_t)(code << 3));
    if (((p ^ (at + 7)) >> 12) == 0 && !*(const uintptr_t *)at) {
        COUNT(d.checked);
        return false;
    }
    return true;
}

void wref__py_weaklists_init(void)
{
    wref__py_weaklists = true;
}

void wref__py_weaklists_fork(enum wref__fork_phase phase)
{
    wref__fork_mutex(&d.lock, phase);
}

void wref__py_weaklists_stats(void)
{
    if (!wref__py_weaklists || wref__opt.verbosity < 1)
        return;
    pthread_mutex_lock(&d.lock);
    size_t types = 0;
    for (size_t i = 0; i < ENTRIES; i++)
        types += d.e[i] > DELETED;
    wref__checker_warn(NULL, "python frontend: weakref lists: %llu checked at the free of an unwatched object, "
                       "%llu found not empty; %zu types known, %llu validated, %llu resets",
                       (unsigned long long)d.checked, (unsigned long long)d.found, types,
                       (unsigned long long)d.learns, (unsigned long long)d.resets);
    pthread_mutex_unlock(&d.lock);
}
