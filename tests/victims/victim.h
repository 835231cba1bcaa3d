/* victim.h: what the victim programs share: a plain weakrefable Widget type and a NOINLINE
 * marker. Each victim does exactly one wrong thing, in a noinline function with a distinctive
 * name, so the frames its report shows are stable (see house-style.md, point 8). */
#ifndef WREF_VICTIM_H
#define WREF_VICTIM_H

#include <wref.h>

#include <stdio.h>
#include <stdlib.h>

#define NOINLINE __attribute__((noinline))

/* The victims use the deprecated borrowed API on purpose. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

struct widget {
    wref_object ob_base;   /* 24 bytes */
    int id;
    int payload;           /* sizeof: 32 bytes */
};

static const wref_type widget_type = {
    .name = "Widget", .size = sizeof(struct widget), .flags = WREF_TYPE_WEAKREFABLE};

/* Like assert(), also in Release builds: a victim that cannot set up its bug fails loudly. */
#define VCHECK(cond) \
    ((cond) ? (void)0 : (fprintf(stderr, "%s:%d: VCHECK failed: %s\n", __FILE__, __LINE__, #cond), exit(99)))

/* Keeps the compiler from reasoning about a pointer's target. */
#define OPAQUE(p) __asm__ volatile("" : "+r"(p))

/* n Widgets made and destroyed at once: their pointers are stale (guard=all: reading one faults). */
static inline void victim_destroyed_widgets(struct widget **out, int n)
{
    for (int i = 0; i < n; i++) {
        out[i] = (struct widget *)wref_new(&widget_type);
        VCHECK(out[i]);
        wref_decref(&out[i]->ob_base);
    }
}

#endif
