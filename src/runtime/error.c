/* error.c: the thread-local error indicator and the unraisable hook. */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* kind == WREF_OK means no error pending; message is then meaningless. */
static __thread wref__saved_error current;

/* The unraisable hook; the mutex keeps fn and arg a consistent pair (a cold path). */
static struct {
    pthread_mutex_t lock;
    wref_unraisable_fn fn;
    void *arg;
} hook = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL};

static const char *const names[] = {
    [WREF_OK] = "OK",
    [WREF_ERR_TYPE] = "TypeError",
    [WREF_ERR_REFERENCE] = "ReferenceError",
    [WREF_ERR_MEMORY] = "MemoryError",
    [WREF_ERR_SYSTEM] = "SystemError",
    [WREF_ERR_RUNTIME] = "RuntimeError",
};

wref_error wref_err_occurred(void)
{
    return current.kind;
}

const char *wref_err_message(void)
{
    return current.kind == WREF_OK ? NULL : current.message;
}

const char *wref_err_name(wref_error kind)
{
    if ((unsigned)kind < sizeof names / sizeof names[0])
        return names[kind];
    return "UnknownError";
}

void wref__err_vset(wref_error kind, const char *fmt, va_list ap)
{
    if (kind == WREF_OK) {
        current.kind = WREF_OK;
        return;
    }
    current.kind = kind;
    if (fmt)
        vsnprintf(current.message, sizeof current.message, fmt, ap);
    else
        snprintf(current.message, sizeof current.message, "%s", wref_err_name(kind));
}

void wref_err_set(wref_error kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    wref__err_vset(kind, fmt, ap);
    va_end(ap);
}

void wref_err_clear(void)
{
    current.kind = WREF_OK;
}

void wref__err_save(wref__saved_error *s)
{
    s->kind = current.kind;
    if (current.kind != WREF_OK)
        memcpy(s->message, current.message, sizeof s->message);
    current.kind = WREF_OK;
}

void wref__err_restore(const wref__saved_error *s)
{
    current.kind = s->kind;
    if (s->kind != WREF_OK)
        memcpy(current.message, s->message, sizeof current.message);
}

/* fork: the hook's lock is held across fork() and released in both processes, so a child
 * forked while another thread read the hook does not block on its first failing callback.
 * A leaf lock (nothing else is taken under it), so any order against the other handlers. */
static void hook_fork_prepare(void) { pthread_mutex_lock(&hook.lock); }
static void hook_fork_release(void) { pthread_mutex_unlock(&hook.lock); }

__attribute__((constructor)) static void register_hook_fork(void)
{
    pthread_atfork(hook_fork_prepare, hook_fork_release, hook_fork_release);
}

void wref_set_unraisable_hook(wref_unraisable_fn fn, void *arg)
{
    pthread_mutex_lock(&hook.lock);
    hook.fn = fn;
    hook.arg = arg;
    pthread_mutex_unlock(&hook.lock);
}

void wref__unraisable(wref_error kind, const char *message, wref_object *obj, int reported)
{
    pthread_mutex_lock(&hook.lock);
    wref_unraisable_fn fn = hook.fn;
    void *arg = hook.arg;
    pthread_mutex_unlock(&hook.lock);

    if (fn) {
        fn(kind, message, obj, arg);
        return;
    }
    if (reported)
        return;   /* the checker's report says it all: not a second line for the same event */
    fprintf(stderr, "wref: exception ignored in weakref callback <%s object at %p>: %s: %s\n",
            obj ? obj->ob_type_->name : "NULL", (void *)obj, wref_err_name(kind),
            message ? message : "");
}
