#!/usr/bin/env python3
"""run_uaf.py: runs victim_uaf's cases (uaf_cases.py) under
`wref-check --option python_watch=all -- PYTHON ...` and asserts the report.

usage: run_uaf.py --tool WREF_CHECK --python PYTHON --modules DIR
                  --case uaf|uaf_incref|uaf_incref_evicted|uaf_decref|uaf_store|uaf_str|uaf_ok [--schema SCHEMA]

uaf: exactly one use-after-free on a Victim, exit status 23, the tombstone's ReferenceError
in the program, and in each stack the C frames from #0 through victim_uaf.c's frame (checker
and victim frames by function and file:line from its "@marker" comments, the interpreter's
frames between them) and the whole Python stack (uaf_cases.py's "# @marker" lines).
uaf_incref: one use-after-free at exit (a Py_INCREF after the free), with the destroy stack.
uaf_incref_evicted: the same finding when the tombstone leaves the quarantine (pushed out by
70,000 newer ones: the engine heap's count bound), not at exit: run with halt_on_error=1, the
process stops there, before the program's last line.
uaf_decref: the same shape, the use a lone Py_DECREF (the tombstone's dealloc: no exception).
uaf_store: uaf's report, its own Python frames, and proof that an object was freed while the
checker stored the use's Python stack (the fill's names in CPython's type cache, a nested store
refused: the statistics line); a run still going after STORE_TIMEOUT seconds fails as hung.
uaf_str: uaf's report on a str item freed early in the run (a verdict on str made while the
interpreter readied its types must not hide it: wide.c).
With --schema, uaf's JSON report must match docs/report-schema.json and carry the same Python
frames as the text report.
uaf_ok: no finding, exit status 0, and the mode's statistics line showing objects tombstoned."""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run_python import PY, check_json, is_interp, markers, parse, same_function  # noqa: E402

C = markers(os.path.join(HERE, "victim_uaf.c"), r"@(\w+) \*/")
P = markers(os.path.join(HERE, "uaf_cases.py"), r"# @(\w+)")
MAIN = [("main", P["main"]), ("<module>", P["module"])]
DESTROYED = "destroyed (the last reference dropped)"
EXPECT = {
    "where": ([("freed_object_getattro", None), PY, ("use_after_list_clear", C["uaf_use"])],
              [("case", P["call"])] + MAIN),
    DESTROYED: ([("py_object_free_hook", None), PY, ("use_after_list_clear", C["uaf_call"])],
                [("drop", P["drop"]), ("<lambda>", P["call"]), ("case", P["call"])] + MAIN),
}
MAIN_DECREF = [("main", P["main_decref"]), ("<module>", P["module"])]
EXPECT_DECREF = {   # the tombstone's dealloc, tail-called by _Py_Dealloc (no frame) from the victim's Py_DECREF
    "where": ([("freed_object_dealloc", None), (("Py_DECREF", "_Py_DECREF"), None),   # inlined from object.h
               ("decref_after_list_clear", C["decref_use"])],
              [("case_decref", P["decref"])] + MAIN_DECREF),
    DESTROYED: ([("py_object_free_hook", None), PY, ("decref_after_list_clear", C["decref_call"])],
                [("drop", P["drop"]), ("<lambda>", P["decref"]), ("case_decref", P["decref"])] + MAIN_DECREF),
}
MAIN_STR = [("main", P["main_str"]), ("<module>", P["module"])]
EXPECT_STR = {   # uaf's shape on a str, freed early in the run
    "where": ([("freed_object_getattro", None), PY, ("use_after_list_clear", C["uaf_use"])],
              [("case_str", P["call_str"])] + MAIN_STR),
    DESTROYED: ([("py_object_free_hook", None), PY, ("use_after_list_clear", C["uaf_call"])],
                [("drop", P["drop"]), ("<lambda>", P["call_str"]), ("case_str", P["call_str"])] + MAIN_STR),
}
MAIN_STORE = [("main", P["main_store"]), ("<module>", P["module"])]
EXPECT_STORE = {
    "where": ([("freed_object_getattro", None), PY, ("pass_after_list_clear", C["pass_use"])],
              [("use", P["use"]), ("case_store", P["call_store"])] + MAIN_STORE),
    DESTROYED: ([("py_object_free_hook", None), PY, ("pass_after_list_clear", C["pass_call"])],
                [("drop_and_fill", P["drop_fill"]), ("<lambda>", P["call_store"]), ("case_store", P["call_store"])] +
                MAIN_STORE),
}
# uaf_store: a run that does not end in this time hung (the self-deadlock of a store of a Python
# stack reached again from inside itself, pystack.c); a normal run takes 3-5 s in the release tree
# and 22-31 s in the TSan tree at load 18; ctest's limit is 120 s
STORE_TIMEOUT = 100


