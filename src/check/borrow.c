/* borrow.c: the borrowed pointers each thread holds (from wref_get_object/WREF_GET_OBJECT).
 *
 * A small direct-mapped table per thread: a newer borrow of an address in the same slot
 * replaces the older one. A borrow stays open until this thread ends it
 * (wref_check_borrow_end), gets a strong reference (wref_get_ref) or a new object (wref_new)
 * at the same address after the borrowed object died, or uses it and is reported: a later use
 * of a dead object through an open borrow is a
 * dangling-borrow finding. Thread-local: no locks. */
#include "checker.h"

#define BORROW_SLOTS 64u

/* The table is general-dynamic TLS (2 KB: too big for the static TLS surplus a dlopen may
 * need); the count of open borrows, read on every API call, is initial-exec (one load). */
static __thread struct {
    wref__borrow slots[BORROW_SLOTS];
} borrows;
static __thread __attribute__((tls_model("initial-exec"))) unsigned borrows_open;

static inline wref__borrow *slot_of(uintptr_t addr)
{
    return &borrows.slots[(addr >> 4) % BORROW_SLOTS];
}

void wref__borrow_record(uintptr_t addr, uint64_t serial, uint64_t ref_serial, wref__stack_id st)
{
    wref__borrow *s = slot_of(addr);
    if (!s->addr)
        borrows_open++;
    *s = (wref__borrow){addr, serial, ref_serial, st};
}

bool wref__borrow_find(uintptr_t addr, wref__borrow *out)
{
    wref__borrow *s = slot_of(addr);
    if (s->addr != addr)
        return false;
    *out = *s;
    return true;
}

void wref__borrow_end(uintptr_t addr)
{
    wref__borrow *s = slot_of(addr);
    if (s->addr == addr) {
        s->addr = 0;
        borrows_open--;
    }
}

bool wref__borrow_any(void)
{
    return borrows_open != 0;
}
