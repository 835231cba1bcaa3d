/* pystack.h: the Python stack depot (pystack.c). */
#ifndef WREF_CHECK_PYTHON_PYSTACK_H
#define WREF_CHECK_PYTHON_PYSTACK_H

#include "../engine/finding.h"
#include "../engine/stack.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The running Python frames (at most depth, innermost first) as a depot id; 0 when there is
 * no thread state or no frame. The GIL must be held. Keeps any pending exception as it is. */
uint32_t wref__py_stack_capture(unsigned depth);

/* The innermost Python frame's code object (as an address: a key, not a reference) and its
 * position (the last instruction on 3.11+, the line before); false when there is none. Cheap:
 * no frame walk. GIL held. */
bool wref__py_innermost(uintptr_t *code, int *where);

/* wref__lang_stack_get for the engine: the formatted frames of stack id. */
size_t wref__py_stack_get(uint32_t id, const wref__lang_frame **frames);

#endif /* WREF_CHECK_PYTHON_PYSTACK_H */
