/* resurrecting_pool.c: buffers whose finalizer puts them back into a free pool instead of
 * letting them die (resurrection through finalize, which runs once per object). A buffer
 * taken from the pool is reused; when the pool is full, or is shut down, buffers really die.
 * Weakrefs to pooled buffers keep working while they are pooled (the object never died). */
#include "clean.h"

#define POOL_MAX 16

struct buffer {
    wref_object ob_base;
    unsigned uses;
    char data[64];
};

static struct {
    wref_object *free[POOL_MAX];   /* owned */
    unsigned n;
    int closed;
    unsigned recycled, destroyed;
} pool;

static void buffer_finalize(wref_object *self)
{
    if (pool.closed || pool.n == POOL_MAX)
        return;   /* really dies */
    wref_incref(self);   /* resurrected: the pool owns it now */
    pool.free[pool.n++] = self;
    pool.recycled++;
}

static void buffer_destroy(wref_object *self)
{
    (void)self;
    pool.destroyed++;
}

static const wref_type buffer_type = {.name = "Buffer", .size = sizeof(struct buffer),
                                      .flags = WREF_TYPE_WEAKREFABLE,
                                      .finalize = buffer_finalize, .destroy = buffer_destroy};

static wref_object *buffer_get(void)
{
    if (pool.n)
        return pool.free[--pool.n];   /* the pool's reference becomes the caller's */
    wref_object *b = wref_new(&buffer_type);
    CHECK(b);
    return b;
}

int main(void)
{
    long rounds = env_long("CLEAN_ROUNDS", 100000);
    unsigned long created_before = 0;
    wref_object *held[24] = {0};
    wref_object *watch = NULL;   /* a weakref to one buffer, followed through its life */
    for (long r = 0; r < rounds; r++) {
        unsigned i = (unsigned)(r * 7) % 24;
        if (held[i])
            wref_decref(held[i]);   /* back to the pool (first time) or dies */
        held[i] = buffer_get();
        ((struct buffer *)held[i])->uses++;
        ((struct buffer *)held[i])->data[r % 64] = (char)r;
        if (!watch) {
            watch = wref_ref_new(held[i], NULL);
            CHECK(watch);
        }
        wref_object *ob;
        if (wref_get_ref(watch, &ob) == 1) {
            CHECK(((struct buffer *)ob)->uses >= 1);
            wref_decref(ob);
        }
        created_before++;
    }
    for (unsigned i = 0; i < 24; i++)
        wref_xdecref(held[i]);
    pool.closed = 1;
    while (pool.n)
        wref_decref(pool.free[--pool.n]);   /* finalized already: they die now */
    wref_object *ob;
    CHECK(wref_get_ref(watch, &ob) == 0 && ob == NULL);
    wref_decref(watch);
    printf("resurrecting_pool: %lu gets, %u recycled, %u destroyed\n", created_before, pool.recycled,
           pool.destroyed);
    return 0;
}
