/* known.c: a thread's last borrow site and the objects known borrowed there (known.h). */
#include "known.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

__thread __attribute__((tls_model("initial-exec"))) wref__py_last wref__py_last_borrow;

void wref__py_known_epoch(wref__py_last *l, uint64_t gen, uint64_t borrows)
{
    uintptr_t next = (l->tag >> WREF__PY_KNOWN_SHIFT) + 1;
    if (next >> (64 - WREF__PY_KNOWN_SHIFT)) {   /* wrapped: no old entry may look current again */
        memset(l->known, 0, WREF__PY_KNOWN_SETS * sizeof *l->known);
        next = 1;
    }
    l->tag = next << WREF__PY_KNOWN_SHIFT;
    l->generation = gen;
    l->borrows = borrows;
}

static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static bool key_made;

/* At the thread's exit: its table freed and its site unset (a later borrow sets both again). */
static void table_free(void *table)
{
    wref__py_last *l = &wref__py_last_borrow;
    l->pc = l->code = l->where = 0;
    l->known = NULL;
    l->tag = 0;
    free(table);
}

static void key_make(void)
{
    key_made = pthread_key_create(&key, table_free) == 0;
}

/* The thread's table, allocated on first use; false when out of memory. */
static bool table(wref__py_last *l)
{
    if (l->known)
        return true;
    (void)pthread_once(&key_once, key_make);
    uintptr_t(*t)[2] = key_made ? calloc(WREF__PY_KNOWN_SETS, sizeof *t) : NULL;
    if (!t || pthread_setspecific(key, t) != 0) {
        free(t);
        return false;
    }
    l->known = t;   /* its tag is 0 (never set, or cleared by table_free): the first epoch is 1 */
    return true;
}

bool wref__py_last_set(wref__py_last *l, wref__py_site_key k, uint64_t stacks, unsigned tno, uint64_t gen,
                       uint64_t borrows)
{
    if (!k.code || !table(l))
        return false;
    if (!wref__py_last_at(l, k) || l->stacks != stacks || l->tno != tno) {
        l->pc = k.pc, l->code = k.code, l->where = k.where;
        l->stacks = stacks;
        l->tno = tno;
        wref__py_known_epoch(l, gen, borrows);
    } else if (l->generation != gen || l->borrows != borrows) {
        wref__py_known_epoch(l, gen, borrows);
    }
    return true;
}
