/* recycled_borrow.c: a borrow that ended well must not haunt its address.
 *
 * The main thread borrows X (wref_get_object) and uses it while X is alive: correct. Another
 * thread then drops X's last reference and creates Y, which (run with quarantine_mb=0, so
 * freed memory is reused at once) lands at X's address. The main thread gets Y through
 * wref_get_ref and uses it. Nothing here is wrong; the stale borrow of that address must not
 * turn into a dangling-borrow finding, nor make the checker refuse the operations on Y. */
#include "clean.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"   /* the borrowed API, on purpose */

static const wref_type item_type = {.name = "Item", .size = 48, .flags = WREF_TYPE_WEAKREFABLE};

static wref_object *x, *y, *ry;

static void *replace(void *arg)
{
    (void)arg;
    wref_decref(x);                 /* X dies on this thread: its memory is this thread's to reuse */
    y = wref_new(&item_type);
    CHECK(y);
    ry = wref_ref_new(y, NULL);
    CHECK(ry);
    return NULL;
}

int main(int argc, char **argv)
{
    /* --require-reuse: glibc's allocator reuses a freed chunk at once; ASan's does not, so the
     * sanitizer builds run the scenario without it (then there is nothing to misreport). */
    int require_reuse = argc > 1 && !strcmp(argv[1], "--require-reuse");
    x = wref_new(&item_type);
    CHECK(x);
    wref_object *rx = wref_ref_new(x, NULL);
    CHECK(rx);
    wref_object *borrowed = wref_get_object(rx);
    CHECK(borrowed == x && wref_refcount(borrowed) == 1);   /* used while alive: fine */
    uintptr_t x_addr = (uintptr_t)x;

    pthread_t t;
    CHECK(pthread_create(&t, NULL, replace, NULL) == 0);
    pthread_join(t, NULL);
    if ((uintptr_t)y != x_addr) {
        CHECK(!require_reuse);   /* the scenario needs the address reused */
        printf("recycled_borrow: the allocator did not reuse the address; nothing to check\n");
    }

    wref_object *got;
    CHECK(wref_get_ref(ry, &got) == 1 && got == y);   /* a strong reference to the new object */
    wref_incref(got);
    CHECK(wref_refcount(got) == 3);
    wref_decref(got);
    wref_decref(got);
    CHECK(wref_refcount(y) == 1);
    wref_decref(y);
    wref_decref(ry);
    wref_decref(rx);
    return 0;
}
