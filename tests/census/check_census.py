#!/usr/bin/env python3
"""check_census.py BENCH N: the checker's leak census is linear in the leaked objects.

For each shape (chain, tree, roots, cycles) runs `BENCH shape N` and `BENCH shape 2N` (best of
3 rounds each, in one process; the census thread's CPU time) and fails when the 2N census takes 3.3 times as long as the N
census or more: a linear census doubles (a little more: 2N objects miss the caches more),
a quadratic one quadruples (the census before this test: 4.6 s at 40,000 separate leaks,
29 s at 80,000). Census times below 20 ms
are too short to compare on a loaded machine; N is then raised (up to 8 times) until both are
measurable. The findings go to a scratch file (log_path), checked to hold the leak report."""
import os
import subprocess
import sys
import tempfile

SHAPES = ("chain", "tree", "roots", "cycles")
MIN_SECONDS = 0.02


def census(bench, shape, n, tmp):
    env = dict(os.environ)
    env["WREF_CHECK_OPTIONS"] = f"log_path={tmp}/report:exitcode=0:print_summary=0"
    out = subprocess.run([bench, shape, str(n), "3"], env=env, capture_output=True, text=True, timeout=240)
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
    bench, n0 = sys.argv[1], int(sys.argv[2])
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for shape in SHAPES:
            n = n0
            while True:
                t1 = census(bench, shape, n, tmp)
                t2 = census(bench, shape, 2 * n, tmp)
                if min(t1, t2) >= MIN_SECONDS or n >= 8 * n0:
                    break
                n *= 2
            ratio = t2 / max(t1, 1e-6)
            ok = ratio < 3.3
            print(f"{shape:7} N={n:8} {t1:.4f}s  2N={2 * n:8} {t2:.4f}s  ratio {ratio:.2f} {'ok' if ok else 'FAIL'}")
            failed |= not ok
    if failed:
        sys.exit("FAIL: the census is not linear (doubling N should about double its time)")
    print("PASS")


if __name__ == "__main__":
    main()
