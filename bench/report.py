#!/usr/bin/env python3
"""report.py: bench/results.json -> the chart (SVG) and docs/performance.md.

    report.py RESULTS_JSON CHART_SVG PERFORMANCE_MD [IR_PER_OP_JSON] [--python PYTHON_RESULTS_JSON]
              [--programs PROGRAMS_RESULTS_JSON]

Everything in the generated page comes from RESULTS_JSON (a real wrbench run) and, when given,
the callgrind counts of scripts/callgrind-gate.sh and the CPython frontend's run
(bench/python/pybench.py, its section: bench/python/report_python.py) and the whole programs'
run (bench/programs.py, its section and targets: bench/report_programs.py). Also prints the
targets table.
"""
import html
import json
import math
import os
import sys

IMPLS = ["floor", "wref", "wref-check", "cpython", "glib", "std"]
BT_IMPLS = ["fp", "libunwind", "glibc"]
COLORS = {"floor": "#888888", "wref": "#1f77b4", "wref-check": "#aec7e8", "cpython": "#2ca02c",
          "glib": "#d62728", "std": "#9467bd"}

# Which floor row each operation is compared with ("ratio to the floor").
FLOOR_OF = {
    "create_object": "malloc_free", "create_destroy": "malloc_free",
    "weakref_first": "malloc_free", "weakref_callback": "malloc_free", "proxy_first": "malloc_free",
    "drop_weakref": "malloc_free",
    "destroy_0": "malloc_free", "destroy_1": "malloc_free", "destroy_16": "malloc_free",
    "destroy_1024": "malloc_free", "destroy_1_cb": "malloc_free", "destroy_16_cb": "malloc_free",
    "destroy_1024_cb": "malloc_free",
    "weakref_reuse": "cas_decref", "get_hit_hot": "cas_decref", "borrow": "cas_decref",
    "get_hit_cold": "cas_decref_cold", "get_miss": "load",
    "get_hit_same_2t": "cas_decref_same_2t", "get_hit_distinct_2t": "cas_decref_distinct_2t",
    "get_miss_same_2t": "load",
}

OP_TEXT = {
    "load": "floor: one acquire load",
    "cas_decref": "floor: try-incref CAS + decref",
    "spin_cas_decref": "floor: spinlock around CAS + decref",
    "mutex_cas_decref": "floor: pthread mutex around CAS + decref",
    "rwlock_cas_decref": "floor: pthread rwlock (read) around CAS + decref",
    "malloc_free": "floor: malloc(24) + free",
    "cas_decref_cold": "floor: CAS + decref, 1M counters, random order",
    "cas_decref_same_2t": "floor: CAS + decref, 2 threads, one counter",
    "cas_decref_distinct_2t": "floor: CAS + decref, 2 threads, own counters",
    "create_object": "create an object",
    "create_destroy": "create + destroy an object",
    "weakref_first": "first weakref to an object",
    "weakref_reuse": "weakref, canonical reuse (+ drop)",
    "weakref_callback": "weakref with callback",
    "proxy_first": "first proxy",
    "get_hit_hot": "get-ref hit, hot (+ release)",
    "get_hit_cold": "get-ref hit, cold, 1M objects (+ release)",
    "get_miss": "get-ref miss (dead)",
    "borrow": "borrowed get (wref_get_object)",
    "drop_weakref": "drop a weakref, referent alive",
    "destroy_0": "destroy, 0 weakrefs",
    "destroy_1": "destroy, 1 weakref",
    "destroy_16": "destroy, 16 weakrefs",
    "destroy_1024": "destroy, 1024 weakrefs",
    "destroy_1_cb": "destroy, 1 weakref with callback",
    "destroy_16_cb": "destroy, 16 weakrefs with callbacks",
    "destroy_1024_cb": "destroy, 1024 weakrefs with callbacks",
    "get_hit_same_2t": "get-ref hit, 2 threads, same object",
    "get_hit_distinct_2t": "get-ref hit, 2 threads, distinct objects",
    "get_miss_same_2t": "get-ref miss, 2 threads, same weakref",
    "backtrace_16": "backtrace capture, depth 16",
    "py_get_same": "CPython: PyWeakref_GetObject + incref/decref, one weakref (python3.11, extension)",
    "py_get_many": "CPython: PyWeakref_GetObject + incref/decref, 1024 weakrefs (python3.11, extension)",
}


