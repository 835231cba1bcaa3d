#!/usr/bin/env python3
"""check_flush_timeout.py: flush_on_signal whose exit work hangs (flush_timeout.c).

usage: check_flush_timeout.py --lib LIBWREF_CHECK --exe FLUSH_TIMEOUT [--spin]

Asserts: the process dies by SIGTERM (as the shell sees it, 143), within 10 s; the checker
says that its exit work timed out; the program's own SIGALRM handler ran (the checker did not
take SIGALRM); the finding made before the signal is in the text and JSON reports.
--spin runs `FLUSH_TIMEOUT spin`: the exit work hangs in a loop that calls nothing and the
program arms no SIGALRM (so that check is left out); everything else is asserted as above.
"""
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time


def main(argv):
    lib = argv[argv.index("--lib") + 1]
    exe = argv[argv.index("--exe") + 1]
    spin = "--spin" in argv
    errors = []
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, LD_PRELOAD=lib,
                   WREF_CHECK_OPTIONS=f"flush_on_signal=1:report=text,json:log_path={d}/r")
        t0 = time.monotonic()
        try:
            p = subprocess.run([exe] + (["spin"] if spin else []), env=env, capture_output=True, text=True,
                               timeout=30)
        except subprocess.TimeoutExpired as e:   # killed by subprocess.run
            print(f"FAIL: still running after 30 s (the timeout did not cut the exit work short)\n{e.stderr}")
            return 1
        took = time.monotonic() - t0
        if p.returncode != -signal.SIGTERM:
            errors.append(f"exit status {p.returncode}, expected death by SIGTERM ({-signal.SIGTERM})")
        if took > 10:
            errors.append(f"took {took:.1f} s")
        if "WARNING: wref-check: flush_on_signal: the exit work did not finish in 2 s (flush_timeout)" not in p.stderr:
            errors.append("no timeout warning on stderr")
        if not spin and "program's SIGALRM handler ran" not in p.stdout:
            errors.append("the program's SIGALRM handler did not run")
        texts = [f for f in glob.glob(f"{d}/r.*") if not f.endswith(".json")]
        text = "".join(open(f).read() for f in texts)
        if "ERROR: wref-check: use-after-free" not in text:
            errors.append("the finding made before the signal is not in the text report")
        docs = glob.glob(f"{d}/r.*.json")
        try:
            kinds = [f["kind"] for f in json.load(open(docs[0]))["findings"]] if len(docs) == 1 else None
        except ValueError as e:
            kinds = f"unparsable: {e}"
        if kinds != ["use-after-free"]:
            errors.append(f"JSON findings {kinds}")
        print(f"exit {p.returncode} after {took:.1f} s")
    for e in errors:
        print("FAIL:", e)
    if errors:
        print(p.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
