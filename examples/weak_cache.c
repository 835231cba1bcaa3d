/* weak_cache.c: a cache that never keeps its values alive.
 *
 * A small hash map from names to weak references. Whoever loads a texture owns it; the cache
 * only remembers where it is. lookup() turns the weakref back into a strong reference with
 * wref_get_ref(), so a hit can never hand out a pointer to a dying object. When the last owner
 * drops a texture, the weakref's callback removes its entry.
 *
 * Callbacks run on whichever thread dropped the last reference, so the map has a mutex, and
 * nothing that could run a callback (a wref_decref) happens while it is held. */
#include <wref.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Like assert(), but also in Release builds (which define NDEBUG). */
#define CHECK(cond) \
    ((cond) ? (void)0 : (fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond), exit(1)))

/* ---- the value type: something expensive to load ---------------------------------------- */

struct texture {
    wref_object ob_base;
    char name[32];
    int loads;   /* how many times this name has been loaded so far, this one included */
};

static const wref_type texture_type = {
    .name = "texture", .size = sizeof(struct texture), .flags = WREF_TYPE_WEAKREFABLE};

static int total_loads;

static wref_object *texture_load(const char *name)
{
    struct texture *t = (struct texture *)wref_new(&texture_type);
    if (!t)
        return NULL;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->loads = ++total_loads;
    printf("  load   %s\n", name);
    return &t->ob_base;
}

/* ---- the cache ------------------------------------------------------------------------------ */

#define NBUCKETS 64

struct entry {
    struct entry *next;
    wref_object *ref;   /* owned; its callback is the cache's on_dead */
    char key[];
};

struct weak_cache {
    pthread_mutex_t lock;        /* protects buckets and count */
    struct entry *buckets[NBUCKETS];
    size_t count;
    wref_object *on_dead;        /* owned; one callback object shared by every entry */
};

static struct entry **bucket(struct weak_cache *c, const char *key)
{
    unsigned long h = 5381;   /* djb2 */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = h * 33 + *p;
    return &c->buckets[h % NBUCKETS];
}

/* Unlinks the entry whose weakref is ref, if any; returns it (the caller frees it).
 * A linear scan keeps the example short; a real cache would index entries by ref too. */
static struct entry *unlink_ref(struct weak_cache *c, wref_object *ref)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        for (struct entry **pp = &c->buckets[i]; *pp; pp = &(*pp)->next)
            if ((*pp)->ref == ref) {
                struct entry *e = *pp;
                *pp = e->next;
                c->count--;
                return e;
            }
    return NULL;
}

/* The weakref callback: the texture behind ref died, forget it. */
static int forget_dead(wref_object *ref, void *data)
{
    struct weak_cache *c = data;
    pthread_mutex_lock(&c->lock);
    struct entry *e = unlink_ref(c, ref);
    pthread_mutex_unlock(&c->lock);
    if (e) {
        printf("  evict  %s\n", e->key);
        wref_decref(e->ref);   /* outside the lock: dropping a ref may free it */
        free(e);
    }
    return 0;
}

static int cache_init(struct weak_cache *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->on_dead = wref_callback_new(forget_dead, c, NULL);
    return c->on_dead ? 0 : -1;
}

/* A new reference to the cached value, or NULL on a miss (absent, dead or dying). */
static wref_object *cache_lookup(struct weak_cache *c, const char *key)
{
    wref_object *value = NULL;
    pthread_mutex_lock(&c->lock);
    for (struct entry *e = *bucket(c, key); e; e = e->next)
        if (strcmp(e->key, key) == 0) {
            wref_get_ref(e->ref, &value);   /* 1: strong reference; 0: dead, callback pending */
            break;
        }
    pthread_mutex_unlock(&c->lock);
    return value;
}

/* Remembers value under key without taking a reference to it. 0, or -1 on error. */
static int cache_insert(struct weak_cache *c, const char *key, wref_object *value)
{
    wref_object *ref = wref_ref_new(value, c->on_dead);
    if (!ref)
        return -1;
    struct entry *e = malloc(sizeof *e + strlen(key) + 1);
    if (!e) {
        wref_decref(ref);
        return -1;
    }
    strcpy(e->key, key);
    e->ref = ref;
    wref_object *old_ref = NULL;
    pthread_mutex_lock(&c->lock);
    struct entry **pp = bucket(c, key);
    for (struct entry **q = pp; *q; q = &(*q)->next)
        if (strcmp((*q)->key, key) == 0) {   /* replace a stale entry */
            struct entry *old = *q;
            *q = old->next;
            old_ref = old->ref;
            free(old);
            c->count--;
            break;
        }
    e->next = *pp;
    *pp = e;
    c->count++;
    pthread_mutex_unlock(&c->lock);
    wref_xdecref(old_ref);   /* a ref that dies before its referent never calls back */
    return 0;
}

/* The usual front door: a hit, or load and remember. New reference, or NULL. */
static wref_object *cache_get(struct weak_cache *c, const char *key)
{
    wref_object *value = cache_lookup(c, key);
    if (value)
        return value;
    value = texture_load(key);
    if (value && cache_insert(c, key, value) != 0) {
        wref_decref(value);
        return NULL;
    }
    return value;
}

static void cache_destroy(struct weak_cache *c)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        while (c->buckets[i]) {
            struct entry *e = c->buckets[i];
            c->buckets[i] = e->next;
            wref_decref(e->ref);
            free(e);
        }
    c->count = 0;
    wref_decref(c->on_dead);
    pthread_mutex_destroy(&c->lock);
}

int main(void)
{
    struct weak_cache cache;
    if (cache_init(&cache) != 0)
        return 1;

    printf("two users ask for grass.png, one for rock.png:\n");
    wref_object *a = cache_get(&cache, "grass.png");
    wref_object *b = cache_get(&cache, "grass.png");
    wref_object *r = cache_get(&cache, "rock.png");
    CHECK(a && b && r);
    CHECK(a == b && total_loads == 2 && cache.count == 2);
    CHECK(wref_refcount(a) == 2);   /* the two users; the cache holds none */

    printf("the first user is done; the texture stays cached:\n");
    wref_decref(a);
    CHECK(cache.count == 2);
    wref_object *c = cache_get(&cache, "grass.png");
    CHECK(c == b && total_loads == 2);
    wref_decref(c);

    printf("the last user of grass.png is done:\n");
    wref_decref(b);   /* runs forget_dead on this thread */
    CHECK(cache.count == 1 && cache_lookup(&cache, "grass.png") == NULL);

    printf("asked again, it is loaded again:\n");
    wref_object *d = cache_get(&cache, "grass.png");
    CHECK(d && ((struct texture *)d)->loads == 3 && cache.count == 2);

    wref_decref(d);
    wref_decref(r);
    CHECK(cache.count == 0);
    cache_destroy(&cache);
    printf("weak_cache: ok (%d loads)\n", total_loads);
    return 0;
}
