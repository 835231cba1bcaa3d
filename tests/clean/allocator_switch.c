/* allocator_switch.c: wref_set_allocator behaves as in the release build under the checker.
 *
 * Objects that the program destroyed are not alive, even while the checker keeps their memory
 * in its quarantine: switching allocators after they died succeeds, the checker hands their
 * memory back to the allocator that made it, and a live object still makes the switch fail
 * with the count the release build gives. */
#include "clean.h"

#include <string.h>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"   /* one borrow, on purpose */

static const wref_type item_type = {.name = "Item", .size = 40, .flags = WREF_TYPE_WEAKREFABLE};

static struct {
    long outstanding, total;
} counting;

static void *count_alloc(void *ctx, size_t size)
{
    (void)ctx;
    counting.outstanding++;
    counting.total++;
    return malloc(size);
}

static void count_free(void *ctx, void *p, size_t size)
{
    (void)ctx;
    (void)size;
    counting.outstanding--;
    free(p);
}

/* Objects with weakrefs that live and die, one of them borrowed (its memory then outlives the
 * quarantine under the checker). */
static void churn(int n)
{
    for (int i = 0; i < n; i++) {
        wref_object *ob = wref_new(&item_type);
        CHECK(ob);
        wref_object *r = wref_ref_new(ob, NULL);
        CHECK(r);
        if (i == 0)
            CHECK(wref_get_object(r) == ob);
        wref_decref(ob);
        wref_decref(r);
    }
}

int main(void)
{
    churn(100);
    wref_allocator a = {NULL, count_alloc, count_free};
    CHECK(wref_set_allocator(&a) == 0);   /* nothing alive: as in the release build */

    churn(100);
    CHECK(counting.total >= 200);   /* the objects came from the new allocator */
    wref_object *live = wref_new(&item_type);
    CHECK(live);
    CHECK(wref_set_allocator(NULL) == -1);   /* one object is alive */
    CHECK(wref_err_occurred() == WREF_ERR_SYSTEM);
    CHECK(strstr(wref_err_message(), ": 1 allocation(s) of the current allocator are alive"));
    wref_err_clear();
    wref_decref(live);

    CHECK(wref_set_allocator(NULL) == 0);
    CHECK(counting.outstanding == 0);   /* every chunk went back to the allocator that made it */
    churn(10);                          /* malloc again */
    CHECK(counting.outstanding == 0);
    return 0;
}
