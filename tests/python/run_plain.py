#!/usr/bin/env python3
"""run_plain.py: runs a command under wref-check and checks its plain outcome.

usage: run_plain.py [--status N] [--stdout TEXT] [--no-stdout TEXT] [--line REGEX]...
                    [--lines N REGEX]... [--no-line REGEX]... [--env VAR=VALUE]... -- COMMAND...

--status:  the exit status (default 0);
--stdout:  text the program's stdout must contain; --no-stdout: text it must not;
--line:    a regular expression that exactly one line of stderr must match;
--lines:   the same for exactly N lines (a Python frame that is in several stacks);
--no-line: a regular expression that no line of stderr may match.
Used for bad input (a program that is not CPython runs normally, an unsupported interpreter
gets one clear line and runs unchecked) and for the environment wref-check sets."""
import argparse
import os
import re
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--status", type=int, default=0)
    ap.add_argument("--stdout", default=None)
    ap.add_argument("--no-stdout", action="append", default=[])
    ap.add_argument("--line", action="append", default=[])
    ap.add_argument("--lines", action="append", nargs=2, default=[], metavar=("N", "REGEX"))
    ap.add_argument("--no-line", action="append", default=[])
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    env = dict(os.environ)
    for e in a.env:
        k, _, v = e.partition("=")
        env[k] = v
    # A hang guard, not a speed check: CPython's suites take ~5 s under the checker on an idle
    # machine and over 120 s at load 15-25 (a fresh-clone CI run timed out there); ctest's own
    # TIMEOUT for them is 600 s.
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=540)
    sys.stdout.write(proc.stdout)
    sys.stdout.write(proc.stderr)
    errors = []
    if proc.returncode != a.status:
        errors.append(f"exit status {proc.returncode}, expected {a.status}")
    if a.stdout is not None and a.stdout not in proc.stdout:
        errors.append(f"stdout lacks {a.stdout!r}")
    lines = proc.stderr.splitlines() + proc.stdout.splitlines()
    for text in a.no_stdout:
        if text in proc.stdout:
            errors.append(f"stdout has {text!r}")
    for want, pat in [(1, pat) for pat in a.line] + [(int(k), pat) for k, pat in a.lines]:
        n = sum(1 for line in lines if re.search(pat, line))
        if n != want:
            errors.append(f"{n} line(s) match {pat!r}, expected exactly {want}")
    for pat in a.no_line:
        if any(re.search(pat, line) for line in lines):
            errors.append(f"a line matches {pat!r}")
    for e in errors:
        print("run_plain: FAIL:", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
