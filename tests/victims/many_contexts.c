/* many_contexts.c: more distinct findings than the checker remembers for folding repeats.
 * One use-after-free from one line on objects of 4098 types of their own (the type is part of
 * a finding's context): the first 4096 fill the table of printed contexts; the last two types'
 * findings are printed without a repeat check (said at exit), a repeat of the last one too; a
 * repeat of the first type's bug is still folded. */
#include "victim.h"

#define TYPES 4098

static NOINLINE void victim_release_twice(wref_object *ob)
{
    wref_object *saved = ob;   /* a copy, not a reference */
    OPAQUE(saved);
    wref_decref(ob);
    wref_decref(saved);   /* BUG: already destroyed */
}

int main(void)
{
    static wref_type types[TYPES];
    static char names[TYPES][16];
    for (int i = 0; i < TYPES; i++) {
        snprintf(names[i], sizeof names[i], "Kind%d", i);
        types[i] = (wref_type){.name = names[i], .size = sizeof(struct widget)};
    }
    for (int i = 0; i <= TYPES + 1; i++)   /* then Kind0 again: folded; Kind4097 again: printed */
        victim_release_twice(wref_new(&types[i == TYPES + 1 ? TYPES - 1 : i % TYPES]));
    return 0;
}
