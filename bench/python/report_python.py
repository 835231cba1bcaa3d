"""report_python.py: the "CPython frontend" section of docs/performance.md, from a
bench/python/pybench.py run (bench/python-results.json) and the gate's callgrind counts.
Imported by bench/report.py; everything it prints comes from those two files and
bench/python/notes.md."""
import os

CONFIG_TEXT = {"plain": "plain", "checker": "wref-check", "pymalloc": "`PYTHONMALLOC=debug`",
               "memcheck": "valgrind memcheck"}
CONFIGS = ["plain", "checker", "pymalloc", "memcheck"]
TARGET_GET = 3.0
TARGET_SUITE = 1.5


def rows(res, work):
    by = {}
    for r in res["summary"]:
        if r["work"] == work:
            by.setdefault(r["interp"], {})[r["config"]] = r
    order = [i["tag"] for i in res["interps"]]
    return [(tag, by[tag]) for tag in order if tag in by]


def version_of(res, tag):
    for i in res["interps"]:
        if i["tag"] == tag:
            return i["version"]
    return "?"


def cell(row, field, plain=False):
    if not row or row.get(field) is None:
        return "-"
    v = row[field]
    text = ("%.1f" % v) if v < 1000 else ("%.0f" % v)
    r = row.get(field + "_ratio")
    if plain or r is None:
        return text
    return "%s (%.2f×)" % (text, r)


def interp_name(res, tag):
    v = version_of(res, tag)
    if tag.startswith("debian-"):
        return "Debian python%s (%s)" % (tag.split("-", 1)[1], v)
    return "pyenv %s" % v


