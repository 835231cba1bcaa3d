#!/usr/bin/env python3
"""check_census.py BENCH [ARG...] N: the checker's leak census is linear in the leaked objects.

For each shape (chain, tree, roots, cycles) runs `BENCH shape N` and `BENCH shape 4N` (best of
3 rounds each, in one process; the census thread's CPU time) and fails when the 4N census takes
8 times as long as the N census or more. A linear census takes about 4 times as long (up to ~6
when 4N objects miss the caches more); a quadratic one 16 times (the census before this test:
4.6 s at 40,000 separate leaks, 29 s at 80,000). Two sizes a factor 4 apart leave a margin of 2
on each side, which a factor 2 (linear 2-2.7, quadratic 4) did not: one loaded CI run gave
3.93 for a linear census. A failing ratio is measured again, up to ATTEMPTS times in all, each
size keeping its best time: load only ever adds time, a quadratic census fails every attempt.
Census times below 20 ms are too short to compare on a loaded machine; N is then raised (up to
8 times) until both are measurable. The findings go to a scratch file (log_path), checked to
hold the leak report."""
import os
import subprocess
import sys
import tempfile

SHAPES = ("chain", "tree", "roots", "cycles")
# A cycle is its own finding, so the cycles census writes N/2 reports: about 20 times the time
# per object of the other shapes. It starts at N/4 to keep the test short.
START_DIVISOR = {"cycles": 4}
MIN_SECONDS = 0.02
FACTOR = 4        # the larger size is FACTOR * N
LIMIT = 8.0       # fail at this ratio or above: linear ~4, quadratic ~16
ATTEMPTS = 3


def census(bench, shape, n, tmp):
    env = dict(os.environ)
    env["WREF_CHECK_OPTIONS"] = f"log_path={tmp}/report:exitcode=0:print_summary=0"
    out = subprocess.run(bench + [shape, str(n), "3"], env=env, capture_output=True, text=True, timeout=240)
    if out.returncode != 0:
        sys.exit(f"FAIL: {shape} {n}: exit {out.returncode}\n{out.stderr}")
    fields = out.stdout.split()
    if len(fields) != 5 or fields[:3] != ["census", shape, str(n)]:
        sys.exit(f"FAIL: {shape} {n}: unexpected output {out.stdout!r}")
    reports = [f for f in os.listdir(tmp) if f.startswith("report.")]
    text = "".join(open(os.path.join(tmp, f)).read() for f in reports)
    for f in reports:
        os.unlink(os.path.join(tmp, f))
    if "ERROR: wref-check: leak" not in text:
        sys.exit(f"FAIL: {shape} {n}: no leak report in the log\n{text[:2000]}")
    return float(fields[4])   # CPU time: 7 developers share 2 cores


def main():
    bench, n0 = sys.argv[1:-1], int(sys.argv[-1])
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for shape in SHAPES:
            n = max(1, n0 // START_DIVISOR.get(shape, 1))
            while True:
                t1 = census(bench, shape, n, tmp)
                t2 = census(bench, shape, FACTOR * n, tmp)
                if min(t1, t2) >= MIN_SECONDS or n >= 8 * n0:
                    break
                n *= 2
            for attempt in range(1, ATTEMPTS + 1):
                if attempt > 1:   # measure again; each size keeps its best
                    t1 = min(t1, census(bench, shape, n, tmp))
                    t2 = min(t2, census(bench, shape, FACTOR * n, tmp))
                ratio = t2 / max(t1, 1e-6)
                ok = ratio < LIMIT
                print(f"{shape:7} N={n:8} {t1:.4f}s  {FACTOR}N={FACTOR * n:8} {t2:.4f}s  "
                      f"ratio {ratio:.2f} {'ok' if ok else 'FAIL'} (attempt {attempt})", flush=True)
                if ok:
                    break
            failed |= not ok
    if failed:
        sys.exit("FAIL: the census is not linear (4 times the objects should take about 4 times as long)")
    print("PASS")


if __name__ == "__main__":
    main()
