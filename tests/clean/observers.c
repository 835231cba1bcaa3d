/* observers.c: a subject notifies observers it holds only weakly; each weakref's callback
 * unregisters its observer when the observer dies. Notification takes strong references
 * first (wref_get_ref), so an observer that dies during the walk is still valid until the
 * walk lets go of it. */
#include "clean.h"

#define MAX_OBS 32

struct observer {
    wref_object ob_base;
    unsigned id;
    unsigned seen;
    unsigned *total;   /* where destroy adds what it saw */
};

static void observer_destroy(wref_object *self)
{
    struct observer *o = (struct observer *)self;
    *o->total += o->seen;
}

static const wref_type observer_type = {.name = "Observer", .size = sizeof(struct observer),
                                        .flags = WREF_TYPE_WEAKREFABLE, .destroy = observer_destroy};

struct subject {
    wref_object *regs[MAX_OBS];   /* owned weakrefs to observers, or NULL */
    wref_object *on_dead;
    unsigned unregistered;
};

static int observer_died(wref_object *ref, void *data)
{
    struct subject *s = data;
    for (unsigned i = 0; i < MAX_OBS; i++)
        if (s->regs[i] == ref) {
            s->regs[i] = NULL;
            s->unregistered++;
            wref_decref(ref);
            return 0;
        }
    return 0;
}

static void subscribe(struct subject *s, wref_object *ob)
{
    for (unsigned i = 0; i < MAX_OBS; i++)
        if (!s->regs[i]) {
            s->regs[i] = wref_ref_new(ob, s->on_dead);
            CHECK(s->regs[i]);
            return;
        }
    CHECK(!"subject full");
}

static void notify(struct subject *s)
{
    wref_object *live[MAX_OBS];
    unsigned n = 0;
    for (unsigned i = 0; i < MAX_OBS; i++) {
        wref_object *ob;
        if (s->regs[i] && wref_get_ref(s->regs[i], &ob) == 1)
            live[n++] = ob;
    }
    for (unsigned i = 0; i < n; i++)
        ((struct observer *)live[i])->seen++;
    for (unsigned i = 0; i < n; i++)
        wref_decref(live[i]);   /* may run observer_died for the last holder: after the walk */
}

int main(void)
{
    long rounds = env_long("CLEAN_ROUNDS", 20000);
    unsigned total = 0, created = 0;
    struct subject s = {{0}, NULL, 0};
    s.on_dead = wref_callback_new(observer_died, &s, NULL);
    CHECK(s.on_dead);

    wref_object *mine[MAX_OBS / 2] = {0};   /* the observers somebody keeps alive */
    for (long r = 0; r < rounds; r++) {
        unsigned slot = (unsigned)r % (MAX_OBS / 2);
        if (mine[slot]) {
            wref_decref(mine[slot]);   /* the observer goes away: it unregisters itself */
            mine[slot] = NULL;
        }
        struct observer *o = (struct observer *)wref_new(&observer_type);
        CHECK(o);
        o->id = created++;
        o->total = &total;
        subscribe(&s, &o->ob_base);
        mine[slot] = &o->ob_base;
        notify(&s);
    }
    for (unsigned i = 0; i < MAX_OBS / 2; i++)
        wref_xdecref(mine[i]);
    for (unsigned i = 0; i < MAX_OBS; i++)
        CHECK(s.regs[i] == NULL);
    CHECK(s.unregistered == created);
    wref_decref(s.on_dead);
    printf("observers: %u observers, %u notifications seen\n", created, total);
    return 0;
}
