/* stress_checker.c: N threads x M mixed operations on shared objects, under the checker.
 *
 * usage: stress_checker clean|seeded [threads=8] [ops_per_thread=1000000]
 *
 * Threads share a table of objects reachable through weakrefs (writers replace them, so
 * referents die while readers look them up) and also work on private objects: weakrefs with
 * and without callbacks, canonical reuse, proxies, get_ref hits and misses, clearing a live
 * object's callback-less weakrefs. Every callback scheduled must run exactly once. `clean` must produce no finding;
 * `seeded` adds four bugs, one each in threads 0-3 halfway through (a use after free, a leak,
 * a dangling borrowed pointer, a garbage pointer), and each must be found exactly once. */
#include <wref.h>
#include <wref/check.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"   /* the seeded dangling borrow */

#define SLOTS 64
#define NOINLINE __attribute__((noinline))
#define OPAQUE(p) __asm__ volatile("" : "+r"(p))
#define CHECK(c) ((c) ? (void)0 : (fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c), exit(99)))

static const wref_type item_type = {.name = "Item", .size = 40, .flags = WREF_TYPE_WEAKREFABLE};
static const wref_type seeded_type = {.name = "SeededLeak", .size = 32, .flags = WREF_TYPE_WEAKREFABLE};

static struct {
    pthread_mutex_t lock;
    wref_object *owner[SLOTS];   /* the strong reference of each slot */
    wref_object *ref[SLOTS];     /* a weakref to it, owned by the table */
} table = {.lock = PTHREAD_MUTEX_INITIALIZER};

static atomic_ulong scheduled, ran, hits, misses;
static long ops;
static int seeded;

static int on_dead(wref_object *ref, void *data)
{
    (void)ref;
    (void)data;
    atomic_fetch_add(&ran, 1);
    return 0;
}

static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void replace(unsigned i)
{
    wref_object *ob = wref_new(&item_type);
    CHECK(ob);
    wref_object *r = wref_ref_new(ob, NULL);
    CHECK(r);
    pthread_mutex_lock(&table.lock);
    wref_object *old_owner = table.owner[i], *old_ref = table.ref[i];
    table.owner[i] = ob;
    table.ref[i] = r;
    pthread_mutex_unlock(&table.lock);
    wref_xdecref(old_owner);   /* the old item dies here, maybe while others look it up */
    wref_xdecref(old_ref);
}

static void lookup(unsigned i)
{
    pthread_mutex_lock(&table.lock);
    wref_object *r = table.ref[i];
    wref_incref(r);
    pthread_mutex_unlock(&table.lock);
    wref_object *ob;
    if (wref_get_ref(r, &ob) == 1) {
        atomic_fetch_add(&hits, 1);
        wref_decref(ob);
    } else {
        atomic_fetch_add(&misses, 1);
    }
    wref_decref(r);
}

static void private_life(unsigned kind)
{
    wref_object *ob = wref_new(&item_type);
    CHECK(ob);
    wref_object *cb = NULL, *r = NULL, *p = NULL, *again = NULL;
    switch (kind) {
    case 0:   /* callback runs when the object dies */
        cb = wref_callback_new(on_dead, NULL, NULL);
        CHECK(cb);
        r = wref_ref_new(ob, cb);
        CHECK(r);
        atomic_fetch_add(&scheduled, 1);
        break;
    case 1:   /* canonical reuse */
        r = wref_ref_new(ob, NULL);
        again = wref_ref_new(ob, NULL);
        CHECK(r && r == again);
        wref_decref(again);
        break;
    case 2: { /* a proxy and a get_ref hit through a ref */
        p = wref_proxy_new(ob, NULL);
        r = wref_ref_new(ob, NULL);
        CHECK(p && r);
        wref_object *got;
        CHECK(wref_get_ref(r, &got) == 1 && got == ob);
        wref_decref(got);
        break;
    }
    default:  /* cleared without callbacks while alive (no callback to lose): a miss from now on */
        r = wref_ref_new(ob, NULL);
        CHECK(r);
        wref_clear_weakrefs_no_callbacks(ob);
        break;
    }
    wref_decref(ob);
    if (r) {
        wref_object *got;
        CHECK(wref_get_ref(r, &got) == 0);   /* dead: a miss */
        wref_decref(r);
    }
    wref_xdecref(p);
    wref_xdecref(cb);
}

/* ---- the seeded bugs: one per thread 0-3, each in a function of its own ---------------------- */

static NOINLINE void seeded_use_after_free(void)
{
    wref_object *ob = wref_new(&item_type);
    wref_decref(ob);
    OPAQUE(ob);
    wref_incref(ob);   /* BUG */
}

static NOINLINE void seeded_leak(void)
{
    wref_object *ob = wref_new(&seeded_type);   /* BUG: never released */
    OPAQUE(ob);
}

static NOINLINE void seeded_dangling_borrow(void)
{
    wref_object *ob = wref_new(&item_type);
    wref_object *r = wref_ref_new(ob, NULL);
    wref_object *borrowed = wref_get_object(r);
    wref_decref(ob);
    OPAQUE(borrowed);
    wref_incref(borrowed);   /* BUG: the borrowed object was destroyed */
    wref_decref(r);
}

static NOINLINE void seeded_garbage(void)
{
    wref_object *p = (wref_object *)(uintptr_t)0x1230;
    OPAQUE(p);
    wref_incref(p);   /* BUG */
}

static void *worker(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg, seed = 0x9e3779b9u * (t + 1);
    for (long n = 0; n < ops; n++) {
        if (seeded && n == ops / 2) {
            static void (*const bugs[4])(void) = {seeded_use_after_free, seeded_leak, seeded_dangling_borrow,
                                                  seeded_garbage};
            if (t < 4)
                bugs[t]();
        }
        unsigned r = next_rand(&seed);
        unsigned slot = r % SLOTS;
        switch ((r >> 8) % 8) {
        case 0:
            replace(slot);
            break;
        case 1:
        case 2:
            private_life((r >> 12) % 4);
            break;
        default:
            lookup(slot);
            break;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "clean") && strcmp(argv[1], "seeded"))) {
        fprintf(stderr, "usage: %s clean|seeded [threads] [ops_per_thread]\n", argv[0]);
        return 2;
    }
    seeded = !strcmp(argv[1], "seeded");
    int threads = argc > 2 ? atoi(argv[2]) : 8;
    ops = argc > 3 ? atol(argv[3]) : 1000000;
    CHECK(threads >= 4 && threads <= 64 && ops >= 2);
    for (unsigned i = 0; i < SLOTS; i++)
        replace(i);
    pthread_t tid[64];
    for (int t = 0; t < threads; t++)
        CHECK(pthread_create(&tid[t], NULL, worker, (void *)(uintptr_t)t) == 0);
    for (int t = 0; t < threads; t++)
        pthread_join(tid[t], NULL);
    for (unsigned i = 0; i < SLOTS; i++) {
        wref_decref(table.owner[i]);
        wref_decref(table.ref[i]);
    }
    CHECK(atomic_load(&ran) == atomic_load(&scheduled));   /* every callback exactly once */
    printf("stress_checker: %d threads x %ld ops: %lu lookups hit, %lu missed, %lu callbacks ran\n", threads, ops,
           (unsigned long)atomic_load(&hits), (unsigned long)atomic_load(&misses), (unsigned long)atomic_load(&ran));
    return 0;
}