def check_c(label, frames, expect, errors):
    i = 0
    for e in expect:
        if e == PY:
            n = 0
            while i < len(frames) and is_interp(frames[i][3]):
                i, n = i + 1, n + 1
            if not n:
                errors.append(f"{label}: expected interpreter frames at #{i}, got {frames[i:i + 1]}")
                return
            continue
        fn, line = e
        got = frames[i] if i < len(frames) else None
        if not got or got[0] not in (fn if isinstance(fn, tuple) else (fn,)) or (line and (os.path.basename(got[1] or "") != "victim_uaf.c" or got[2] != line)):
            errors.append(f"{label}: #{i} expected {fn}" + (f" victim_uaf.c:{line}" if line else "") + f", got {got}")
            return
        i += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--modules", required=True)
    ap.add_argument("--case", required=True, choices=["uaf", "uaf_incref", "uaf_incref_evicted", "uaf_decref", "uaf_store",
                                                             "uaf_str", "uaf_ok"])
    ap.add_argument("--schema")
    a = ap.parse_args()
    prefix = os.path.join(tempfile.mkdtemp(prefix="wref-uaf-"), "r")
    cmd = [a.tool, "--option", "python_watch=all", "--option", "verbosity=1", "--option", "log_path=" + prefix,
           "--option", "report=text,json"] + (["--option", "halt_on_error=1"] if a.case == "uaf_incref_evicted" else []) + [
           "--", a.python, os.path.join(HERE, "uaf_cases.py"), a.case, a.modules]
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              timeout=STORE_TIMEOUT if a.case == "uaf_store" else 120)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(errors="replace")
        sys.stdout.write(out)
        print(f"run_uaf: FAIL: {a.case}: no exit after {e.timeout} s: hung (with uaf_store: the checker's store of a "
              "Python stack entered again from the free it caused, a self-deadlock)")
        return 1
    report = "".join(open(t).read() for t in glob.glob(prefix + ".*") if not t.endswith(".json"))
    sys.stdout.write(proc.stdout + proc.stderr + report)
    findings = parse(report)
    errors = []
    stats = re.search(r"python_watch=all: (\d+) frees seen, (\d+) objects tombstoned", proc.stderr)
    if a.case != "uaf_incref_evicted" and (not stats or int(stats.group(2)) < 1):   # halted: no exit statistics
        errors.append("the python_watch=all statistics line is missing or shows no tombstoned object")
    if a.case == "uaf_ok":
        if findings:
            errors.append(f"clean case: {len(findings)} finding(s)")
        if proc.returncode != 0 or "workload" not in proc.stdout:
            errors.append(f"clean case: exit status {proc.returncode}, or the workload did not finish")
    elif a.case in ("uaf_incref", "uaf_incref_evicted"):
        destroyed = ([("py_object_free_hook", None), PY, ("incref_after_list_clear", C["late_call"])],
                     [("drop", P["drop"]), ("<lambda>", P["incref"]), ("case_incref", P["incref"]),
                      ("main", P["main_" + a.case[4:]]), ("<module>", P["module"])])
        if a.case == "uaf_incref_evicted" and ("incref done" not in proc.stdout or "churned" in proc.stdout):
            errors.append("the late Py_INCREF was not reported when its tombstone left the quarantine "
                          "(during the churn; halt_on_error=1 stops there)")
        if proc.returncode != 23:
            errors.append(f"exit status {proc.returncode}, expected 23")
        if len(findings) != 1 or findings[0]["kind"] != "use-after-free":
            errors.append(f"expected one use-after-free finding, got {[f['kind'] for f in findings]}")
        else:
            f = findings[0]
            if " on Victim#" not in f["header"] or \
                    not f["what"].startswith("1 reference(s) to a Victim were taken after it was freed"):
                errors.append(f"header or message: {f['header']} / {f['what']!r}")
            st = f["stacks"].get(DESTROYED)
            if not st or [k for k in f["stacks"] if f["stacks"][k]["c"]] != [DESTROYED]:
                errors.append(f"stacks: {list(f['stacks'])}, expected only {DESTROYED!r}")
            else:
                check_c(DESTROYED, st["c"], destroyed[0], errors)
                got = [(fn, line) for fn, file, line in st["py"]]
                if len(got) != len(destroyed[1]) or \
                        any(not same_function(g[0], e[0]) or g[1] != e[1] for g, e in zip(got, destroyed[1])):
                    errors.append(f"destroyed: Python frames {st['py']}, expected {destroyed[1]}")
    else:
        expect = {"uaf_store": EXPECT_STORE, "uaf_decref": EXPECT_DECREF, "uaf_str": EXPECT_STR}.get(a.case, EXPECT)
        op = "Py_DECREF (the count reached 0 again)" if a.case == "uaf_decref" else "attribute read"
        tname = "str" if a.case == "uaf_str" else "Victim"
        if a.case == "uaf_store":
            # the free inside the store happened (the fill kept names in the cache, and a store
            # was refused as nested): else this run did not test what it names
            kept = re.search(r"type cache entries held by the fill's names: (\d+)", proc.stdout)
            nested = re.search(r"python frontend: \d+ Python stacks stored, (\d+) not", proc.stderr)
            if not kept or int(kept.group(1)) < 1:
                errors.append("the fill left no name in CPython's type cache")
            if not nested or int(nested.group(1)) < 1:
                errors.append("no Python stack store was refused as nested: no object was freed inside a store")
        if proc.returncode != 23:
            errors.append(f"exit status {proc.returncode}, expected 23")
        if a.case == "uaf_decref":   # a dealloc leaves no exception: the program goes on
            if "after the late Py_DECREF" not in proc.stdout or "ReferenceError" in proc.stdout:
                errors.append("the late Py_DECREF raised, or the program did not go on after it")
        elif f"ReferenceError: wref-check: attribute read of a freed {tname} (use after free)" not in proc.stdout:
            errors.append("the tombstone's ReferenceError did not reach the program")
        if len(findings) != 1 or findings[0]["kind"] != "use-after-free":
            errors.append(f"expected one use-after-free finding, got {[f['kind'] for f in findings]}")
        else:
            f = findings[0]
            if f" on {tname}#" not in f["header"]:
                errors.append(f"header does not name the {tname}: {f['header']}")
            if a.case == "uaf_decref" and f.get("summary") != "use-after-free in decref_after_list_clear":
                errors.append(f"SUMMARY: {f.get('summary')!r}, expected the victim's function (not the inlined "
                              "Py_DECREF of CPython's header)")
            if not f["what"].startswith(op + f" of a {tname} that was freed: a pointer that held no reference"):
                errors.append(f"message: {f['what']!r}")
            if list(f["stacks"]) != list(expect):
                errors.append(f"stacks: {list(f['stacks'])}, expected {list(expect)}")
            for label, (ce, pe) in expect.items():
                st = f["stacks"].get(label)
                if not st:
                    continue
                check_c(label, st["c"], ce, errors)
                got = [(fn, line) for fn, file, line in st["py"] if os.path.basename(file) == "uaf_cases.py"]
                if len(got) != len(st["py"]) or len(got) != len(pe) or \
                        any(not same_function(g[0], e[0]) or g[1] != e[1] for g, e in zip(got, pe)):
                    errors.append(f"{label}: Python frames {st['py']}, expected {pe}")
            if a.schema:
                check_json(prefix, a.schema, f, errors)
    for e in errors:
        print("run_uaf: FAIL:", e)
    if not errors:
        print(f"run_uaf: ok: {a.case} under {a.python}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
