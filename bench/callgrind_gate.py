#!/usr/bin/env python3
"""callgrind_gate.py: instructions per operation from `wrbench --callgrind` dumps, compared
with bench/callgrind-baseline.json.

    callgrind_gate.py DUMP_DIR BASELINE [--update] [--json OUT]

Each dump is one case: `desc: Trigger: Client Request: IMPL/OP/N` and `totals: IR`. Ir/op is
(IR - IR of the "empty" dump of the same directory) / N. DUMP_DIR holds wrbench's dumps; each
subdirectory holds those of one more process (the CPython frontend's py_* cases, run by
bench/python/get_child.py: "cpython" plain, "wref-check" under the checker; in python-*.TAG/
the ops are named OP.TAG, one interpreter each). Prints a table (every impl, one column each). Two
implementations are gated, each against its own baseline and tolerance: wref (the release
library, "wref_ir_per_op", "tolerance", 10%) and wref-check (the checker, "check_ir_per_op",
"check_tolerance", 15%: its counts move with every checker change, a slowdown beyond that is a
regression). Exit status 1 when a gated count grew by more than its tolerance or a gated case is
missing (an OP.TAG case is skipped when no python-*.TAG directory is in this run: that interpreter is not on this
machine); --update rewrites the baseline from this run instead (keeping the tolerances and the
cases of interpreters not on this machine). Peers
are printed, never gated.
"""
import glob
import json
import os
import re
import sys

# impl -> (baseline key, tolerance key, default tolerance)
GATED = {"wref": ("wref_ir_per_op", "tolerance", 0.10),
         "wref-check": ("check_ir_per_op", "check_tolerance", 0.15)}


def parse_dir(d):
    """Ir/op of the dumps in one directory (one process), against that directory's "empty"."""
    ir = {}
    empty = 0
    for path in glob.glob(os.path.join(d, "callgrind.out.*")):
        name = total = None
        with open(path) as f:
            for line in f:
                m = re.match(r"desc: Trigger: Client Request: (\S+)", line)
                if m:
                    name = m.group(1)
                m = re.match(r"totals: (\d+)", line)
                if m:
                    total = int(m.group(1))
        if name is None or total is None:
            continue
        if name == "empty":
            empty = total
        else:
            ir[name] = total
    out = {}
    for name, total in ir.items():
        impl, op, n = name.split("/")
        out.setdefault(op, {})[impl] = round((total - empty) / int(n), 2)
    return out


def tag_of(d):
    """The interpreter tag of a CPython process's dump directory python-*.TAG ("" for python-*/,
    Debian's python3.11): its ops are named OP.TAG."""
    base = os.path.basename(d)
    return base.split(".", 1)[1] if base.startswith("python-") and "." in base else ""


def parse(dump_dir):
    """DUMP_DIR and each of its subdirectories: one process's dumps each (wrbench's in DUMP_DIR,
    the CPython frontend's py_* cases in python-*/ and python-*.TAG/), every one with its own
    "empty" dump."""
    out = {}
    for d, _, _ in sorted(os.walk(dump_dir)):
        tag = tag_of(d)
        for op, v in parse_dir(d).items():
            out.setdefault(op + ("." + tag if tag else ""), {}).update(v)
    return out


