/* plugin_leak.c: two plugins each create an object that leaks; both are dlclose'd before the
 * report. The leak report must still name each plugin's function and file, although the
 * second plugin is usually mapped where the first one was. Arguments: the two plugin paths. */
#include "victim.h"

#include <dlfcn.h>
#include <stdio.h>

static const wref_type big_type = {.name = "PluginA", .size = 48};
static const wref_type small_type = {.name = "PluginB", .size = 32};

typedef wref_object *(*make_fn)(const wref_type *);

static NOINLINE wref_object *load_make_unload(const char *path, const char *fn, const wref_type *type)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "plugin_leak: %s\n", dlerror());
        exit(2);
    }
    make_fn make = (make_fn)dlsym(h, fn);
    wref_object *ob = make(type);
    dlclose(h);
    return ob;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    wref_object *a = load_make_unload(argv[1], "plugin_a_make", &big_type);
    wref_object *b = load_make_unload(argv[2], "plugin_b_make", &small_type);
    return a && b ? 0 : 1;   /* both leak */
}
