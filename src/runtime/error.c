/* error.c: the thread-local error indicator and the unraisable hook. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* kind == WREF_OK means no error pending; message is then meaningless. */
static __thread wref__saved_error current;

/* The hook and its argument are published together: readers take the lock-free pair snapshot
 * under a tiny spin on `hook_seq` (seqlock), so a concurrent set never tears them. */
static struct {
    wref_unraisable_fn fn;
    void *arg;
    unsigned seq;   /* odd while a writer updates fn/arg */
} hook;

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

void wref_set_unraisable_hook(wref_unraisable_fn fn, void *arg)
{
    unsigned s = __atomic_fetch_add(&hook.seq, 1, __ATOMIC_ACQUIRE);   /* now odd */
    (void)s;
    __atomic_store_n(&hook.fn, fn, __ATOMIC_RELAXED);
    __atomic_store_n(&hook.arg, arg, __ATOMIC_RELAXED);
    __atomic_fetch_add(&hook.seq, 1, __ATOMIC_RELEASE);                /* even again */
}

void wref__unraisable(wref_error kind, const char *message, wref_object *obj)
{
    wref_unraisable_fn fn;
    void *arg;
    unsigned s;
    do {
        s = __atomic_load_n(&hook.seq, __ATOMIC_ACQUIRE);
        fn = __atomic_load_n(&hook.fn, __ATOMIC_RELAXED);
        arg = __atomic_load_n(&hook.arg, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
    } while ((s & 1) || s != __atomic_load_n(&hook.seq, __ATOMIC_RELAXED));

    if (fn) {
        fn(kind, message, obj, arg);
        return;
    }
    fprintf(stderr, "wref: exception ignored in weakref callback <%s object at %p>: %s: %s\n",
            obj ? obj->ob_type_->name : "NULL", (void *)obj, wref_err_name(kind),
            message ? message : "");
}
