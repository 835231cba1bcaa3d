#!/usr/bin/env python3
"""run_never_ran.py: runs never_ran_cases.py under `wref-check -- PYTHON ...` and asserts the
callback-never-ran outcome at scale and with a thread still running at exit.

usage: run_never_ran.py --tool WREF_CHECK --python PYTHON --modules DIR --case many_ok|many_leak|thread_ok

Every case: the frontend's statistics (verbosity=1) count every callback registered from C
(2,501 for many_leak, 2,500 for many_ok, 2 for thread_ok), so the checker watched them all.
many_ok, thread_ok: no finding, exit status 0.
many_leak: exactly one finding, callback-never-ran on a Victim with 1 hidden reference, exit
status 23; its registration stack is the leaked referent's: PyWeakref_NewRef, then subscribe in
victim_borrow.c (its "@sub_reg" line), and the Python frames case_many (the "@leak_reg" line of
never_ran_cases.py), main, <module>."""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run_python import C, REGISTERED, check_c, markers, parse, same_function  # noqa: E402

P = markers(os.path.join(HERE, "never_ran_cases.py"), r"# @(\w+)")
REGISTRATIONS = {"many_ok": 2500, "many_leak": 2501, "thread_ok": 2}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--modules", required=True)
    ap.add_argument("--case", required=True, choices=sorted(REGISTRATIONS))
    a = ap.parse_args()
    prefix = os.path.join(tempfile.mkdtemp(prefix="wref-never-ran-"), "r")
    cmd = [a.tool, "--option", "verbosity=1", "--option", "log_path=" + prefix,
           "--", a.python, os.path.join(HERE, "never_ran_cases.py"), a.case, a.modules]
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    report = "".join(open(t).read() for t in glob.glob(prefix + ".*"))
    sys.stdout.write(proc.stdout[-2000:] + proc.stderr + report)
    findings = parse(report)
    errors = []
    stats = re.search(r"python frontend: CPython \S+: .* (\d+) callbacks registered from C", proc.stderr)
    if not stats or int(stats.group(1)) != REGISTRATIONS[a.case]:
        errors.append(f"statistics: expected {REGISTRATIONS[a.case]} callbacks registered from C, got "
                      f"{stats.group(1) if stats else 'no statistics line'}")
    if a.case.endswith("_ok"):
        if findings or proc.returncode != 0:
            errors.append(f"clean case: {[f['kind'] for f in findings]}, exit status {proc.returncode}")
    else:
        if proc.returncode != 23:
            errors.append(f"exit status {proc.returncode}, expected 23")
        if len(findings) != 1 or findings[0]["kind"] != "callback-never-ran":
            errors.append(f"expected one callback-never-ran, got {[f['kind'] for f in findings]}")
        else:
            f = findings[0]
            if " on Victim#" not in f["header"] or not f["what"].startswith(
                    "a weakref callback registered from C with PyWeakref_NewRef never ran: its referent, a "
                    "Victim, is still alive at exit; it leaked: at Python exit 1 reference(s)"):
                errors.append(f"header or message: {f['header']} / {f['what']!r}")
            st = f["stacks"].get(REGISTERED)
            if not st:
                errors.append(f"no {REGISTERED!r} stack: {list(f['stacks'])}")
            else:
                check_c(REGISTERED, st["c"], [("PyWeakref_NewRef", None), ("subscribe", C["sub_reg"])], errors)
                want = [("case_many", P["leak_reg"]), ("main", P["main"]), ("<module>", P["module"])]
                got = [(fn, line) for fn, file, line in st["py"] if os.path.basename(file) == "never_ran_cases.py"]
                if len(got) != len(st["py"]) or len(got) != len(want) or \
                        any(not same_function(g[0], e[0]) or g[1] != e[1] for g, e in zip(got, want)):
                    errors.append(f"registration: Python frames {st['py']}, expected {want}")
    for e in errors:
        print("run_never_ran: FAIL:", e)
    if not errors:
        print(f"run_never_ran: ok: {a.case} under {a.python}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
