#!/usr/bin/env python3
"""run_faults.py: allocation failure at every index of the checker's own allocations.

usage: run_faults.py --shim LIBFAILINJECT --lib LIBWREF_CHECK --victims DIR [--max N]

For each scenario (a victim program and the findings it must produce), a first run counts the
allocations libwref-check makes (the failinject shim counts only calls made from inside it:
records, stack depot, report and JSON buffers, symbolizer caches, census, and the runtime's
object memory). Then the scenario runs once per index i, with allocation i failing. Each run
must:
  - not die by a signal (the checker never crashes on out-of-memory);
  - produce every expected finding, or say why not: a one-line 'wref-check: WARNING' about
    memory, an '(out of memory: report cut short)' finding line, or the program's own
    VCHECK failure when the runtime handed it WREF_ERR_MEMORY;
  - leave a JSON report that parses, when it leaves one.
Prints the number of fault points exercised per scenario.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

SCENARIOS = [
    ("dangling_borrow", ["dangling-borrow"]),
    ("use_after_free", ["use-after-free"]),
    ("leak", ["leak"]),
    ("callback_never_ran", ["callback-never-ran", "leak"]),
]


def run(exe, lib, shim, at, count_file, work):
    env = dict(os.environ, LD_PRELOAD=f"{lib}:{shim}", FAILINJECT_AT=str(at),
               WREF_CHECK_OPTIONS=f"report=text,json:log_path=stderr")
    if count_file:
        env["FAILINJECT_COUNT"] = count_file
    return subprocess.run([exe], env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


def main(argv):
    shim = argv[argv.index("--shim") + 1]
    lib = argv[argv.index("--lib") + 1]
    victims = argv[argv.index("--victims") + 1]
    limit = int(argv[argv.index("--max") + 1]) if "--max" in argv else 10 ** 9
    errors, total = [], 0
    for name, kinds in SCENARIOS:
        exe = os.path.join(victims, f"victim_{name}_preload")
        work = tempfile.mkdtemp(prefix="wref-faults-")
        count_file = os.path.join(work, "count")
        p = run(exe, lib, shim, 0, count_file, work)
        n = int(open(count_file).read().split()[0]) if os.path.exists(count_file) else 0
        if p.returncode != 23 or n == 0:
            errors.append(f"{name}: counting run exit {p.returncode}, {n} allocations counted")
            continue
        n = min(n, limit)
        total += n
        for at in range(1, n + 1):
            for f in glob.glob(os.path.join(work, "wref-check.*")):
                os.unlink(f)
            p = run(exe, lib, shim, at, None, work)
            err = p.stderr.decode("utf-8", "replace")
            where = f"{name} with allocation {at}/{n} failing"
            if p.returncode < 0:
                errors.append(f"{where}: killed by signal {-p.returncode}\n{err[-2000:]}")
                continue
            found = re.findall(r"==\d+==ERROR: wref-check: (\S+)", err)
            explained = ("wref-check: WARNING" in err or "out of memory" in err or
                         "VCHECK failed" in err)   # the program got WREF_ERR_MEMORY (exit: ours, 23)
            if not all(k in found for k in kinds) and not explained:
                errors.append(f"{where}: findings {found}, expected {kinds}, and no warning says why "
                              f"(exit {p.returncode})\n{err[-2000:]}")
            if p.returncode not in (0, 23, 99):
                errors.append(f"{where}: exit status {p.returncode}\n{err[-2000:]}")
            for doc in glob.glob(os.path.join(work, "wref-check.*.json")):
                try:
                    json.load(open(doc, encoding="utf-8"))
                except ValueError as e:
                    errors.append(f"{where}: {os.path.basename(doc)} does not parse: {e}")
        print(f"{name}: {n} fault points exercised")
        shutil.rmtree(work, ignore_errors=True)
    for e in errors[:30]:
        print("FAIL: " + e)
    print(f"{total} fault points in all; " + ("ok" if not errors else f"{len(errors)} failure(s)"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