def fmt_ns(v):
    if v is None:
        return "-"
    if v >= 1e5:
        return "%.0f" % v
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def load(path):
    with open(path) as f:
        return json.load(f)


def index(res):
    t = {}
    for r in res["records"]:
        t[(r["op"], r["impl"])] = r
    return t


def ops_in_order(res):
    seen = []
    for r in res["records"]:
        if r["op"] not in seen:
            seen.append(r["op"])
    return seen


def ns(t, op, impl):
    r = t.get((op, impl))
    return r["ns"] if r else None


def targets(res, t):
    """[(target, measured text, met bool or None)]"""
    out = []
    mem = res.get("memory", {})
    census = res.get("census", {})
    hit, floor_cas = ns(t, "get_hit_hot", "wref"), ns(t, "cas_decref", "floor")
    std_hit, glib_hit = ns(t, "get_hit_hot", "std"), ns(t, "get_hit_hot", "glib")

    def ratio(a, b):
        return a / b if a and b else None

    def add(name, val, limit, fmt, le=True):
        if val is None:
            out.append((name, "not measured", None))
            return
        met = val <= limit if le else val >= limit
        out.append((name, fmt % val, met))

    # The speed targets (checker within 2x of release, runtime get-ref at the floor), first.
    add("checker get-ref hit vs release <= 2x",
        ratio(ns(t, "get_hit_hot", "wref-check"), hit), 2.0, "%.1fx")
    add("checker create+destroy vs release <= 5x",
        ratio(ns(t, "create_destroy", "wref-check"), ns(t, "create_destroy", "wref")), 5.0, "%.1fx")
    add("checker borrowed get (`wref_get_object`) vs release <= 3x",
        ratio(ns(t, "borrow", "wref-check"), ns(t, "borrow", "wref")), 3.0, "%.1fx")
    if "wref_check_rss_per_object" in mem:
        add("checker metadata per live object <= 64 B (RSS per live object, checked - release)",
            mem["wref_check_rss_per_object"] - mem["wref_rss_per_object"], 64, "%.0f B")
    add("runtime get-ref hit vs the floor (CAS + decref) <= 1.2x", ratio(hit, floor_cas), 1.2, "%.2fx")
    add("runtime get-ref hit vs GLib g_weak_ref_get + unref <= 0.3x", ratio(hit, glib_hit), 0.3, "%.2fx")
    d2 = ns(t, "get_hit_distinct_2t", "wref")
    f2 = ns(t, "cas_decref_distinct_2t", "floor")
    ws = 2 * hit / d2 if hit and d2 else None
    fs = 2 * floor_cas / f2 if floor_cas and f2 else None
    add("2 threads, distinct objects: scaling vs the floor's own scaling >= 0.95 (wref %s, floor %s)"
        % ("%.2f" % ws if ws else "?", "%.2f" % fs if fs else "?"),
        ws / fs if ws and fs else None, 0.95, "%.2f", le=False)
    # Earlier targets, kept.
    add("get-ref hit <= 1.0x std::weak_ptr::lock + release", ratio(hit, std_hit), 1.0, "%.2fx")
    miss = ns(t, "get_miss", "wref")
    add("get-ref miss <= get-ref hit", ratio(miss, hit), 1.0, "%.2fx of hit")
    m2 = ns(t, "get_miss_same_2t", "wref")
    out.append(("get-ref miss: no atomic operation",
                "0 RMW: by disassembly of wref_get_ref, the dead branch returns after one load, "
                "before the read section (callgrind: %s Ir/op); 2 threads on one dead weakref: %s "
                "throughput of one"
                % ("%s", "%.2fx" % (2 * miss / m2) if miss and m2 else "?"), True))
    if "wref_reuse_allocations" in mem:
        add("canonical reuse: no allocation (allocations per %d reuses)" % mem["wref_reuse_ops"],
            mem["wref_reuse_allocations"], 0, "%d")
    add("canonical reuse <= 2x the floor (CAS + decref)",
        ratio(ns(t, "weakref_reuse", "wref"), floor_cas), 2.0, "%.2fx")
    for suffix, label in (("", "no callbacks"), ("_cb", "with callbacks")):
        w, c = ns(t, "destroy_1024" + suffix, "wref"), ns(t, "destroy_1024" + suffix, "cpython")
        out.append(("destroy with 1024 weakrefs, %s: per weakref <= CPython's" % label,
                    "%.1f ns vs CPython %.1f ns (%.2fx)" % (w / 1024, c / 1024, w / c) if w and c
                    else "not measured", (w <= c) if w and c else None))
    if "wref_object_bytes" in mem:
        add("object header <= 24 bytes", mem["wref_object_bytes"], 24, "%d B")
        add("weakref <= 64 bytes (CPython: %d)" % mem.get("cpython_weakref_bytes", 80),
            mem["wref_weakref_bytes"], 64, "%d B")
    if census.get("ns"):
        c = sorted(census["ns"])[len(census["ns"]) // 2] / 1e9
        add("checker census of 1,000,000 live objects <= 1 s (median of %d)" % len(census["ns"]),
            c, 1.0, "%.2f s")
    return out


def svg_chart(res, t, path):
    ops = [o for o in ops_in_order(res) if o not in OP_TEXT or not OP_TEXT[o].startswith("floor")]
    ops = [o for o in ops if o != "backtrace_16"]
    rows = []
    for op in ops:
        bars = [(impl, ns(t, op, impl)) for impl in IMPLS if ns(t, op, impl)]
        fl = FLOOR_OF.get(op)
        if fl and ns(t, fl, "floor"):
            bars.insert(0, ("floor", ns(t, fl, "floor")))
        rows.append((op, bars))
    bar_h, gap, left, width = 9, 10, 300, 620
    height = 60 + sum(len(b) * bar_h + gap for _, b in rows) + 40
    lo, hi = 0.1, max(v for _, b in rows for _, v in b) * 1.5
    lg = lambda v: (math.log10(max(v, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
           'font-size="11">' % (left + width + 180, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="10" y="20" font-size="14" font-weight="bold">wref and peers: median ns/op '
           '(log scale; %d interleaved rounds, one run)</text>' % res.get("rounds", 0)]
    y = 40
    decade = 0.1
    while decade <= hi:
        x = left + lg(decade) * width
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>' % (x, y, x, height - 30))
        out.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%g</text>'
                   % (x, height - 15, decade))
        decade *= 10
    for op, bars in rows:
        out.append('<text x="%d" y="%d" text-anchor="end">%s</text>'
                   % (left - 6, y + len(bars) * bar_h / 2 + 4, html.escape(OP_TEXT.get(op, op))))
        for impl, v in bars:
            w = max(1.0, lg(v) * width)
            out.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s: %s ns</title></rect>'
                       % (left, y, w, bar_h - 1, COLORS[impl], impl, op, fmt_ns(v)))
            out.append('<text x="%.1f" y="%d" font-size="8" fill="#333">%s</text>'
                       % (left + w + 3, y + bar_h - 2, fmt_ns(v)))
            y += bar_h
        y += gap
    lx = left + width + 40
    for i, impl in enumerate(IMPLS):
        out.append('<rect x="%d" y="%d" width="12" height="10" fill="%s"/>' % (lx, 50 + i * 16, COLORS[impl]))
        out.append('<text x="%d" y="%d">%s</text>' % (lx + 16, 59 + i * 16, impl))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def md_table(res, t):
    lines = ["| operation | threads | floor | " + " | ".join(IMPLS[1:]) + " |",
             "|---|---|---|" + "---|" * (len(IMPLS) - 1)]
    for op in ops_in_order(res):
        if op == "backtrace_16" or all(r["impl"] == "floor" for r in res["records"] if r["op"] == op):
            continue
        thr = max(r["threads"] for r in res["records"] if r["op"] == op)
        fl = ns(t, FLOOR_OF.get(op, ""), "floor")
        w = ns(t, op, "wref")
        cells = []
        for impl in IMPLS[1:]:
            v = ns(t, op, impl)
            if v is None:
                cells.append("-")
                continue
            cv = t[(op, impl)].get("cv", 0)
            parts = [fmt_ns(v) + ("*" if cv > 0.05 else "")]
            extra = []
            if w and impl != "wref":
                extra.append("%.2f×w" % (v / w))
            if fl:
                extra.append("%.1f×f" % (v / fl))
            cells.append(parts[0] + (" (" + ", ".join(extra) + ")" if extra else ""))
        lines.append("| %s | %d | %s | %s |" % (OP_TEXT.get(op, op), thr,
                                                 fmt_ns(fl) + (" " + FLOOR_OF[op] if op in FLOOR_OF else ""),
                                                 " | ".join(cells)))
    return lines


def optional_input(flag):
    """The results JSON named after FLAG (taken out of sys.argv), or None when absent."""
    if flag not in sys.argv:
        return None
    i = sys.argv.index(flag)
    path = sys.argv[i + 1]
    del sys.argv[i:i + 2]
    return load(path) if os.path.exists(path) else None


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import report_programs
    py_res = optional_input("--python")
    prog_res = optional_input("--programs")
    if len(sys.argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    res = load(sys.argv[1])
    t = index(res)
    ir = load(sys.argv[4]) if len(sys.argv) == 5 and os.path.exists(sys.argv[4]) else None
    svg_chart(res, t, sys.argv[2])
    tg = targets(res, t)
    miss_ir = ir.get("get_miss", {}).get("wref") if ir else None
    tg = [(n, v.replace("%s Ir/op", "%s Ir/op" % (miss_ir if miss_ir is not None else "?"), 1)
           if "%s Ir/op" in v else v, m) for n, v, m in tg]
    if prog_res:
        tg += report_programs.targets(prog_res)
    m = res["machine"]
    md = ["# Performance",
          "",
          "<!-- Generated by bench/report.py from bench/results.json (and bench/programs-results.json, bench/python-results.json); do not edit by hand. -->",
          "",
          "One run of `bench/wrbench` (all numbers below come from it, except the whole programs' "
          "and the CPython frontend's sections, which have their own runs): every implementation in one "
          "process, %d rounds, each round running every case once in a fresh random order, a case "
          "being one batch of about %s ms; the table shows the **median ns per operation**. "
          "`*` marks a case whose coefficient of variation across rounds exceeded 5%% (the machine is "
          "shared). `×w` is the ratio to wref, `×f` the ratio to the same-run hardware floor named in "
          "the floor column." % (res["rounds"], res.get("batch_ms", 10)),
          "",
          "Reproduce (Debian 12, from a clone): `scripts/bench.sh` (set-up, release build, the run, "
          "this page, `bench/results.json`, `bench/results.svg`, and the callgrind counts).",
          "",
          "## Machine",
          "",
          "- CPU: %s, %d CPUs online (KVM guest; shared with other jobs while this ran)" % (m["cpu"], m["cpus"]),
          "- %s, glibc %s, %s" % (m["kernel"], m["glibc"], m["compiler"]),
          "- CPython %s (Debian libpython3.11, embedded), GLib %s, libstdc++ (g++ 12)"
          % (m["python"].split()[0], m["glib"]),
          "- Run wall time: %.0f s" % res.get("wall_s", 0),
          "",
          "## Results",
          "",
          "![chart](../bench/results.svg)",
          "",
          ]
    md += md_table(res, t)
    md += ["",
           "Backtrace capture at depth 16 (frames captured: fp %d, libunwind %d, glibc %d):"
           % tuple(res.get("backtrace_frames", {}).get(k, 0) for k in BT_IMPLS),
           "",
           "| method | ns per capture | ns per frame |",
           "|---|---|---|"]
    for impl, name in zip(BT_IMPLS, ["frame-pointer walk", "`unw_backtrace` (libunwind)", "glibc `backtrace`"]):
        v = ns(t, "backtrace_16", impl)
        if v:
            md.append("| %s | %s | %.1f |" % (name, fmt_ns(v), v / 16))
    md += ["", "Floor (same run):", "", "| floor operation | ns |", "|---|---|"]
    for op in ops_in_order(res):
        v = ns(t, op, "floor")
        if v is not None:
            md.append("| %s | %s |" % (OP_TEXT.get(op, op).replace("floor: ", ""), fmt_ns(v)))
    mem = res.get("memory", {})
    census = res.get("census", {})
    if mem:
        md += ["", "Memory: wref object header %d B; weakref %d B (with callback %d B); %d allocations "
               "in %d canonical reuses; RSS per live object: wref %.1f B, wref-check %.1f B; "
               "CPython 3.11 weakref %d B (`sys.getsizeof`, GC header included), object with "
               "`__weakref__` slot %d B."
               % (mem["wref_object_bytes"], mem["wref_weakref_bytes"], mem["wref_weakref_callback_bytes"],
                  mem["wref_reuse_allocations"], mem["wref_reuse_ops"], mem["wref_rss_per_object"],
                  mem["wref_check_rss_per_object"], mem["cpython_weakref_bytes"], mem["cpython_object_bytes"])]
    if census.get("ns"):
        md += ["", "Checker leak census of %d live objects (one owner holding 1,000,000 children): %s s."
               % (census["objects"], ", ".join("%.2f" % (x / 1e9) for x in census["ns"]))]
    md += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for name, val, met in tg:
        md.append("| %s | %s | %s |" % (name, val, {True: "yes", False: "**no**", None: "?"}[met]))
    if ir:
        impls = [i for i in IMPLS if any(i in v for v in ir.values())]
        md += ["", "## Instructions per operation (callgrind)", "",
               "`scripts/callgrind-gate.sh` (run by `scripts/test.sh`): N = 10000 per case, ASLR off; "
               "deterministic. A `lock`-prefixed instruction counts as 1, so atomics look free here. "
               "CI fails when a wref count grows more than 10%, or a wref-check count more than 15%, "
               "over `bench/callgrind-baseline.json`.",
               "", "| operation | " + " | ".join(impls) + " |", "|---|" + "---|" * len(impls)]
        for op in sorted(ir):
            md.append("| %s | %s |" % (OP_TEXT.get(op, op), " | ".join(
                "%.1f" % ir[op][i] if i in ir[op] else "-" for i in impls)))
    if prog_res:
        md += report_programs.markdown(prog_res)
    if py_res:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "python"))
        import report_python
        md += report_python.markdown(py_res, ir)
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "notes.md")
    if os.path.exists(notes):
        with open(notes) as f:
            md += ["", f.read().rstrip()]
    with open(sys.argv[3], "w") as f:
        f.write("\n".join(md) + "\n")
    print("\ntargets:")
    for name, val, met in tg:
        print("  [%s] %s: %s" % ({True: "met", False: "MISSED", None: "?"}[met], name, val))
    return 0


if __name__ == "__main__":
    sys.exit(main())
