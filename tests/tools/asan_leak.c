/* asan_leak: a wref program built with AddressSanitizer (tests/tools/CMakeLists.txt), run
 * under wref-check. It leaks one object, so the checker reports one leak at exit (exit 23);
 * with the argument "overflow" it also writes one byte past a malloc'ed block, which only
 * ASan sees (heap-buffer-overflow, ASan's exit 1): proof that ASan is active too. */
#include <stdlib.h>
#include <string.h>
#include <wref.h>

static const wref_type leaky_type = {.name = "leaky", .size = sizeof(wref_object)};

int main(int argc, char **argv)
{
    wref_object *ob = wref_new(&leaky_type);   /* count 1, never decref'd */
    if (argc > 1 && !strcmp(argv[1], "overflow")) {
        size_t n = strlen(argv[1]);   /* 8, unknown to the compiler */
        volatile char *p = malloc(n);
        p[n] = 1;   /* one past the end */
        free((void *)p);
    }
    return ob ? 0 : 1;
}
