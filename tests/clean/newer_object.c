/* newer_object.c: a borrow of an object that died must not haunt its address.
 *
 * usage: newer_object get_ref|call|weakrefs|thread [--require-reuse]
 *
 * The main thread borrows X (wref_get_object) and uses it while X is alive: correct. A worker
 * thread then drops X's last reference and creates a newer object Y which, run with
 * quarantine_mb=0 (freed memory reused at once by the thread that freed it), lands at X's
 * address. The main thread reaches Y, and uses it:
 *   get_ref   through wref_get_ref(ref to Y);
 *   call      through wref_call(ref to Y), which returns a new reference to Y;
 *   weakrefs  Y is a weakref to Z, got as a new reference from wref_weakrefs(Z);
 *   thread    the worker hands the main thread its reference to Y.
 * Nothing here is wrong: no finding, and every operation on Y goes on.
 * --require-reuse fails the run when Y did not get X's address (glibc's allocator reuses the
 * chunk at once; the sanitizers' allocators do not, and then there is nothing to misreport). */
#include "clean.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"   /* the borrowed API, on purpose */

/* 64 bytes: the size of a weakref, so that a weakref can reuse X's memory. */
static const wref_type item_type = {.name = "Item", .size = 64, .flags = WREF_TYPE_WEAKREFABLE};

static const char *mode;
static wref_object *x;          /* the worker's to drop */
static wref_object *z;          /* weakrefs mode: the referent of Y */
static wref_object *y_owner;    /* call mode: the worker's reference keeping Y alive */
static wref_object *handed;     /* a new reference for the main thread: Y, or a ref to Y */

static void *worker(void *arg)
{
    (void)arg;
    wref_decref(x);   /* X dies on this thread: its memory is this thread's to reuse */
    if (!strcmp(mode, "get_ref") || !strcmp(mode, "call")) {
        y_owner = wref_new(&item_type);
        CHECK(y_owner);
        handed = wref_ref_new(y_owner, NULL);   /* main gets or calls it to reach Y */
    } else if (!strcmp(mode, "weakrefs")) {
        handed = wref_ref_new(z, NULL);         /* Y itself; main finds it through Z */
    } else {
        handed = wref_new(&item_type);          /* Y, handed over with this reference */
    }
    CHECK(handed);
    return NULL;
}

int main(int argc, char **argv)
{
    CHECK(argc >= 2);
    mode = argv[1];
    CHECK(!strcmp(mode, "get_ref") || !strcmp(mode, "call") || !strcmp(mode, "weakrefs") ||
          !strcmp(mode, "thread"));
    int require_reuse = argc > 2 && !strcmp(argv[2], "--require-reuse");
    if (!strcmp(mode, "weakrefs")) {
        z = wref_new(&item_type);
        CHECK(z);
    }
    x = wref_new(&item_type);
    CHECK(x);
    wref_object *rx = wref_ref_new(x, NULL);
    CHECK(rx);
    wref_object *borrowed = wref_get_object(rx);
    CHECK(borrowed == x && wref_refcount(borrowed) == 1);   /* used while alive: fine */
    uintptr_t x_addr = (uintptr_t)x;

    pthread_t t;
    CHECK(pthread_create(&t, NULL, worker, NULL) == 0);
    pthread_join(t, NULL);

    wref_object *y;   /* a new reference to Y */
    if (!strcmp(mode, "get_ref")) {
        CHECK(wref_get_ref(handed, &y) == 1 && y == y_owner);
    } else if (!strcmp(mode, "call")) {
        y = wref_call(handed, NULL);
        CHECK(y == y_owner);
    } else if (!strcmp(mode, "weakrefs")) {
        CHECK(wref_weakrefs(z, &y, 1) == 1 && y == handed);
    } else {
        y = handed;
        handed = NULL;
    }
    if ((uintptr_t)y != x_addr) {
        CHECK(!require_reuse);   /* the scenario needs the address reused */
        printf("newer_object %s: the allocator did not reuse the address; nothing to check\n", mode);
    }

    /* Y is used as its owner may: every operation goes on. */
    intptr_t before = wref_refcount(y);
    CHECK(before >= 1);
    wref_incref(y);
    CHECK(wref_refcount(y) == before + 1);
    wref_decref(y);
    CHECK(wref_refcount(y) == before);
    wref_decref(y);
    wref_xdecref(handed);
    wref_xdecref(y_owner);
    wref_xdecref(z);
    wref_decref(rx);
    return 0;
}
