/* hostile_names.c: leaks one object whose type name holds a quote, a backslash, a newline, a
 * control byte, a byte that is not UTF-8 and a euro sign, for check_options.py: the JSON
 * report must stay valid and keep the name (the bad byte as U+FFFD). */
#include "victim.h"

static const wref_type odd_type = {.name = "We\"ird\\\n\x01\xff\xe2\x82\xac", .size = 32};

int main(void)
{
    wref_object *ob = wref_new(&odd_type);   /* BUG: leaked, to be named in the report */
    OPAQUE(ob);
    return 0;
}
