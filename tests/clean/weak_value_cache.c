/* weak_value_cache.c: a cache that maps keys to values without keeping the values alive.
 * Each slot holds a weakref whose callback empties the slot when the value dies. Lookups turn
 * the weakref into a strong reference with wref_get_ref; a miss builds the value again. */
#include "clean.h"

#include <string.h>

#define SLOTS 64

struct value {
    wref_object ob_base;
    unsigned key;
    unsigned payload[8];
};

static const wref_type value_type = {
    .name = "Value", .size = sizeof(struct value), .flags = WREF_TYPE_WEAKREFABLE};

struct cache {
    wref_object *slot[SLOTS];   /* owned weakrefs, or NULL */
    wref_object *on_dead;       /* owned callback object shared by every slot */
    unsigned hits, misses, evictions;
};

static int value_died(wref_object *ref, void *data)
{
    struct cache *c = data;
    for (unsigned i = 0; i < SLOTS; i++)
        if (c->slot[i] == ref) {
            c->slot[i] = NULL;
            c->evictions++;
            wref_decref(ref);   /* the runtime holds its own reference while we run */
            break;
        }
    return 0;
}

static wref_object *build(unsigned key)
{
    struct value *v = (struct value *)wref_new(&value_type);
    CHECK(v);
    v->key = key;
    for (unsigned i = 0; i < 8; i++)
        v->payload[i] = key * 31u + i;
    return &v->ob_base;
}

/* A new reference to the value for key. */
static wref_object *cache_get(struct cache *c, unsigned key)
{
    unsigned i = key % SLOTS;
    wref_object *ob = NULL;
    if (c->slot[i] && wref_get_ref(c->slot[i], &ob) == 1 && ((struct value *)ob)->key == key) {
        c->hits++;
        return ob;
    }
    wref_xdecref(ob);   /* a live value for another key */
    c->misses++;
    ob = build(key);
    wref_object *ref = wref_ref_new(ob, c->on_dead);
    CHECK(ref);
    if (c->slot[i]) {
        wref_object *old = c->slot[i];
        c->slot[i] = NULL;
        wref_decref(old);   /* a weakref that dies before its referent never calls back */
    }
    c->slot[i] = ref;
    return ob;
}

int main(void)
{
    long rounds = env_long("CLEAN_ROUNDS", 200000);
    struct cache c;
    memset(&c, 0, sizeof c);
    c.on_dead = wref_callback_new(value_died, &c, NULL);
    CHECK(c.on_dead);

    wref_object *pinned[8];   /* a few values the program keeps: always hits */
    for (unsigned k = 0; k < 8; k++)
        pinned[k] = cache_get(&c, k);

    /* The program keeps its 24 most recently used values alive (a strong ring); the cache
     * finds them while they live and forgets them when they die. */
    wref_object *recent[24] = {0};
    unsigned long sum = 0;
    for (long r = 0; r < rounds; r++) {
        unsigned key = (unsigned)((r / 4 + (r * 2654435761u >> 9) % 5) % 96);   /* some locality */
        wref_object *v = cache_get(&c, key);
        sum += ((struct value *)v)->payload[key % 8];
        unsigned i = (unsigned)r % 24;
        wref_xdecref(recent[i]);   /* may be the last reference: its slot empties itself */
        recent[i] = v;
    }
    for (unsigned i = 0; i < 24; i++)
        wref_xdecref(recent[i]);
    for (unsigned k = 0; k < 8; k++) {
        wref_object *v = cache_get(&c, k);
        CHECK(((struct value *)v)->key == k);   /* the pinned value, or a rebuilt one if
                                                    another key took its slot meanwhile */
        wref_decref(v);
        wref_decref(pinned[k]);
    }
    for (unsigned i = 0; i < SLOTS; i++)
        CHECK(c.slot[i] == NULL);   /* every value died, every slot emptied itself */
    wref_decref(c.on_dead);
    printf("weak_value_cache: %u hits, %u misses, %u evictions, checksum %lu\n", c.hits, c.misses,
           c.evictions, sum);
    return 0;
}
