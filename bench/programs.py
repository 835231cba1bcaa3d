#!/usr/bin/env python3
"""programs.py: whole programs under the checker, side by side in one run (scripts/bench.sh).

    programs.py --build BUILD_DIR [--rounds R] [--memcheck-rounds M] [--json OUT] [--quick]

The programs: `exit_only` (bench/exit_only.c, `int main(void) { return 0; }`: the start-up and
exit cost alone) and the clean programs of tests/clean (realistic, correct uses of wref; each
prints "wref-check active: 1" under the checker, which proves it was there). Configurations:
  plain      the program alone
  checker    LD_PRELOAD=libwref-check.so, default options
  tool       `wref-check --` (the tool's own exec and its environment set-up included)
  memcheck   valgrind --tool=memcheck (the same program, release libwref), --memcheck-rounds
             rounds only (default 1): it is slow

Each round runs every (program, configuration) process once, in a fresh random order, so the
two processes of a ratio ran under the same load. A process's cost is its CPU time (user +
system, from wait4's rusage; on this shared machine the wall time also counts the time it
waited for a CPU) and, for information, its wall time. Figures are medians over rounds, and a
ratio is the median over rounds of that round's ratio. Writes OUT (default
bench/programs-results.json) and prints the table.
"""
import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time

CONFIGS = ["plain", "checker", "tool", "memcheck"]
CLEAN = ["weak_value_cache", "observers", "resurrecting_pool", "shared_threads", "deep_chain",
         "allocator_switch"]


def programs(build):
    """[(name, path)]: exit_only first, then the clean programs that were built."""
    found = [("exit_only", os.path.join(build, "bench", "exit_only"))]
    found += [(n, os.path.join(build, "tests", "clean", "clean_" + n)) for n in CLEAN]
    missing = [p for _, p in found if not os.access(p, os.X_OK)]
    if missing:
        sys.exit("programs.py: not built: %s (build the release tree with the tests and the bench)"
                 % ", ".join(missing))
    return found


def command(config, build, exe):
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "LD_AUDIT", "WREF_CHECK_OPTIONS")}
    if config == "plain":
        return [exe], env
    if config == "checker":
        env["LD_PRELOAD"] = os.path.join(build, "src", "libwref-check.so")
        return [exe], env
    if config == "tool":
        return [os.path.join(build, "tools", "wref-check"), "--", exe], env
    if config == "memcheck":
        return ["valgrind", "--tool=memcheck", "--quiet", "--error-exitcode=99", exe], env
    raise ValueError(config)


def run(config, build, name, exe):
    """Runs one process to its end and returns its wall time (s). Exits the script if the
    process failed or wrote to stderr or, under the checker, if the checker did not say it was
    active (a clean program prints it; exit_only is checked once by checker_is_active)."""
    cmd, env = command(config, build, exe)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate()
    wall = time.monotonic() - t0
    if p.returncode != 0 or err.strip():
        sys.exit("programs.py: %s under %s failed (exit %d):\n%s" % (name, config, p.returncode,
                                                                      err.decode(errors="replace")))
    if config in ("checker", "tool") and name != "exit_only" and b"wref-check active: 1" not in out:
        sys.exit("programs.py: %s under %s: the checker did not say it was active" % (name, config))
    return wall


def timed(config, build, name, exe):
    """One process's {"cpu_ms", "wall_ms"}: its CPU time is the growth of this script's
    children's rusage (getrusage, microseconds; one child at a time, reaped by run; a child's own waited-for children,
    such as the program under `wref-check --`, are included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = run(config, build, name, exe)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"cpu_ms": cpu * 1e3, "wall_ms": wall * 1e3}


def checker_is_active(build, exe):
    """exit_only prints nothing: prove the preload works on it with the statistics line."""
    cmd, env = command("checker", build, exe)
    env["WREF_CHECK_OPTIONS"] = "verbosity=1"
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0 or "wref-check" not in r.stderr:
        sys.exit("programs.py: exit_only under the checker printed no statistics (exit %d): %s"
                 % (r.returncode, r.stderr))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--memcheck-rounds", type=int, default=1)
    ap.add_argument("--json", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "programs-results.json"))
    ap.add_argument("--quick", action="store_true", help="3 rounds, no memcheck")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.memcheck_rounds = 3, 0
    if not shutil.which("valgrind"):
        a.memcheck_rounds = 0
    progs = programs(a.build)
    checker_is_active(a.build, progs[0][1])
    runs = {}   # (name, config) -> [sample per round, or None when not run that round]
    load0 = os.getloadavg()
    t_start = time.monotonic()
    for r in range(a.rounds):
        jobs = [(n, e, c) for n, e in progs for c in CONFIGS if c != "memcheck" or r < a.memcheck_rounds]
        random.shuffle(jobs)
        for n, e, c in jobs:
            runs.setdefault((n, c), [None] * a.rounds)[r] = timed(c, a.build, n, e)
        print("programs.py: round %d of %d done (%.0f s)" % (r + 1, a.rounds, time.monotonic() - t_start),
              file=sys.stderr, flush=True)
    load1 = os.getloadavg()
    rows = []
    for n, _ in progs:
        row = {"program": n}
        plain = runs[(n, "plain")]
        for c in CONFIGS:
            samples = runs.get((n, c))
            if not samples or not any(samples):
                continue
            got = [s for s in samples if s]
            row[c] = {"cpu_ms": statistics.median(s["cpu_ms"] for s in got),
                      "wall_ms": statistics.median(s["wall_ms"] for s in got), "runs": len(got)}
            if c != "plain":
                pairs = [(s, p) for s, p in zip(samples, plain) if s and p and p["cpu_ms"] > 0]
                if pairs:
                    row[c]["cpu_ratio"] = statistics.median(s["cpu_ms"] / p["cpu_ms"] for s, p in pairs)
                    row[c]["cpu_over_ms"] = statistics.median(s["cpu_ms"] - p["cpu_ms"] for s, p in pairs)
        rows.append(row)
    res = {"rounds": a.rounds, "memcheck_rounds": a.memcheck_rounds, "load_start": load0,
           "load_end": load1, "wall_s": time.monotonic() - t_start,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "programs": rows}
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1)
    print("%-18s %10s %18s %18s %18s" % ("program", "plain ms", "checker ms", "wref-check -- ms", "memcheck ms"))
    for row in rows:
        cells = ["%10.2f" % row["plain"]["cpu_ms"]]
        for c in CONFIGS[1:]:
            v = row.get(c)
            cells.append("%18s" % ("%.2f (%.2fx)" % (v["cpu_ms"], v["cpu_ratio"]) if v and "cpu_ratio" in v else "-"))
        print("%-18s %s" % (row["program"], " ".join(cells)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
