#!/usr/bin/env python3
"""gen_big_report.py: write a large, schema-conforming wref-check report for timing and tests.

    gen_big_report.py --binary ELF [--library LIB] [--findings N] [--graph-objects M] -o OUT

Every finding's stacks point into real binaries: frames inside functions of ELF (found with
`nm`, at varying offsets within each function, so symbolization has many distinct addresses
to look up) with function/file/line left null for `wref-check report --format=symbolize` to
fill, one frame in LIB (the checker library) and one in libc. The build ID is ELF's own (from
`readelf -n`). A leak_graph of M objects with cycles and weakrefs feeds --format=dot/svg.
Deterministic: the same arguments give the same file.

Timing (docs/report-tool.md):
    python3 tests/report/gen_big_report.py --binary build/tests/victims/victim_leak_preload \\
        --library build/src/libwref-check.so -o /tmp/big.json
    time build/tools/wref-check report --format=symbolize /tmp/big.json -o /tmp/big.sym.json
    time build/tools/wref-check report --format=text /tmp/big.sym.json -o /tmp/big.txt
    time build/tools/wref-check report --format=svg /tmp/big.sym.json -o /tmp/big.svg
"""
import argparse
import json
import random
import re
import subprocess

KINDS = [("dangling-borrow", "error"), ("use-after-free", "error"), ("use-after-clear", "error"),
         ("invalid-object", "error"), ("heap-overflow", "error"), ("write-after-free", "error"),
         ("clear-live", "error"), ("leak", "error"), ("callback-never-ran", "warning"),
         ("callback-suppressed", "warning"), ("callback-error", "warning")]
LABELS = ["borrowed", "destroyed (the last reference dropped)", "created"]


def functions(binary):
    """[(start, size)] of the defined functions of `binary` that have a size."""
    out = subprocess.run(["nm", "--defined-only", "-S", binary], check=True,
                         capture_output=True, text=True).stdout
    funcs = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "Tt" and int(parts[1], 16) > 4:
            funcs.append((int(parts[0], 16), int(parts[1], 16)))
    if not funcs:
        raise SystemExit("gen_big_report: no sized functions in %s (is it stripped?)" % binary)
    return sorted(funcs)


def build_id(binary):
    out = subprocess.run(["readelf", "-n", binary], capture_output=True, text=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]+)", out)
    return m.group(1) if m else None


def frame(pc, module, bid, offset, function=None, file=None, line=None):
    return {"pc": "0x%x" % pc, "module": module, "build_id": bid, "offset": "0x%x" % offset,
            "function": function, "file": file, "line": line, "inlined": False}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--library", default="/usr/lib/libwref-check.so")
    ap.add_argument("--findings", type=int, default=10000)
    ap.add_argument("--graph-objects", type=int, default=1000)
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    rnd = random.Random(4)
    funcs = functions(a.binary)
    bid = build_id(a.binary)
    base = 0x555555554000

    def user_frame():
        start, size = rnd.choice(funcs)
        off = start + 1 + rnd.randrange(size)   # a return address inside the function
        return frame(base + off, a.binary, bid, off)

    def stack(label, thread):
        frames = [frame(0x7ffff7f00000 + 0x52a6, a.library, None, 0x52a6, "wref_incref")]
        frames += [user_frame() for _ in range(rnd.randint(3, 6))]
        frames.append(frame(0x7ffff7c2724a, "/lib/x86_64-linux-gnu/libc.so.6", None, 0x2724a,
                            "__libc_start_call_main", "../sysdeps/nptl/libc_start_call_main.h", 58))
        return {"label": label, "thread": thread, "frames": frames}

    findings, by_kind = [], {}
    for i in range(1, a.findings + 1):
        kind, sev = KINDS[i % len(KINDS)]
        by_kind[kind] = by_kind.get(kind, 0) + 1
        serial = i
        stacks = [stack("where", 0)] + [stack(l, 0) for l in LABELS[rnd.randrange(3):]]
        findings.append({
            "id": i, "kind": kind, "severity": sev, "message": "generated finding %d" % i,
            "object": {"type": "Type%d" % (i % 50), "serial": serial, "size": 32,
                       "address": "0x%x" % (0x5555aaaa0000 + 64 * i)},
            "address": "0x%x" % (0x5555aaaa0000 + 64 * i),
            "thread": {"number": 0, "tid": 4242}, "stacks": stacks,
            "summary": "%s in generated" % kind})
    objects, edges = [], []
    n = a.graph_objects
    for s in range(1, n + 1):
        role = "cycle" if s % 10 < 3 else ("indirect" if s % 10 < 7 else "direct")
        obj = {"serial": s, "type": "Type%d" % (s % 50), "size": 32 + s % 64,
               "address": "0x%x" % (0x5555bbbb0000 + 64 * s), "role": role, "finding": None}
        if s % 10 == 9:
            obj["weakref"] = {"referent": max(1, s - 5), "callback": s % 20 == 9}
        objects.append(obj)
        if s % 10 in (0, 1) and s + 1 <= n:
            edges.append([s, s + 1])          # 0 -> 1 -> 2 -> 0: a three-object cycle
        if s % 10 == 2:
            edges.append([s, s - 2])
        if s % 10 in (3, 4, 5, 6) and s > 1:
            edges.append([s - 1, s])           # indirect chains
    doc = {"format": "wref-check-report", "version": 1,
           "tool": {"name": "libwref-check", "version": "0.1.0"},
           "program": {"path": a.binary, "argv": [a.binary], "pid": 31337, "ppid": 1,
                       "cwd": "/", "start_time": "2024-05-01T10:00:00Z"},
           "options": {"report": "json"}, "findings": findings,
           "leak_graph": {"objects": objects, "edges": edges, "truncated": False},
           "summary": {"findings": len(findings), "by_kind": by_kind, "suppressed": 0,
                       "exit_status": 23},
           "complete": True}
    with open(a.output, "w") as f:
        json.dump(doc, f)


if __name__ == "__main__":
    main()
