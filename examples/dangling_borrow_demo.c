/* dangling_borrow_demo.c: a real dangling borrowed reference, for the wref-check demo.
 *
 * THIS PROGRAM HAS A BUG ON PURPOSE. Run it under the checker:
 *     build/tools/wref-check -- build/examples/dangling_borrow_demo
 *     LD_PRELOAD=build/src/libwref-check.so build/examples/dangling_borrow_demo
 * and it reports a dangling-borrow with the four stacks that explain it.
 *
 * A server keeps a registry of login sessions. The registry owns each session; everyone else
 * finds sessions through weakrefs, so a logged-out session simply disappears. The request
 * handler was ported from code that used the borrowed lookup (wref_get_object, like
 * CPython's PyWeakref_GetObject): it looks the session up, then processes the request's
 * events, and one of them is a logout, which drops the registry's reference: the last one.
 * The handler then queues a reply for the session through its borrowed pointer, which now
 * points to a destroyed object.
 *
 * The fix is one line: look the session up with wref_get_ref(), which returns a strong
 * reference that keeps the session alive until the handler drops it. */
#include <wref.h>

#include <stdio.h>
#include <string.h>

#define MAX_SESSIONS 8

struct session {
    wref_object ob_base;
    char user[32];
    unsigned requests;
};

static const wref_type session_type = {
    .name = "Session", .size = sizeof(struct session), .flags = WREF_TYPE_WEAKREFABLE};

/* ---- the registry: owns sessions, hands out weakrefs ------------------------------------- */

static struct {
    wref_object *owner[MAX_SESSIONS];   /* strong: the registry keeps sessions alive */
    wref_object *ref[MAX_SESSIONS];     /* weakrefs for lookups */
} registry;

static void registry_login(const char *user)
{
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (!registry.owner[i]) {
            struct session *s = (struct session *)wref_new(&session_type);
            if (!s)
                return;
            snprintf(s->user, sizeof s->user, "%s", user);
            registry.owner[i] = &s->ob_base;
            registry.ref[i] = wref_ref_new(&s->ob_base, NULL);
            return;
        }
}

static int registry_find(const char *user)
{
    for (int i = 0; i < MAX_SESSIONS; i++) {
        wref_object *ob;
        if (registry.ref[i] && wref_get_ref(registry.ref[i], &ob) == 1) {
            int match = strcmp(((struct session *)ob)->user, user) == 0;
            wref_decref(ob);
            if (match)
                return i;
        }
    }
    return -1;
}

/* The old, borrowed lookup: the session is NOT kept alive by the caller. */
static __attribute__((noinline)) wref_object *session_lookup_borrowed(const char *user)
{
    int i = registry_find(user);
    if (i < 0)
        return NULL;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    return wref_get_object(registry.ref[i]);   /* borrowed (deprecated API) */
#pragma GCC diagnostic pop
}

static __attribute__((noinline)) void registry_logout(const char *user)
{
    int i = registry_find(user);
    if (i < 0)
        return;
    wref_decref(registry.owner[i]);   /* the registry's reference was the last one */
    registry.owner[i] = NULL;
}

static void registry_shutdown(void)
{
    for (int i = 0; i < MAX_SESSIONS; i++) {
        wref_xdecref(registry.owner[i]);
        wref_xdecref(registry.ref[i]);
        registry.owner[i] = registry.ref[i] = NULL;
    }
}

/* ---- replies: queued with a strong reference to their session ---------------------------- */

static struct {
    wref_object *session[16];
    int n;
} replies;

static __attribute__((noinline)) void reply_queue_push(wref_object *session)
{
    if (replies.n == 16)
        return;
    wref_incref(session);   /* the reply keeps its session alive... if it still is */
    replies.session[replies.n++] = session;
}

static void reply_queue_flush(void)
{
    for (int i = 0; i < replies.n; i++) {
        printf("reply sent to session %p\n", (void *)replies.session[i]);
        wref_decref(replies.session[i]);
    }
    replies.n = 0;
}

/* ---- request handling --------------------------------------------------------------------- */

static __attribute__((noinline)) void handle_event(const char *user, const char *event)
{
    printf("event for %s: %s\n", user, event);
    if (strcmp(event, "logout") == 0)
        registry_logout(user);
}

static __attribute__((noinline)) void handle_request(const char *user, const char *const *events, int n)
{
    wref_object *session = session_lookup_borrowed(user);   /* BUG: borrowed */
    if (!session || session == wref_none())
        return;
    ((struct session *)session)->requests++;
    for (int i = 0; i < n; i++)
        handle_event(user, events[i]);   /* "logout" destroys the session */
    reply_queue_push(session);           /* dangling borrowed reference */
}

int main(void)
{
    registry_login("alice");
    registry_login("bob");

    static const char *const browse[] = {"view /inbox", "view /inbox/42"};
    static const char *const leave[] = {"view /settings", "logout"};
    handle_request("bob", browse, 2);
    handle_request("alice", leave, 2);   /* alice logs out in the middle of her request */

    reply_queue_flush();
    registry_shutdown();
    return 0;
}
