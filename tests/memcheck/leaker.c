/* leaker.c: the program the nested memcheck project (project/) runs under
 * `ctest -T memcheck` with CTEST's LeakSanitizer memcheck type. Linked against libwref-check.
 *
 *   leaker        leaks two objects created at two different places (make_session,
 *                 make_buffer): two direct leaks, whatever the grouping by allocation stack;
 *                 each had a weakref, released, so nothing else is alive at exit
 *   leaker clean  the same objects, released: no leak
 * Exits 0 by itself; the project sets exitcode=0 so only the memcheck log counts the leaks. */
#include <wref.h>

#include <string.h>

struct session {
    wref_object ob_base;
    int id;
};
struct buffer {
    wref_object ob_base;
    char bytes[40];
};

static const wref_type session_type = {
    .name = "Session", .size = sizeof(struct session), .flags = WREF_TYPE_WEAKREFABLE};
static const wref_type buffer_type = {
    .name = "Buffer", .size = sizeof(struct buffer), .flags = WREF_TYPE_WEAKREFABLE};

__attribute__((noinline)) static wref_object *make_session(void)
{
    return wref_new(&session_type);
}

__attribute__((noinline)) static wref_object *make_buffer(void)
{
    return wref_new(&buffer_type);
}

/* a weakref that comes and goes: the object it watched is what leaks */
static int watch(wref_object *ob)
{
    wref_object *ref = wref_ref_new(ob, NULL), *strong = NULL;
    int alive = ref && wref_get_ref(ref, &strong) == 1;
    wref_xdecref(strong);
    wref_xdecref(ref);
    return alive;
}

int main(int argc, char **argv)
{
    int clean = argc > 1 && strcmp(argv[1], "clean") == 0;
    wref_object *s = make_session(), *b = make_buffer();
    if (!s || !b || !watch(s) || !watch(b))
        return 1;
    if (clean) {
        wref_decref(s);
        wref_decref(b);
    }
    return 0;
}