def markdown(res, ir):
    md = ["", "## CPython frontend (`wref-check -- python3 ...`)", ""]
    loads = [r["load"][0] for r in res["runs"]] or [0.0]
    md.append("One run of `bench/python/pybench.py` (`scripts/bench.sh`, %s%s; every timing of this "
              "section comes from it, the instruction counts from the callgrind gate of the same "
              "`bench.sh` run). The processes were interleaved: each round starts each (workload, "
              "interpreter, configuration) process once, in a fresh random order. "
              "Load average (1, 5, 15 min) %s at the start and %s at the end, on %d CPUs, while other "
              "developers were building and testing on the same machine (the 1-minute load average "
              "after each process: %.1f to %.1f, median %.1f); the run took %.0f s."
              % (res["date"], ", commit %s" % res["commit"] if res.get("commit") else "",
                 ", ".join("%.1f" % x for x in res["load_start"]),
                 ", ".join("%.1f" % x for x in res["load_end"]), res["cpus"],
                 min(loads), max(loads), sorted(loads)[len(loads) // 2], res["wall_s"]))
    md += ["",
           "Configurations: **plain**; **wref-check** (`wref-check --verbosity=1 --`; its exit "
           "statistics count the borrows it recorded); **`PYTHONMALLOC=debug`** (CPython's debug "
           "allocator hooks, no checker); **valgrind memcheck** (%s)."
           % ("with CPython's suppressions, `--suppressions=%s` from Debian's python3 package"
              % res["memcheck_supp"] if res.get("memcheck_supp") else "no CPython suppressions file found"),
           ""]

    # --- PyWeakref_GetObject ---
    get = rows(res, "get")
    if get:
        md += ["### One `PyWeakref_GetObject` call from an extension module", "",
               "`bench/python/pyget.c` (the module `wref_pybench`, built per interpreter): a C loop of "
               "%d calls of `o = PyWeakref_GetObject(ref); Py_INCREF(o); Py_DECREF(o);`, timed inside "
               "the process; %d batches per process after a warm-up, the median batch per process, "
               "then the median over %d rounds. **same**: one weakref again and again; **many**: 1024 "
               "weakrefs to distinct live objects in turn, from the same call site (the checker "
               "answers both from its per-thread table of objects known borrowed at the thread's "
               "last site, one entry read per call; \"many\" spreads the reads over 32 KB of it). Nanoseconds of the thread's CPU time per "
               "call (`CLOCK_THREAD_CPUTIME_ID`; on this shared machine wall time also counts the "
               "time the process waited for a CPU); in parentheses the median of the same-round "
               "ratios to plain." % (res["n"], res["batches"], res["rounds"]),
               "",
               "| interpreter | case | plain | wref-check | `PYTHONMALLOC=debug` | memcheck | borrows recorded |",
               "|---|---|---|---|---|---|---|"]
        for tag, by in get:
            for case in ("same", "many"):
                f = case + "_cpu"
                md.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                    interp_name(res, tag), case, cell(by.get("plain"), f, True), cell(by.get("checker"), f),
                    cell(by.get("pymalloc"), f), cell(by.get("memcheck"), f),
                    by.get("checker", {}).get("borrows", "-") if case == "same" else ""))
        md += ["", "Wall time per call, same run (ns, median; ratio to plain):", "",
               "| interpreter | case | plain | wref-check | `PYTHONMALLOC=debug` | memcheck |",
               "|---|---|---|---|---|---|"]
        for tag, by in get:
            for case in ("same", "many"):
                f = case + "_wall"
                md.append("| %s | %s | %s | %s | %s | %s |" % (
                    interp_name(res, tag), case, cell(by.get("plain"), f, True), cell(by.get("checker"), f),
                    cell(by.get("pymalloc"), f), cell(by.get("memcheck"), f)))
        mem_err = [by["memcheck"].get("memcheck_errors") for _, by in get if "memcheck" in by]
        if mem_err:
            md += ["", "memcheck reported %s error(s) in these runs (at most, per interpreter)."
                   % ", ".join(str(e) for e in mem_err if e is not None)]

    # --- test_weakref ---
    suite = rows(res, "test_weakref")
    if suite:
        md += ["", "### CPython's test_weakref", "",
               "`python -m test test_weakref`, wall time of the whole process (s), median of %d rounds "
               "(memcheck: one run, in the first round); in parentheses the median of the same-round "
               "ratios to plain. Debian's python3.11 runs its libpython3.11-testsuite; a pyenv build "
               "its own `lib/python3.X/test`." % res["suite_rounds"],
               "",
               "| interpreter | plain | wref-check | `PYTHONMALLOC=debug` | memcheck | result | borrows recorded |",
               "|---|---|---|---|---|---|---|"]
        for tag, by in suite:
            ok = all(r.get("suite_ok") for r in by.values())
            mc = by.get("memcheck")
            md.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                interp_name(res, tag), cell(by.get("plain"), "wall_s", True), cell(by.get("checker"), "wall_s"),
                cell(by.get("pymalloc"), "wall_s"), cell(mc, "wall_s") +
                (", %s errors" % mc["memcheck_errors"] if mc and "memcheck_errors" in mc else ""),
                "SUCCESS in every run" if ok else "**not SUCCESS** (see the run's python-logs)",
                by.get("checker", {}).get("borrows", "0 (the frontend never started)")))
        if any(by.get("plain", {}).get("cpu_s") is not None for _, by in suite):
            md += ["", "The same processes' CPU time (user + system, s; `getrusage`), which does not "
                   "count the time a process waited for a CPU:", "",
                   "| interpreter | plain | wref-check | `PYTHONMALLOC=debug` | memcheck |",
                   "|---|---|---|---|---|"]
            for tag, by in suite:
                md.append("| %s | %s | %s | %s | %s |" % (
                    interp_name(res, tag), cell(by.get("plain"), "cpu_s", True), cell(by.get("checker"), "cpu_s"),
                    cell(by.get("pymalloc"), "cpu_s"), cell(by.get("memcheck"), "cpu_s")))

    # --- targets ---
    md += ["", "### Targets (issue 12)", "", "| target | measured | met |", "|---|---|---|"]
    for tag, by in suite:
        r = by.get("checker", {}).get("wall_s_ratio")
        c = by.get("checker", {}).get("cpu_s_ratio")
        if r is not None:
            md.append("| test_weakref under the checker <= %.1f× plain (wall time), %s | %.2f×%s | %s |"
                      % (TARGET_SUITE, interp_name(res, tag), r, "" if c is None else " (CPU time %.2f×)" % c,
                         "yes" if r <= TARGET_SUITE else "**no**"))
    for tag, by in get:
        for case in ("same", "many"):
            r = by.get("checker", {}).get(case + "_cpu_ratio")
            if r is not None:
                md.append("| a `PyWeakref_GetObject` call under the checker <= %.0f× plain, %s, %s | %.2f× | %s |"
                          % (TARGET_GET, interp_name(res, tag), case, r, "yes" if r <= TARGET_GET else "**no**"))
    if ir:
        cg = [(op, ir[op]) for op in ("py_get_same", "py_get_many") if op in ir]
        if cg:
            md += ["", "Callgrind (the gate, `scripts/callgrind-gate.sh`, Debian's python3.11, N = 10000): "
                   + "; ".join("%s: %.0f Ir per call under the checker, %.0f plain (%.1f×)"
                               % (op.replace("py_get_", ""), v.get("wref-check", 0), v.get("cpython", 0),
                                  v.get("wref-check", 0) / v["cpython"] if v.get("cpython") else 0)
                               for op, v in cg)
                   + ". The checked counts are gated (15%) like the checker's other counts."]
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "notes.md")
    if os.path.exists(notes):
        with open(notes) as f:
            md += ["", f.read().rstrip()]
    return md
