/* fake_python.c: a "python3.13t" that calls PyWeakref_GetObject from fake_libpython.c, as an
 * extension module would. Under the checker it must print the same line and exit 0 as without
 * it: the checker refuses the free-threaded build and runs it unchecked. */
#include <stdio.h>

void *PyWeakref_GetObject(void *ref);

int main(void)
{
    int referent = 42;
    void *ref = &referent;
    int *got = PyWeakref_GetObject(&ref);
    int *again = PyWeakref_GetObject(&ref);   /* the refusal is said once */
    printf("referent %d %s\n", got ? *got : -1, got == again ? "same" : "differs");
    return got == &referent ? 0 : 1;
}
