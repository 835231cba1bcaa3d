#!/usr/bin/env python3
"""check_fault_stack.py: the stack of a guard-page fault report, frame by frame.

usage: check_fault_stack.py --lib LIBWREF_CHECK --tool WREF_CHECK --where "T1 T2 ..." -- PROGRAM

Runs PROGRAM with the checker preloaded and guard=all (report=text,json), expects death by
SIGSEGV and exactly one use-after-free, symbolizes the JSON report with `wref-check report
--format=symbolize`, and checks the fault's "where" stack from frame #0: each token Ti
matches one frame by function name, or module:NAME by module file name (NAME* a prefix);
a token ending in '+' matches one or more frames. The tokens must reach main; every frame
after main must be the C library's start-up (libc, or _start in the program).
"""
import argparse
import fnmatch
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile


def frame_matches(tok, fr):
    if tok.startswith("module:"):
        return fr["module"] is not None and fnmatch.fnmatchcase(os.path.basename(fr["module"]), tok[7:])
    return fr.get("function") == tok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--tool", required=True)
    ap.add_argument("--where", required=True)
    ap.add_argument("cmd", nargs="+")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, LD_PRELOAD=a.lib, WREF_CHECK_OPTIONS=f"guard=all:report=text,json:log_path={tmp}/r")
        p = subprocess.run(a.cmd, env=env, capture_output=True, text=True)
        text = "".join(open(f).read() for f in glob.glob(f"{tmp}/r.*[0-9]"))
        if p.returncode != -signal.SIGSEGV:
            print(f"FAIL: exit {p.returncode}, wanted death by SIGSEGV\n{p.stderr}{text}")
            return 1
        js = glob.glob(f"{tmp}/r.*.json")
        out = subprocess.run([a.tool, "report", "--format=symbolize"] + js, capture_output=True, text=True)
        try:
            doc = json.loads(out.stdout)
        except ValueError:
            print(f"FAIL: symbolize gave no JSON: {out.stderr}")
            return 1
        findings = doc["findings"]
        if [f["kind"] for f in findings] != ["use-after-free"]:
            print(f"FAIL: findings {[f['kind'] for f in findings]}, wanted one use-after-free\n{text}")
            return 1
        stack = findings[0]["stacks"][0]
        frames = stack["frames"]
        shown = [fr.get("function") or "module:" + os.path.basename(fr["module"] or "?") for fr in frames]
        print("where:", " ".join(shown))
        toks = a.where.split()
        i = 0
        for tok in toks:
            many = tok.endswith("+")
            tok = tok.rstrip("+")
            if i >= len(frames) or not frame_matches(tok, frames[i]):
                print(f"FAIL: frame #{i} is {shown[i] if i < len(frames) else 'missing'}, wanted {tok}")
                return 1
            i += 1
            while many and i < len(frames) and frame_matches(tok, frames[i]):
                i += 1
        if toks[-1] != "main":
            print("FAIL: the expectation must end at main")
            return 1
        for j in range(i, len(frames)):
            fr = frames[j]
            if not (frame_matches("module:libc.so*", fr) or fr.get("function") == "_start"):
                print(f"FAIL: frame #{j} after main is {shown[j]}, not C start-up")
                return 1
        if stack["label"] != "where":
            print(f"FAIL: first stack is {stack['label']}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
