/* exit_with N [args...]: a clean wref program (one object created and released) that exits
 * with status N, so tests can see the tool hand the program's own status back. With
 * "--print-args" as the second argument it prints the arguments it got, one a line. */
#include <wref.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const wref_type clean_type = {.name = "clean", .size = sizeof(wref_object)};

int main(int argc, char **argv)
{
    wref_object *ob = wref_new(&clean_type);
    if (!ob)
        return 100;
    wref_decref(ob);
    if (argc > 2 && strcmp(argv[2], "--print-args") == 0)
        for (int i = 3; i < argc; i++)
            printf("%s\n", argv[i]);
    return argc > 1 ? atoi(argv[1]) : 0;
}
