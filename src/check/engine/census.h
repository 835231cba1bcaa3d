/* census.h: the findings known only at exit (census.c): leaks, found as a graph whose edges
 * the object model gives (model.h, children), and weakref callbacks that can never run. */
#ifndef WREF_CHECK_ENGINE_CENSUS_H
#define WREF_CHECK_ENGINE_CENSUS_H

#include "buf.h"
#include <stddef.h>

/* Leaks and callbacks that never ran; returns the findings made. With graph != NULL, also
 * writes the leak graph's JSON there (json.c's leak_graph). */
size_t wref__census(wref__buf *graph);

#endif /* WREF_CHECK_ENGINE_CENSUS_H */
