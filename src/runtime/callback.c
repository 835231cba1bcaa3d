/* callback.c: callable objects wrapping a C function, for weakref callbacks. */
#include "internal.h"
#include "check/wref/hooks.h"

struct callback {
    wref_object base;
    wref_callback_fn fn;
    void *data;
    void (*release)(void *data);
};

static wref_object *callback_call(wref_object *self, wref_object *arg)
{
    struct callback *c = (struct callback *)self;
    if (c->fn(arg, c->data) != 0) {
        if (wref_err_occurred() == WREF_OK)
            wref_err_set(WREF_ERR_RUNTIME, "callback returned -1 without setting an error");
        return NULL;
    }
    return &wref__none;
}

static void callback_destroy(wref_object *self)
{
    struct callback *c = (struct callback *)self;
    if (c->release)
        c->release(c->data);
}

const wref_type wref__callback_type = {
    "callback", sizeof(struct callback), WREF_TYPE_WEAKREFABLE, NULL, callback_destroy, NULL, callback_call};

wref_callback_fn wref__callback_fn(const wref_object *cb)
{
    return cb && cb->ob_type_ == &wref__callback_type ? ((const struct callback *)cb)->fn : NULL;
}

wref_object *wref_callback_new(wref_callback_fn fn, void *data, void (*release)(void *data))
{
    if (!fn) {
        wref_err_set(WREF_ERR_SYSTEM, "wref_callback_new: NULL function");
        return NULL;
    }
    struct callback *c = (struct callback *)wref__object_new(&wref__callback_type);
    if (!c)
        return NULL;
    c->fn = fn;
    c->data = data;
    c->release = release;
    return &c->base;
}
