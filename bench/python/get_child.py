"""get_child.py: one process of the PyWeakref_GetObject bench (bench/python/pybench.py) or of
the callgrind gate (scripts/callgrind-gate.sh).

    python get_child.py MODDIR N BATCHES      prints one JSON line: per-call ns of each batch
    python get_child.py MODDIR --callgrind IMPL N
                                              under valgrind --tool=callgrind --instr-atstart=no:
                                              one dump per case (wref_pybench.callgrind)

MODDIR holds wref_pybench.so built for this interpreter (bench/python/pyget.c). Two cases, each
a loop in C of N calls of PyWeakref_GetObject + Py_INCREF + Py_DECREF: "same" borrows one
weakref's referent again and again, "many" cycles through weakrefs to 1024 distinct objects.
A warm-up batch of each comes first (not reported); then BATCHES rounds, each running both
cases. Every referent stays alive until the end. Under callgrind a third case,
py_alloc_free: N instances of Obj made (called from C) and dropped at once.
"""
import json
import sys
import weakref


class Obj:
    pass


def main():
    sys.path.insert(0, sys.argv[1])
    import wref_pybench as m

    obj = Obj()
    ref = weakref.ref(obj)
    objs = [Obj() for _ in range(1024)]
    refs = tuple(weakref.ref(o) for o in objs)
    if sys.argv[2] == "--callgrind":
        m.callgrind(sys.argv[3], ref, refs, int(sys.argv[4]), Obj)
        return 0
    n, batches = int(sys.argv[2]), int(sys.argv[3])
    m.get_same(ref, n)
    m.get_many(refs, n)
    out = {"n": n, "same_wall": [], "same_cpu": [], "many_wall": [], "many_cpu": []}
    for _ in range(batches):
        for case, fn, arg in (("same", m.get_same, ref), ("many", m.get_many, refs)):
            wall, cpu = fn(arg, n)
            out[case + "_wall"].append(wall / n)
            out[case + "_cpu"].append(cpu / n)
    print("WREF_PYBENCH " + json.dumps(out), flush=True)
    del objs, obj
    return 0


if __name__ == "__main__":
    sys.exit(main())
