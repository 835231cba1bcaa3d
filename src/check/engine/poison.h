/* poison.h: the poison written over a destroyed object's memory, and what a fault through it
 * names.
 *
 * Each pointer-sized, aligned word of a quarantined object holds a *poison pointer*: an address
 * inside a region reserved at start-up with no access (PROT_NONE), whose position names the
 * quarantined object (one slot of WREF__POISON_STRIDE bytes per object). A program that reads a
 * pointer out of a destroyed object and follows it faults inside that region, and the fault
 * address says which object the pointer came from, even at a field offset of up to
 * WREF__POISON_STRIDE - WREF__POISON_BIAS bytes (or WREF__POISON_BIAS bytes before it).
 * The other bytes (a tail shorter than a word) are 0xDD. When no slot is free (more objects in
 * the quarantine than slots) or the region could not be reserved, the whole object is 0xDD.
 *
 * A plain data read of poison does not fault: it reads the poison's value. Only following it
 * as a pointer does.
 *
 * Thread safety: fill, check and release may run concurrently for different objects (slots
 * are claimed with CAS); wref__poison_find is async-signal-safe (atomic loads only).
 */
#ifndef WREF_CHECK_POISON_H
#define WREF_CHECK_POISON_H

#include <stddef.h>
#include <stdint.h>

#define WREF__POISON_BYTE 0xDD
#define WREF__POISON_STRIDE 4096u          /* reserved bytes per slot */
#define WREF__POISON_BIAS 256u             /* the poison pointer's offset into its slot */
#define WREF__POISON_SLOTS (1u << 20)      /* 4 GiB of address space, never backed */

struct wref__rec;

/* Reserves the region. Call once at checker init; without it (or when it fails) poisoning is
 * 0xDD bytes only. */
void wref__poison_init(void);

/* Poisons the `size` bytes of a destroyed object at `ob` on behalf of record `rec`. */
void wref__poison_fill(void *ob, size_t size, struct wref__rec *rec);

/* Offset of the first byte of ob's `size` bytes that is no longer the poison fill_poison wrote
 * for rec, or -1 when all of it is intact. */
long wref__poison_check(const void *ob, size_t size, const struct wref__rec *rec);

/* Forgets rec's slot (its memory leaves the quarantine). Call before the memory is reused. */
void wref__poison_release(const struct wref__rec *rec);

/* The quarantined record whose poison pointer leads to fault address `addr`, or NULL; sets
 * *obj to that object's address. Async-signal-safe. */
struct wref__rec *wref__poison_find(uintptr_t addr, uintptr_t *obj);

/* The poison pointer value of a slot-holding object, for tests: 0 when rec has no slot. */
uintptr_t wref__poison_value(const void *ob, const struct wref__rec *rec);

#endif /* WREF_CHECK_POISON_H */
