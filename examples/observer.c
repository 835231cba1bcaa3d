/* observer.c: subjects that do not keep their observers alive.
 *
 * A subject (a document) notifies observers (views, loggers) of events. It holds each observer
 * through a weakref whose callback unregisters it, so an observer nobody else wants simply
 * disappears from the list: no "remember to unsubscribe", no dangling listener.
 *
 * Notifying turns every weakref into a strong reference first (wref_get_ref), then calls the
 * observers, then drops the references. An observer that dies as a result runs its callback
 * after the walk, never in the middle of it. */
#include <wref.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* Like assert(), but also in Release builds (which define NDEBUG). */
#define CHECK(cond) \
    ((cond) ? (void)0 : (fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond), exit(1)))

/* ---- observers ------------------------------------------------------------------------------ */

struct observer {
    wref_object ob_base;
    const char *name;
    int seen;   /* events received */
};

static const wref_type observer_type = {
    .name = "observer", .size = sizeof(struct observer), .flags = WREF_TYPE_WEAKREFABLE};

static wref_object *observer_new(const char *name)
{
    struct observer *o = (struct observer *)wref_new(&observer_type);
    if (!o)
        return NULL;
    o->name = name;
    return &o->ob_base;
}

static void observer_notify(wref_object *self, const char *event)
{
    struct observer *o = (struct observer *)self;
    o->seen++;
    printf("  %-8s got %s\n", o->name, event);
}

/* ---- subjects ------------------------------------------------------------------------------- */

struct registration {
    struct registration *next;
    wref_object *ref;   /* owned weakref to an observer; its callback is the subject's on_dead */
};

struct subject {
    wref_object ob_base;
    pthread_mutex_t lock;   /* protects regs and count */
    struct registration *regs;
    size_t count;
    wref_object *on_dead;   /* owned callback object, shared by every registration */
};

/* The weakref callback. Its data is a weakref to the subject, so a callback that fires while
 * the subject itself is going away (another thread) finds it dead instead of freed. */
static int observer_died(wref_object *ref, void *data)
{
    wref_object *subject_ob;
    if (wref_get_ref(data, &subject_ob) != 1)
        return 0;
    struct subject *s = (struct subject *)subject_ob;
    struct registration *gone = NULL;
    pthread_mutex_lock(&s->lock);
    for (struct registration **pp = &s->regs; *pp; pp = &(*pp)->next)
        if ((*pp)->ref == ref) {
            gone = *pp;
            *pp = gone->next;
            s->count--;
            break;
        }
    pthread_mutex_unlock(&s->lock);
    if (gone) {
        wref_decref(gone->ref);   /* never under the lock */
        free(gone);
    }
    wref_decref(subject_ob);
    return 0;
}

static void release_weakref(void *data) { wref_decref(data); }

static void subject_destroy(wref_object *self)
{
    struct subject *s = (struct subject *)self;
    while (s->regs) {
        struct registration *r = s->regs;
        s->regs = r->next;
        wref_decref(r->ref);   /* a ref that dies before its referent never calls back */
        free(r);
    }
    wref_xdecref(s->on_dead);
    pthread_mutex_destroy(&s->lock);
}

static const wref_type subject_type = {.name = "subject", .size = sizeof(struct subject),
                                       .flags = WREF_TYPE_WEAKREFABLE, .destroy = subject_destroy};

static wref_object *subject_new(void)
{
    struct subject *s = (struct subject *)wref_new(&subject_type);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    wref_object *self_ref = wref_ref_new(&s->ob_base, NULL);
    if (self_ref)
        s->on_dead = wref_callback_new(observer_died, self_ref, release_weakref);
    if (!s->on_dead) {
        wref_xdecref(self_ref);
        wref_decref(&s->ob_base);
        return NULL;
    }
    return &s->ob_base;
}

/* Registers observer without keeping it alive. 0, or -1 with an error set. */
static int subject_attach(wref_object *self, wref_object *observer)
{
    struct subject *s = (struct subject *)self;
    struct registration *r = malloc(sizeof *r);
    if (!r) {
        wref_err_set(WREF_ERR_MEMORY, "out of memory");
        return -1;
    }
    if (!(r->ref = wref_ref_new(observer, s->on_dead))) {
        free(r);
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    r->next = s->regs;
    s->regs = r;
    s->count++;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* Calls every live observer; returns how many were called. */
static size_t subject_notify(wref_object *self, const char *event)
{
    struct subject *s = (struct subject *)self;
    enum { MAX = 16 };   /* a real subject would grow this array */
    wref_object *alive[MAX];
    size_t n = 0;
    pthread_mutex_lock(&s->lock);
    for (struct registration *r = s->regs; r && n < MAX; r = r->next)
        if (wref_get_ref(r->ref, &alive[n]) == 1)
            n++;
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < n; i++)
        observer_notify(alive[i], event);
    for (size_t i = 0; i < n; i++)
        wref_decref(alive[i]);   /* may run observer_died: we are no longer walking the list */
    return n;
}

int main(void)
{
    wref_object *doc = subject_new();
    wref_object *view = observer_new("view"), *log = observer_new("logger"), *save = observer_new("autosave");
    CHECK(doc && view && log && save);
    CHECK(subject_attach(doc, view) == 0 && subject_attach(doc, log) == 0 && subject_attach(doc, save) == 0);
    CHECK(wref_refcount(view) == 1);   /* attaching did not take a reference */

    printf("three observers:\n");
    CHECK(subject_notify(doc, "edited") == 3);

    printf("autosave is switched off (its owner drops it):\n");
    wref_decref(save);   /* its callback unregisters it */
    CHECK(((struct subject *)doc)->count == 2);
    CHECK(subject_notify(doc, "saved") == 2);
    CHECK(((struct observer *)view)->seen == 2 && ((struct observer *)log)->seen == 2);

    printf("the document closes before its observers:\n");
    wref_decref(doc);   /* drops the weakrefs; their callbacks will never run */
    CHECK(wref_weakref_count(view) == 0 && wref_weakref_count(log) == 0);
    wref_decref(view);
    wref_decref(log);
    printf("observer: ok\n");
    return 0;
}
