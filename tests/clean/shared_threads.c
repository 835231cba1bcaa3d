/* shared_threads.c: four threads share a table of objects through weakrefs. Readers turn a
 * weakref into a strong reference with wref_get_ref (never the borrowed API) and use the
 * object only while they hold it; writers replace objects, so referents die while other
 * threads look them up. */
#include "clean.h"

#include <pthread.h>
#include <stdatomic.h>

#define THREADS 4
#define SLOTS 16

struct item {
    wref_object ob_base;
    _Atomic unsigned long reads;
    unsigned long generation;
};

static const wref_type item_type = {
    .name = "Item", .size = sizeof(struct item), .flags = WREF_TYPE_WEAKREFABLE};

static struct {
    pthread_mutex_t lock;              /* guards owner[] and ref[] */
    wref_object *owner[SLOTS];         /* the one strong reference to each slot's item */
    wref_object *ref[SLOTS];           /* owned weakref to it */
} table = {.lock = PTHREAD_MUTEX_INITIALIZER};

static long rounds;
static _Atomic unsigned long hits, misses;

/* A new reference to the slot's current weakref (so it stays valid without the lock). */
static wref_object *slot_ref(unsigned i)
{
    pthread_mutex_lock(&table.lock);
    wref_object *r = table.ref[i];
    wref_incref(r);
    pthread_mutex_unlock(&table.lock);
    return r;
}

static void replace(unsigned i, unsigned long gen)
{
    struct item *it = (struct item *)wref_new(&item_type);
    CHECK(it);
    it->generation = gen;
    wref_object *r = wref_ref_new(&it->ob_base, NULL);
    CHECK(r);
    pthread_mutex_lock(&table.lock);
    wref_object *old_owner = table.owner[i], *old_ref = table.ref[i];
    table.owner[i] = &it->ob_base;
    table.ref[i] = r;
    pthread_mutex_unlock(&table.lock);
    wref_xdecref(old_owner);   /* the old item dies here, maybe under a reader's nose */
    wref_xdecref(old_ref);
}

static void *worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    unsigned seed = id * 7919u + 1;
    for (long n = 0; n < rounds; n++) {
        seed = seed * 1103515245u + 12345u;
        unsigned i = (seed >> 8) % SLOTS;
        if (id == 0 && n % 8 == 0) {
            replace(i, (unsigned long)n);
            continue;
        }
        wref_object *r = slot_ref(i), *ob;
        if (wref_get_ref(r, &ob) == 1) {
            atomic_fetch_add(&((struct item *)ob)->reads, 1);
            atomic_fetch_add(&hits, 1);
            wref_decref(ob);
        } else {
            atomic_fetch_add(&misses, 1);
        }
        wref_decref(r);
    }
    return NULL;
}

int main(void)
{
    rounds = env_long("CLEAN_ROUNDS", 100000);
    for (unsigned i = 0; i < SLOTS; i++)
        replace(i, 0);
    pthread_t t[THREADS];
    for (unsigned i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i) == 0);
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (unsigned i = 0; i < SLOTS; i++) {
        wref_decref(table.owner[i]);
        wref_object *ob;
        CHECK(wref_get_ref(table.ref[i], &ob) == 0);
        wref_decref(table.ref[i]);
    }
    printf("shared_threads: %lu hits, %lu misses\n", (unsigned long)hits, (unsigned long)misses);
    return 0;
}
