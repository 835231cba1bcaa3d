#!/usr/bin/env python3
"""check_inline.py: the inline frames of a checker report agree with `addr2line -i`, and one
bug built several ways has one fingerprint.

usage: check_inline.py --lib LIBWREF_CHECK --tool WREF_CHECK EXE [EXE...]

Each EXE is the same victim source built differently (-O2 with inlining, -O2 without frame
pointers, -O0). Each runs with the checker preloaded (report=text,json). For every frame of
every stack that lies in EXE, the consecutive frames sharing one pc must be exactly what
`addr2line -f -i -e EXE <offset-1>` prints, in order: every inlined level, each function at its
own file:line. Then `wref-check report --format=json` must give the same fingerprint for all
the EXEs, and at least one EXE must show an inlined frame (else the test proves nothing).
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

FRAME = re.compile(r"^    #(\d+) (0x[0-9a-f]+) in (\S+) (\S+):(\d+) \((\S+)\+(0x[0-9a-f]+)\)$")


def addr2line(exe, off):
    out = subprocess.run(["addr2line", "-f", "-i", "-e", exe, hex(off - 1)], capture_output=True,
                         text=True, check=True).stdout.split("\n")
    frames = []
    for fn, loc in zip(out[0::2], out[1::2]):
        path, _, line = loc.rpartition(":")
        line = line.split()[0]   # "12 (discriminator 1)"
        frames.append((fn, os.path.basename(path), int(line)))
    return frames


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--tool", required=True)
    ap.add_argument("exes", nargs="+")
    args = ap.parse_args()
    failures = []
    fingerprints = {}
    inlined_seen = 0
    for exe in args.exes:
        name = os.path.basename(exe)
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, LD_PRELOAD=args.lib,
                       WREF_CHECK_OPTIONS=f"report=text,json:log_path={tmp}/r")
            proc = subprocess.run([exe], env=env, capture_output=True, text=True)
            texts = glob.glob(f"{tmp}/r.*[0-9]")
            if proc.returncode != 23 or len(texts) != 1:
                failures.append(f"{name}: exit {proc.returncode}, reports {texts}\n{proc.stderr}")
                continue
            text = open(texts[0]).read()
            # group the frames of each stack by pc, in order
            groups, prev = [], None
            for line in text.splitlines():
                m = FRAME.match(line)
                if not m:
                    prev = None
                    continue
                _, pc, fn, path, ln, module, off = m.groups()
                if module != name:
                    prev = None
                    continue
                if prev is not None and prev[0] == pc:
                    prev[2].append((fn, os.path.basename(path), int(ln)))
                else:
                    prev = (pc, int(off, 16), [(fn, os.path.basename(path), int(ln))])
                    groups.append(prev)
            if not groups:
                failures.append(f"{name}: no frame in the program itself\n{text}")
            for pc, off, got in groups:
                want = addr2line(exe, off)
                inlined_seen += len(got) > 1
                if got != want:
                    failures.append(f"{name}: frames at {pc} (+{off:#x}):\n  report:    {got}\n"
                                    f"  addr2line: {want}")
            out = subprocess.run([args.tool, "report", "--format=json", "--exit-zero"] +
                                 glob.glob(f"{tmp}/r.*.json"), capture_output=True, text=True)
            try:
                doc = json.loads(out.stdout)
                fps = sorted({f["fingerprint"] for f in doc["findings"]})
            except (ValueError, KeyError, TypeError) as e:
                failures.append(f"{name}: report tool output unreadable ({e}): {out.stdout[:500]} {out.stderr}")
                continue
            fingerprints[name] = fps
            print(f"{name}: {len(groups)} pcs in the program, fingerprints {fps}")
    if len({tuple(v) for v in fingerprints.values()}) > 1:
        failures.append(f"fingerprints differ between builds: {fingerprints}")
    if inlined_seen == 0:
        failures.append("no build showed an inlined frame: the inline chain was not inlined")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
