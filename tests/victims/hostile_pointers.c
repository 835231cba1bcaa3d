/* hostile_pointers.c: garbage handed to the API in every shape a buggy program can produce:
 * a small integer, an unmapped address, a misaligned pointer into a live object, a pointer into
 * the middle of a live object, a pointer into a page just unmapped. Each is an invalid-object
 * finding; the checker itself never dereferences them, so the program keeps running and exits
 * through the checker's exitcode. */
#include "victim.h"

#include <sys/mman.h>

static NOINLINE void victim_small_integer(void)
{
    wref_incref((wref_object *)(uintptr_t)0x10);   /* BUG */
}

static NOINLINE void victim_unmapped(void)
{
    wref_decref((wref_object *)(uintptr_t)0xdead0000beef000ull);   /* BUG: not even canonical */
}

static NOINLINE void victim_misaligned(wref_object *live)
{
    wref_object *p = (wref_object *)((char *)live + 3);
    OPAQUE(p);
    (void)wref_refcount(p);   /* BUG: misaligned */
}

static NOINLINE void victim_interior(wref_object *live)
{
    wref_object *p = (wref_object *)((char *)live + 16);
    OPAQUE(p);
    (void)wref_ref_new(p, NULL);   /* BUG: the middle of an object */
}

static NOINLINE void victim_freed_page(void)
{
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    VCHECK(page != MAP_FAILED);
    munmap(page, 4096);
    wref_object *p = page;
    OPAQUE(p);
    (void)wref_get_ref(p, &p);   /* BUG: an unmapped page, read as a weakref */
}

int main(void)
{
    wref_object *live = wref_new(&widget_type);
    victim_small_integer();
    victim_unmapped();
    victim_misaligned(live);
    victim_interior(live);
    victim_freed_page();
    wref_err_clear();
    VCHECK(wref_refcount(live) == 1);   /* the live object was never touched */
    wref_decref(live);
    return 0;
}
