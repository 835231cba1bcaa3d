#!/usr/bin/env python3
"""gen_api_seeds.py: writes the seed corpus of fuzz_api (tests/fuzz/corpus/api/).

One seed per conformance case of docs/semantics.md section 8
(the file name says which), written in the byte language of fuzz_api.c. Selectors index the
references the harness holds, in id order, so the comments track what is held. To see what a
seed does: FUZZ_API_TRACE=1 build/.../fuzz_api_replay tests/fuzz/corpus/api/<seed>.

    tests/fuzz/gen_api_seeds.py [OUTDIR]     (default: the corpus directory next to this file)
"""
import os
import sys

NOP, NEW, INCREF, DECREF, REF, PROXY, GET_REF, GET_OBJECT, CLEAR, CLEAR_NOCB, OWN, ERR, \
    FAIL_ALLOC, CALL, LIST, DECREF_USER = range(16)

W, F, D, C = 1, 2, 4, 8          # type bits: weakrefable, finalize, destroy, callable
SELF = 0xC0                      # target selector: self (finalize, callback, destroy)
NONE_T = 0x80                    # target selector: None
WEAKREF_T = 0x81                 # target selector: the first held weakref
ARG = 0xC0                       # weakref selector: the callback's argument
CHECKED = 0x20                   # get_object: wref_get_object rather than WREF_GET_OBJECT
OK, FAILS, FAILS_SILENTLY = 0, 1, 2
ERR_TYPE, ERR_RUNTIME = 1, 5


def act(*op, flags=OK):
    """An action: flags byte then up to 7 op bytes."""
    b = bytes([flags]) + bytes(op)
    assert len(b) <= 8, op
    return b.ljust(8, b"\0")


def new(tb, fin=None, des=None):
    b = bytes([NEW, tb])
    if tb & F:
        b += fin or act()
    if tb & D:
        b += des or act()
    return b


def ref(target=0, cb=None, proxy=False, held_cb=None):
    """cb: None (no callback), 'none' (wref_none()), an action (new callback object);
    held_cb: selector of a held reference used as the callback."""
    op = PROXY if proxy else REF
    if held_cb is not None:
        return bytes([op, target, 3 | (held_cb << 3)])
    if cb is None:
        return bytes([op, target, 0])
    if cb == "none":
        return bytes([op, target, 1 | 4])
    return bytes([op, target, 2]) + cb


def op(*b):
    return bytes(b)


