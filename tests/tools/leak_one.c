/* leak_one: creates one wref object and never releases it, so the checker's leak census
 * reports exactly one leak at exit. Exits 0 by itself: any other status comes from the
 * checker. */
#include <wref.h>

static const wref_type leaky_type = {.name = "leaky", .size = sizeof(wref_object)};

int main(void)
{
    wref_object *ob = wref_new(&leaky_type);   /* count 1, never decref'd */
    return ob ? 0 : 1;
}
