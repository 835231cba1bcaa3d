/* plugin.c: a plugin that creates an object of a type its host owns and returns it. Built
 * twice (plugin_a, plugin_b) with PLUGIN_FN naming the function, so the host can load one,
 * unload it, and load the other, likely at the same address. */
#include <wref.h>

__attribute__((noinline, visibility("default"))) wref_object *PLUGIN_FN(const wref_type *type)
{
    wref_object *ob = wref_new(type);
    __asm__ volatile("" ::: "memory");   /* keep this frame: no tail call */
    return ob;
}