def tags_run(dump_dir):
    """The interpreter tags this run measured (python-*.TAG directories)."""
    return {tag_of(d) for d, _, _ in os.walk(dump_dir)} - {""}


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    update = "--update" in sys.argv
    json_out = None
    if "--json" in sys.argv:
        json_out = sys.argv[sys.argv.index("--json") + 1]
        args.remove(json_out)
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    dump_dir, baseline_path = args
    cur = parse(dump_dir)
    if not cur:
        print("callgrind-gate: no dumps in " + dump_dir, file=sys.stderr)
        return 2
    if json_out:
        with open(json_out, "w") as f:
            json.dump(cur, f, indent=1, sort_keys=True)
    impls = sorted({i for v in cur.values() for i in v},
                   key=lambda i: ["floor", "wref", "wref-check", "cpython", "glib", "std"].index(i)
                   if i in ["floor", "wref", "wref-check", "cpython", "glib", "std"] else 99)
    old = {impl: {} for impl in GATED}
    tol = {impl: GATED[impl][2] for impl in GATED}
    if os.path.exists(baseline_path):
        with open(baseline_path) as f:
            b = json.load(f)
        for impl, (key, tkey, _) in GATED.items():
            tol[impl] = b.get(tkey, tol[impl])
            old[impl] = b.get(key, {})
    base = {impl: {} if update else old[impl] for impl in GATED}

    print("instructions per operation (callgrind Ir/op; lock-prefixed instructions count as 1)")
    w = max([20] + [len(op) + 1 for op in cur])
    print("%-*s" % (w, "op") + "".join("%12s" % i for i in impls) +
          "".join("%12s  %-14s" % ({"wref": "wref base", "wref-check": "check base"}[i], "gate") for i in GATED))
    failed = []
    for op in sorted(cur):
        row = "%-*s" % (w, op) + "".join(
            "%12s" % ("%.1f" % cur[op][i] if i in cur[op] else "-") for i in impls)
        for impl in GATED:
            cell = "%12s  %-14s" % ("-", "")
            if impl in cur[op] and op in base[impl]:
                limit = base[impl][op] * (1 + tol[impl])
                grew = cur[op][impl] > limit
                if grew:
                    failed.append("%s/%s" % (impl, op))
                cell = "%12.1f  %-14s" % (base[impl][op], "FAIL (> %.1f)" % limit if grew else "ok")
            row += cell
        print(row.rstrip())
    # OP.TAG: an interpreter found on the machine the baseline was made on (pyenv's builds); a
    # machine without it skips its cases, one that has it must measure them
    run = tags_run(dump_dir)
    absent = sorted({op.split(".", 1)[1] for impl in GATED for op in old[impl]
                     if "." in op and op.split(".", 1)[1] not in run})
    for t in absent:
        print("callgrind-gate: %s not on this machine: its py_* cases skipped" % t)
    missing = ["%s/%s" % (impl, op) for impl in GATED for op in base[impl]
               if (op not in cur or impl not in cur[op]) and not ("." in op and op.split(".", 1)[1] in absent)]
    for m in missing:
        print("callgrind-gate: gated case %s missing from this run" % m)

    if update:
        data = {
            "comment": "instructions per operation from scripts/callgrind-gate.sh: wref (release, "
                       "wref_ir_per_op, tolerance) and wref-check (the checker, check_ir_per_op, "
                       "check_tolerance); the gate fails when a count grows by more than its "
                       "tolerance. Regenerate with scripts/callgrind-gate.sh --update after an "
                       "intended change.",
        }
        for impl, (key, tkey, _) in GATED.items():
            data[tkey] = tol[impl]
            kept = {op: n for op, n in old[impl].items() if "." in op and op.split(".", 1)[1] in absent}
            data[key] = dict(sorted(list({op: v[impl] for op, v in cur.items() if impl in v}.items()) +
                                    list(kept.items())))
        with open(baseline_path, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        print("callgrind-gate: baseline written to " + baseline_path)
        return 0
    if failed or missing:
        print("callgrind-gate: FAILED: instruction count grew by more than the tolerance "
              "(wref %d%%, wref-check %d%%): %s"
              % (round(tol["wref"] * 100), round(tol["wref-check"] * 100), " ".join(failed + missing)))
        return 1
    skipped = {i: sum(1 for op in base[i] if "." in op and op.split(".", 1)[1] in absent) for i in GATED}
    print("callgrind-gate: ok (%s)" % ", ".join(
        "%d gated %s operations within %d%%" % (len(base[i]) - skipped[i], i, round(tol[i] * 100)) +
        (" (%d skipped)" % skipped[i] if skipped[i] else "") for i in GATED))
    return 0


if __name__ == "__main__":
    sys.exit(main())
