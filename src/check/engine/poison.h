/* poison.h: the poison written over a destroyed object's memory, and what a fault through it
 * names.
 *
 * Each pointer-sized, aligned word of a quarantined object holds a *poison pointer*: an address
 * inside a region reserved at start-up with no access (PROT_NONE), whose position names the
 * quarantined object (one slot of WREF__POISON_STRIDE bytes per object, poison_slots of them).
 * A program that reads a pointer out of a destroyed object and follows it faults inside that
 * region, and the fault address says which object the pointer came from, even at a field
 * offset of up to WREF__POISON_STRIDE - WREF__POISON_BIAS bytes (or WREF__POISON_BIAS bytes
 * before it). The other bytes (a tail shorter than a word) are 0xDD.
 *
 * Slots are recycled: a slot is freed when its object's memory leaves the quarantine
 * (wref__poison_release). check, release and value find an object's slot from its record in
 * O(1), whatever the program wrote over the object (no scan of the slots). When every slot is taken, wref__poison_fill says so and the caller
 * (heap.c) makes one free by letting the oldest quarantined object go early, then retries; only
 * when that cannot free one (every slot held by a pinned object) or the region could not be
 * reserved is an object poisoned with 0xDD bytes only (counted: WREF__STAT_POISON_PLAIN).
 *
 * A plain data read of poison does not fault: it reads the poison's value. Only following it
 * as a pointer does.
 *
 * Thread safety: fill, check and release may run concurrently for different objects (the free
 * slots are a list under a spinlock); wref__poison_find is async-signal-safe (atomic loads
 * only).
 */
#ifndef WREF_CHECK_POISON_H
#define WREF_CHECK_POISON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WREF__POISON_BYTE 0xDD
#define WREF__POISON_STRIDE 4096u          /* reserved bytes per slot */
#define WREF__POISON_BIAS 256u             /* the poison pointer's offset into its slot */

struct wref__rec;

/* Reserves the region for poison_slots slots. Call once at checker init, after the options;
 * without it (or when it fails) poisoning is 0xDD bytes only. */
void wref__poison_init(void);

/* Poisons the `size` bytes of a destroyed object at `ob` on behalf of record `rec`. Returns
 * false only when every slot is taken (the object is then 0xDD bytes only; after a slot is
 * freed, filling it again gives it one). */
bool wref__poison_fill(void *ob, size_t size, struct wref__rec *rec);

/* Offset of the first byte of ob's `size` bytes that is no longer the poison fill_poison wrote
 * for rec, or -1 when all of it is intact. */
long wref__poison_check(const void *ob, size_t size, const struct wref__rec *rec);

/* Frees rec's slot (its memory leaves the quarantine). Call before the memory is reused. */
void wref__poison_release(const struct wref__rec *rec);

/* The quarantined record whose poison pointer leads to fault address `addr`, or NULL; sets
 * *obj to that object's address. Async-signal-safe. */
struct wref__rec *wref__poison_find(uintptr_t addr, uintptr_t *obj);

/* The quarantined record whose poison pointer `word` is, exactly, or with its bytes rotated as
 * a pointer-sized read at a misaligned offset gives it (the halves of two poison pointers of
 * one object, little-endian): sets *obj to that object's address and *skew to the read's
 * offset past a word boundary (0: the poison pointer itself). NULL for any other value (a
 * value that only partly is poison, as a read across the object's tail gives). Async-signal-
 * safe. */
struct wref__rec *wref__poison_decode(uintptr_t word, uintptr_t *obj, unsigned *skew);

/* fork(): prepare takes the free list's lock, !prepare releases it (parent and child). */
void wref__poison_fork(bool prepare);

/* The poison pointer value of a slot-holding object, for tests: 0 when rec has no slot. */
uintptr_t wref__poison_value(const void *ob, const struct wref__rec *rec);

#endif /* WREF_CHECK_POISON_H */