SEEDS = {
    # 3, 4, 5: the canonical ref and proxy are reused, NULL and None callbacks alike
    "case03_05_canonical_reuse": new(W | D) + ref() + ref() + ref(cb="none")
        + ref(proxy=True) + ref(proxy=True, cb="none") + op(LIST, 0),
    # 6, 7: an intervening proxy (ref) does not break ref (proxy) reuse
    "case06_07_interleaved_reuse": new(W | D) + ref(proxy=True) + ref() + ref(proxy=True) + ref()
        + op(LIST, 0) + op(DECREF, 1) + op(LIST, 0),
    # 8, 9: refs with callbacks are distinct; the callback's count goes up
    "case08_09_callback_refs_distinct": new(W | D) + ref(cb=act()) + ref(cb=act()) + op(LIST, 0),
    # 11, 12: non-weakrefable referents: a plain object, None, a weakref
    "case11_12_not_weakrefable": new(D) + ref() + ref(proxy=True) + new(W | D) + ref(target=1)
        + ref(target=NONE_T) + ref(target=WEAKREF_T) + ref(target=WEAKREF_T, proxy=True),
    # 13: a non-callable callback is rejected (held #2 is a plain Widget)
    "case13_noncallable_callback": new(W | D) + new(W | D) + ref(held_cb=1) + ref(proxy=True, held_cb=1),
    # 2, 14: proxy kinds; calling through a callable proxy, live and dead
    "case02_14_callable_proxy": new(W | D | C) + ref(proxy=True) + ref(proxy=True, cb=act())
        + op(CALL, 1, 1, 0) + op(CALL, 1, 0, 0) + op(DECREF_USER, 0) + op(CALL, 0, 1, 0),
    # 15, 16, 17: list order: [basic ref, basic proxy, newest ... oldest]
    "case15_17_list_order": new(W | D) + ref(proxy=True) + ref(cb=act()) + ref() + ref(proxy=True, cb=act())
        + ref(cb=act()) + op(LIST, 0),
    # 18: destroying weakrefs removes them from the list
    "case18_destroy_weakrefs": new(W | D) + ref(cb=act()) + ref(cb=act()) + op(DECREF, 1) + op(LIST, 0)
        + op(DECREF, 1) + op(LIST, 0),
    # 19, 20, 21: get_ref live (kept, then dropped) and dead; through a proxy too
    "case19_21_get_ref": new(W | D) + ref() + ref(proxy=True) + op(GET_REF, 0, 1) + op(GET_REF, 1, 0)
        + op(DECREF, 0) + op(DECREF, 0) + op(GET_REF, 0, 0) + op(GET_REF, 1, 0),
    # 22: get_ref of a non-weakref (a user object, None): TypeError
    "case22_get_ref_not_weakref": new(W | D) + op(GET_REF, 15, 0) + op(GET_REF, 31, 0),
    # 24, 25, 26: get_object / WREF_GET_OBJECT live and dead; of a non-weakref: SystemError
    "case24_26_get_object": new(W | D) + ref() + op(GET_OBJECT, 0) + op(GET_OBJECT, CHECKED)
        + op(GET_OBJECT, 15 | CHECKED) + op(DECREF_USER, 0) + op(GET_OBJECT, 0) + op(GET_OBJECT, CHECKED),
    # 27, 28: a callback makes a late ref to its dying referent (#4); an older callback and
    # destroy probe it in the dying window (count 0, still linked): dead for every accessor
    "case27_28_dying_window": new(W | D, des=act(GET_OBJECT, 2 | CHECKED)) + ref(cb=act(GET_OBJECT, 2))
        + ref(cb=act(REF, SELF, 0)) + op(DECREF_USER, 0) + op(LIST, 0),
    "case27_28_dying_window_get_ref": new(W | D, des=act(GET_REF, 2, 1)) + ref(cb=act(GET_REF, 2, 1))
        + ref(cb=act(REF, SELF, 0)) + op(DECREF_USER, 0),
    # 29: wref_clear_weakrefs on a live object: SystemError, refs stay live
    "case29_clear_live": new(W | D) + ref() + op(CLEAR, 0) + op(GET_REF, 0, 0),
    # 30-33: everything dead before the first callback; callbacks newest first, each with its ref
    "case30_33_callbacks_newest_first": new(W | D) + ref() + ref(proxy=True) + ref(cb=act(GET_REF, 0, 0))
        + ref(cb=act(GET_REF, ARG, 0)) + ref(cb=act(GET_OBJECT, 1)) + op(DECREF_USER, 0),
    # 34, 35: a failing callback goes to the unraisable hook, the others still run, and the
    # pending error survives
    "case34_35_failing_callback": new(W | D) + ref(cb=act()) + ref(cb=act(flags=FAILS))
        + ref(cb=act(REF, NONE_T, 0, flags=FAILS_SILENTLY)) + op(ERR, ERR_TYPE) + op(DECREF_USER, 0),
    # 36: the newest callback drops the only reference to an older callback ref: both run
    "case36_callback_drops_other_ref": new(W | D) + ref(cb=act()) + ref(cb=act(DECREF, 0))
        + op(DECREF_USER, 0),
    # 37: a callback ref destroyed first never calls back
    "case37_dead_ref_no_callback": new(W | D) + ref(cb=act()) + op(DECREF, 1) + op(DECREF_USER, 0),
    # 39: clearing allocates nothing: a failing allocator does not stop the callbacks
    "case39_alloc_failure": new(W | D) + ref(cb=act()) + ref(cb=act()) + op(FAIL_ALLOC) + op(DECREF_USER, 0)
        + new(W) + new(W | D) + op(FAIL_ALLOC) + ref(cb=act()) + op(FAIL_ALLOC) + ref() + ref(cb=act()),
    # 42, 43: clear without callbacks on a live object; the callback stays attached; a new ref is new
    "case42_43_clear_no_callbacks": new(W | D) + ref() + ref(cb=act()) + ref(proxy=True) + op(CLEAR_NOCB, 0)
        + ref() + op(LIST, 0) + op(DECREF_USER, 0),
    # 44: clear without callbacks on a non-weakrefable object: nothing happens
    "case44_clear_no_callbacks_plain": new(D) + op(CLEAR_NOCB, 0) + op(CLEAR, 0),
    # 45: destroy makes a late ref with a callback; step 4 clears it, the callback never runs
    "case45_late_ref_in_destroy": new(W | D, des=act(REF, SELF, 2)) + op(DECREF_USER, 0) + op(GET_REF, 0, 0),
    # 45 variant: destroy calls wref_clear_weakrefs(self) itself (count 0: allowed)
    "case45_clear_in_destroy": new(W | D, des=act(CLEAR, SELF)) + ref(cb=act(REF, SELF, 2)) + op(DECREF_USER, 0),
    # 46: finalize sees its ref live and makes a ref with a callback: that callback runs first
    "case46_ref_created_in_finalize": new(W | F | D, fin=act(REF, SELF, 2)) + ref(cb=act(GET_REF, ARG, 0))
        + op(DECREF_USER, 0),
    # 47: finalize resurrects: refs stay live, no callback; the second death runs the callback
    # and not finalize
    "case47_resurrection": new(W | F | D, fin=act(INCREF, SELF)) + ref(cb=act()) + op(DECREF_USER, 0)
        + op(GET_REF, 0, 0) + op(DECREF_USER, 0),
    # ownership chains: destroy drops what it owns, callbacks run along the chain
    "chain_owned": new(W | D) + new(W | D) + new(W | D) + ref(target=0, cb=act(LIST, SELF))
        + ref(target=2, cb=act()) + op(OWN, 1, 2) + op(OWN, 0, 1) + op(DECREF_USER, 0),
    # an object owning a callback ref to itself
    "own_own_weakref": new(W | D) + ref(cb=act(INCREF, ARG)) + op(OWN, 0, 1) + op(DECREF_USER, 0),
    # callbacks that are not callback objects: a callable user object, a ref, a callable proxy
    "callback_kinds": new(W | D | C) + new(W | D) + ref(target=1, held_cb=0) + ref(target=0)
        + ref(target=1, held_cb=2) + ref(target=0, proxy=True) + ref(target=1, held_cb=5)
        + op(DECREF_USER, 1),
    # reentrancy: a callback creates an object and weakrefs, drops the object, clears refs
    # (regress_weakref_freed_after_callback_dropped, next to these seeds, is a fuzzer-found input kept
    # as a regression for the harness: the model must free a weakref after dropping its callback.)
    "callback_creates_and_drops": new(W | D) + new(W | D) + ref(target=0, cb=act(NEW, W | D))
        + ref(target=1, cb=act(CLEAR_NOCB, 0)) + ref(target=1, cb=act(DECREF_USER, 0))
        + op(DECREF_USER, 1) + op(DECREF_USER, 0),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "api")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {out}")


if __name__ == "__main__":
    main()
