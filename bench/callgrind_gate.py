#!/usr/bin/env python3
"""callgrind_gate.py: instructions per operation from `wrbench --callgrind` dumps, compared
with bench/callgrind-baseline.json.

    callgrind_gate.py DUMP_DIR BASELINE [--update] [--json OUT]

Each dump is one case: `desc: Trigger: Client Request: IMPL/OP/N` and `totals: IR`. Ir/op is
(IR - IR of the "empty" dump) / N. Prints a table (every impl, one column each). Exit status 1
when a wref count grew by more than the baseline's tolerance (10%) or a gated case is missing;
--update rewrites the baseline from this run instead. Peers are printed, never gated.
"""
import glob
import json
import os
import re
import sys

GATED_IMPL = "wref"


def parse(dump_dir):
    ir = {}
    empty = 0
    for path in glob.glob(os.path.join(dump_dir, "callgrind.out.*")):
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
    base = {}
    tol = 0.10
    if os.path.exists(baseline_path) and not update:
        with open(baseline_path) as f:
            b = json.load(f)
        base = b["wref_ir_per_op"]
        tol = b.get("tolerance", tol)

    print("instructions per operation (callgrind Ir/op; lock-prefixed instructions count as 1)")
    print("%-20s" % "op" + "".join("%12s" % i for i in impls) + "%12s  %s" % ("baseline", "gate"))
    failed = []
    for op in sorted(cur):
        row = "%-20s" % op + "".join(
            "%12s" % ("%.1f" % cur[op][i] if i in cur[op] else "-") for i in impls)
        verdict = ""
        if GATED_IMPL in cur[op] and op in base:
            limit = base[op] * (1 + tol)
            grew = cur[op][GATED_IMPL] > limit
            verdict = "FAIL (> %.1f)" % limit if grew else "ok"
            if grew:
                failed.append(op)
            row += "%12.1f  %s" % (base[op], verdict)
        print(row)
    missing = [op for op in base if op not in cur or GATED_IMPL not in cur[op]]
    for op in missing:
        print("callgrind-gate: gated case %s/%s missing from this run" % (GATED_IMPL, op))

    if update:
        data = {
            "comment": "wref (release) instructions per operation from scripts/callgrind-gate.sh; "
                       "the gate fails when a count grows by more than tolerance. Regenerate with "
                       "scripts/callgrind-gate.sh --update after an intended change.",
            "tolerance": tol,
            "wref_ir_per_op": {op: v[GATED_IMPL] for op, v in sorted(cur.items()) if GATED_IMPL in v},
        }
        with open(baseline_path, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        print("callgrind-gate: baseline written to " + baseline_path)
        return 0
    if failed or missing:
        print("callgrind-gate: FAILED: wref instruction count grew by more than %d%%: %s"
              % (round(tol * 100), " ".join(failed + missing)))
        return 1
    print("callgrind-gate: ok (%d gated wref operations within %d%% of the baseline)"
          % (len(base), round(tol * 100)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
