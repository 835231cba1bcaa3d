/* census.h: the findings known only at exit (census.c): leaks, found as a graph whose edges
 * the object model gives (model.h, children), and weakref callbacks that can never run; and
 * the leak graph's JSON (docs/report-schema.json#/$defs/leak_graph), which also holds the
 * objects alive at exit that a frontend keeps in records of its own (wref__census_add_graph). */
#ifndef WREF_CHECK_ENGINE_CENSUS_H
#define WREF_CHECK_ENGINE_CENSUS_H

#include "buf.h"
#include "finding.h"

#include <stddef.h>
#include <stdint.h>

/* Leaks and callbacks that never ran; returns the findings made. With graph != NULL, also
 * writes the leak graph's JSON there: the registry's leaked objects, then those added by
 * wref__census_add_graph, at most 10000 in all (then "truncated": true). */
size_t wref__census(wref__buf *graph);

/* A weak reference to a graph object that is known only by its callback (no record of its
 * own, so no serial): the CPython frontend's weakrefs whose callback C code registered. */
typedef struct wref__graph_weak {
    const char *type;        /* the weakref's type name, or NULL when unknown */
    uintptr_t addr;          /* the weakref's address, 0 when unknown */
    const char *callback;    /* the callback, as the report names it (its repr) */
    const char *api;         /* how it was registered ("PyWeakref_NewRef"), or NULL */
    size_t finding;          /* id of the finding about it (callback-never-ran); 0: none */
} wref__graph_weak;

/* An object alive at exit that a frontend keeps outside the registry. Its serial is in that
 * frontend's own numbering (the one its findings' objects use), so the JSON names the
 * frontend; it has no edges (its children are not known as graph objects). */
typedef struct wref__graph_obj {
    const char *frontend;    /* "python" */
    uint64_t serial;         /* >= 1 */
    const char *type;
    uint32_t size;
    uintptr_t addr;
    enum wref__leak_shape role;
    size_t finding;          /* id of the finding that covers it; 0: none (suppressed) */
    const char *created;     /* where it was created, one line ("file:line in function"), or NULL */
    const wref__graph_weak *weak;   /* n_weak weak references to it with a pending callback */
    size_t n_weak;
} wref__graph_obj;

/* Adds o to the leak graph of the exit census (its strings are copied). For a frontend's exit
 * hook (checker.h: run before the census, on the exiting thread); not thread-safe. */
void wref__census_add_graph(const wref__graph_obj *o);

#endif /* WREF_CHECK_ENGINE_CENSUS_H */
