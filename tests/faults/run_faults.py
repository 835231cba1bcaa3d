#!/usr/bin/env python3
"""run_faults.py: allocation failure at every index of the checker's own allocations.

usage: run_faults.py --shim LIBFAILINJECT --lib LIBWREF_CHECK --victims DIR [--max N]

For each scenario (a victim program and the findings it must produce), a first run counts the
allocations libwref-check makes (the failinject shim counts only calls made from inside it:
records, stack depot, report and JSON buffers, symbolizer caches, census, and the runtime's
object memory). Then the scenario runs once per index i, with allocation i failing. Each run
must:
  - not die by a signal (the checker never crashes on out-of-memory);
  - produce every expected finding, or say why not, right where the allocation failed: the
    shim prints "failinject: allocation N failed (from libwref-check+0xOFF)", and only the
    first excusing line after it may excuse a missing finding, and only the findings it
    covers (see EXCUSES): the checker's out-of-memory warning for its object records or its leak census,
    or the program's own VCHECK failure when the runtime handed it WREF_ERR_MEMORY. Any other
    warning, earlier or later, excuses nothing;
  - leave a JSON report that parses, when it leaves one.
Prints the number of fault points exercised per scenario.
"""
import concurrent.futures
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

# Fault points run this many at a time (each is its own process in its own directory).
WORKERS = max(1, min(4, os.cpu_count() or 1))

SCENARIOS = [
    ("dangling_borrow", ["dangling-borrow"]),
    ("use_after_free", ["use-after-free"]),
    ("leak", ["leak"]),
    ("callback_never_ran", ["callback-never-ran", "leak"]),
]


# The only lines that may excuse a missing finding, and what each may excuse. The first of them
# after the shim's "failinject: allocation N failed" line is the one that failure caused; a
# warning printed before the failure, or any other warning, excuses nothing.
EXCUSES = [
    # the registry could not record an object: no check can see it from then on
    (r"==\d+==WARNING: wref-check: out of memory for object records;",
     {"dangling-borrow", "use-after-free", "invalid-object", "leak", "callback-never-ran"}),
    # the exit census could not build its graph
    (r"==\d+==WARNING: wref-check: out of memory in the leak census:", {"leak", "callback-never-ran"}),
    # the runtime handed the program WREF_ERR_MEMORY (its object memory failed): the program
    # stopped before its bug
    (r": VCHECK failed: ", None),
]


def symbolize(lib, offset):
    """The checker function that made the failed allocation, for the messages."""
    try:
        out = subprocess.run(["addr2line", "-f", "-e", lib, hex(offset - 1)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=30).stdout.decode().split("\n")[0]
        return out or "??"
    except OSError:
        return "??"


def excuse(err, at, missing, lib):
    """None when the failed allocation explains the missing findings, else why not."""
    lines = err.splitlines()
    hits = [i for i, l in enumerate(lines) if l.startswith(f"failinject: allocation {at} failed")]
    if len(hits) != 1:
        return f"the shim did not fail allocation {at} (lines: {len(hits)}), so nothing excuses it"
    m = re.search(r"\+0x([0-9a-f]+)\)", lines[hits[0]])
    site = symbolize(lib, int(m.group(1), 16)) if m else "??"
    for nxt in lines[hits[0] + 1:]:
        for pattern, kinds in EXCUSES:
            if re.search(pattern, nxt):
                if kinds is None or set(missing) <= kinds:
                    return None
                return (f"the allocation that failed (in {site}) was followed by {nxt!r}, which does "
                        f"not explain missing {missing}")
    return (f"the allocation that failed (in {site}) was not followed by a warning that covers it: "
            f"the finding was lost silently")


def run(exe, lib, shim, at, count_file, work):
    env = dict(os.environ, LD_PRELOAD=f"{lib}:{shim}", FAILINJECT_AT=str(at),
               WREF_CHECK_OPTIONS=f"report=text,json:log_path=stderr")
    if count_file:
        env["FAILINJECT_COUNT"] = count_file
    return subprocess.run([exe], env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


def self_test():
    """excuse() itself: what may and may not excuse a missing finding."""
    fail = "failinject: allocation 7 failed (from libwref-check+0x10)"
    census = "==1==WARNING: wref-check: out of memory in the leak census: leaks may be missing"
    records = "==1==WARNING: wref-check: out of memory for object records; checks are off"
    json_w = "==1==WARNING: wref-check: out of memory: finding 1 is missing from the JSON report r.json"
    cases = [
        ([fail, census], ["leak"], True),
        ([fail, "==1==ERROR: wref-check: leak on X#1", census], ["callback-never-ran"], True),
        ([fail, records], ["use-after-free"], True),
        ([fail, "x.c:3: VCHECK failed: ob"], ["dangling-borrow"], True),
        ([fail, census], ["use-after-free"], False),       # the census does not explain a UAF
        ([fail, json_w], ["leak"], False),                  # nor does a JSON-only warning
        ([census, fail], ["leak"], False),                  # a warning before the failure
        ([fail], ["leak"], False),                          # lost silently
        ([census], ["leak"], False),                        # no allocation failed at all
        (["failinject: allocation 8 failed (from libwref-check+0x10)", census], ["leak"], False),
    ]
    bad = []
    for lines, missing, ok in cases:
        if (excuse("\n".join(lines), 7, missing, "/nonexistent") is None) != ok:
            bad.append(f"self-test: {lines} missing {missing}: expected {'excused' if ok else 'a failure'}")
    return bad


def check_point(name, kinds, exe, lib, shim, at, n):
    """One fault point: the scenario run with allocation `at` failing; its errors."""
    errors = []
    work = tempfile.mkdtemp(prefix="wref-faults-")
    try:
        p = run(exe, lib, shim, at, None, work)
        err = p.stderr.decode("utf-8", "replace")
        where = f"{name} with allocation {at}/{n} failing"
        if p.returncode < 0:
            return [f"{where}: killed by signal {-p.returncode}\n{err[-2000:]}"]
        found = re.findall(r"==\d+==ERROR: wref-check: (\S+)", err)
        missing = [k for k in kinds if k not in found]
        if missing:
            why = excuse(err, at, missing, lib)
            if why:
                errors.append(f"{where}: findings {found}, expected {kinds}: {why} "
                              f"(exit {p.returncode})\n{err[-2000:]}")
        if p.returncode not in (0, 23, 99):
            errors.append(f"{where}: exit status {p.returncode}\n{err[-2000:]}")
        for doc in glob.glob(os.path.join(work, "wref-check.*.json")):
            try:
                json.load(open(doc, encoding="utf-8"))
            except ValueError as e:
                errors.append(f"{where}: {os.path.basename(doc)} does not parse: {e}")
        return errors
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv):
    shim = argv[argv.index("--shim") + 1]
    lib = argv[argv.index("--lib") + 1]
    victims = argv[argv.index("--victims") + 1]
    limit = int(argv[argv.index("--max") + 1]) if "--max" in argv else 10 ** 9
    errors, total = self_test(), 0
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
        with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
            for errs in pool.map(lambda at: check_point(name, kinds, exe, lib, shim, at, n), range(1, n + 1)):
                errors.extend(errs)
        print(f"{name}: {n} fault points exercised")
        shutil.rmtree(work, ignore_errors=True)
    for e in errors[:30]:
        print("FAIL: " + e)
    print(f"{total} fault points in all; " + ("ok" if not errors else f"{len(errors)} failure(s)"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
