#!/usr/bin/env python3
"""fake_census.py EXPONENT SHAPE N ROUNDS: stands in for census_bench, so that census.detects_*
can check check_census.py itself: prints census_bench's line with a CPU time of
0.03 * (N / 100000) ** EXPONENT seconds and writes a leak report where log_path says. With
EXPONENT 2 (a quadratic census) check_census.py must fail; with 1 it must pass."""
import os
import sys

exponent, shape, n = float(sys.argv[1]), sys.argv[2], int(sys.argv[3])
seconds = 0.03 * (n / 100000) ** exponent
opts = dict(kv.split("=", 1) for kv in os.environ["WREF_CHECK_OPTIONS"].split(":"))
with open(f"{opts['log_path']}.{os.getpid()}", "w") as log:
    log.write(f"==1==ERROR: wref-check: leak of {n} object(s)\n")
print(f"census {shape} {n} {seconds:.4f} {seconds:.4f}")
