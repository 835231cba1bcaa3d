"""ctypes_callbacks.py: a real extension that registers weakref callbacks from C, run clean
under the checker (tests/python/CMakeLists.txt, python.<interpreter>.ctypes_callbacks).

CPython's own _ctypes (lib-dynload on Debian, part of every CPython) caches array types: the
array type `T * n` is kept in a dict keyed by (T, n), through PyWeakref_NewProxy(array_type,
remover), whose callback (a _ctypes DictRemover) deletes the key when the array type dies
(PyCArrayType_from_ctype, PyDict_SetItemProxy). create_string_buffer(n) makes `c_char * n` the
same way. The key holds T: had a remover not run, T would stay alive, which this checks.

Each of ROUNDS rounds defines a Structure class, makes arrays of 1..7 of it (each a new array
type: a callback registered from C), fills and reads them, and makes a string buffer of a new
size; then drops them all. The garbage collector frees the array types (types are in cycles),
their callbacks run and release the classes, which the next collection frees. Prints the
counts; exits 1 if a class survived."""
import ctypes
import gc
import sys
import weakref

ROUNDS = 300
WIDTHS = range(1, 8)


def one_round(r):
    class Point(ctypes.Structure):
        _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_double)]

    total = 0.0
    for n in WIDTHS:
        arr = (Point * n)()  # a new array type, cached by _ctypes with a weakref callback
        assert type(arr) is Point * n  # the cache answers while the type lives
        for i in range(n):
            arr[i].x = r + i
            arr[i].y = i / 2
        total += sum(p.x + p.y for p in arr)
        nested = (Point * n * 2)()  # an array type of an array type
        nested[1][n - 1].x = 7
        total += nested[1][n - 1].x
    buf = ctypes.create_string_buffer(1000 + r)  # c_char * (1000 + r), a new size each round
    buf.value = b"round %d" % r
    total += len(buf.value)
    return weakref.ref(Point), total


def main():
    classes = []
    total = 0.0
    for r in range(ROUNDS):
        ref, t = one_round(r)
        classes.append(ref)
        total += t
        if r % 50 == 49:
            gc.collect()
    gc.collect()  # frees the array types: their callbacks drop the cache keys, which held the classes
    gc.collect()  # frees the classes, garbage only now
    alive = sum(1 for c in classes if c() is not None)
    made = ROUNDS * (2 * len(WIDTHS) + 1)
    print(f"ctypes array types made: {made}; Structure classes still alive after collection: {alive}; "
          f"checksum {total:.1f}")
    return 1 if alive else 0


sys.exit(main())
