"""destroy_loop.py: the cost of the free of a watched object (its destroy stack), per iteration.

    python destroy_loop.py MODDIR N        (MODDIR: tests/python/<tag> of a build tree)

Each iteration creates an object, borrows it once through PyWeakref_GetObject (victim_borrow's
get_ref, always the same C and Python site, so the borrow's stacks come from the site cache),
and drops it: under wref-check that free is the free of a watched object, which captures its
destroy stack (C and Python). The loop runs 10 Python frames deep. Prints the wall and CPU
(process) time per iteration; run it plain and under `wref-check --` side by side.
"""
import sys
import time
import weakref

sys.path.insert(0, sys.argv[1])
import victim_borrow as vb  # noqa: E402


class Obj:
    pass


def loop(k, n):
    if k:
        return loop(k - 1, n)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        o = Obj()
        r = weakref.ref(o)
        x = vb.get_ref(r)
        del x, o
    return (time.perf_counter() - t0) / n * 1e6, (time.process_time() - c0) / n * 1e6


def main():
    n = int(sys.argv[2])
    loop(10, 200)   # warm-up: the sites and libunwind's caches
    wall, cpu = loop(10, n)
    print(f"per-iteration: wall {wall:.2f} us, cpu {cpu:.2f} us")


if __name__ == "__main__":
    main()
