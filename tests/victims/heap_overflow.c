/* heap_overflow.c: a write past the end of an object (type size 24, byte written at 30),
 * found when the object is destroyed. The bytes written are inside the checker's redzone,
 * which is inside the block it allocated, so AddressSanitizer would not see it anyway; the
 * function is also excluded from ASan instrumentation so the test means the same in every
 * build. */
#include "victim.h"

struct small {
    wref_object ob_base;   /* 24 bytes: the whole object */
};

static const wref_type small_type = {.name = "Small", .size = sizeof(struct small), .flags = 0};

__attribute__((no_sanitize("address"))) static NOINLINE void victim_write_past_end(wref_object *ob)
{
    char *bytes = (char *)ob;
    OPAQUE(bytes);
    bytes[30] = 'x';   /* BUG: the object is 24 bytes */
}

static NOINLINE void victim_destroy_small(wref_object *ob)
{
    wref_decref(ob);
}

int main(void)
{
    wref_object *s = wref_new(&small_type);
    VCHECK(s);
    victim_write_past_end(s);
    victim_destroy_small(s);
    return 0;
}
