#!/usr/bin/env python3
"""check_bounded_walk.py: a guard-page fault whose frame chain is a cycle still gets its report.

usage: check_bounded_walk.py --lib LIBWREF_CHECK --depth N -- PROGRAM

Runs PROGRAM (guard_cyclic_frames.c) with the checker preloaded, guard=all and stack_depth=N,
with a 60 s limit: a walk that followed the cycle for ever would hang the handler. Expects
death by SIGSEGV, exactly one use-after-free finding, and its first stack ("the access")
starting at the faulting function, with at least 2 and at most N frames. Prints PASS or FAIL
lines.
"""
import argparse
import glob
import os
import re
import signal
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--depth", type=int, required=True)
    ap.add_argument("cmd", nargs="+")
    a = ap.parse_args()
    fails = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, LD_PRELOAD=a.lib,
                   WREF_CHECK_OPTIONS=f"guard=all:stack_depth={a.depth}:report=text:log_path={tmp}/r")
        try:
            p = subprocess.run(a.cmd, env=env, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            print("FAIL: still running after 60 s (the fault handler's walk did not end)")
            return 1
        text = "".join(open(f).read() for f in glob.glob(f"{tmp}/r.*[0-9]"))
    if p.returncode != -signal.SIGSEGV:
        fails.append(f"exit status {p.returncode}, expected death by SIGSEGV ({-signal.SIGSEGV})")
    kinds = re.findall(r"ERROR: wref-check: ([a-z-]+) on ", text)
    if kinds != ["use-after-free"]:
        fails.append(f"findings {kinds}, expected exactly one use-after-free")
    frames = []
    for line in text.splitlines():
        m = re.match(r"\s+#(\d+) (.*)", line)
        if m:
            if int(m.group(1)) == 0 and frames:
                break   # the next stack
            frames.append(m.group(2))
    first = frames[0] if frames else "missing"
    m = re.match(r"0x[0-9a-f]+ \((.+)\+0x([0-9a-f]+)\)$", first)   # module+offset: the handler does not symbolize
    if m and os.path.basename(a.cmd[0]) == m.group(1):
        # frame 0 is the faulting pc + 1 (as a return address would be)
        out = subprocess.run(["addr2line", "-f", "-e", a.cmd[0], hex(int(m.group(2), 16) - 1)],
                             capture_output=True, text=True).stdout.split("\n")
        first = out[0] if out else first
    if first != "victim_read_with_cyclic_frames":
        fails.append(f"the access's frame #0 is {first}, expected victim_read_with_cyclic_frames")
    if not 2 <= len(frames) <= a.depth:
        fails.append(f"the access's stack has {len(frames)} frame(s), expected 2..{a.depth}")
    for f in fails:
        print("FAIL: " + f)
    if fails:
        print(text + p.stdout + p.stderr)
        return 1
    print(f"PASS: one use-after-free, {len(frames)} frame(s) (stack_depth={a.depth}), death by SIGSEGV")
    return 0


if __name__ == "__main__":
    sys.exit(main())
