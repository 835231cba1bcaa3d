#!/usr/bin/env python3
"""pybench.py: the CPython frontend's costs, side by side in one run (scripts/bench.sh).

    pybench.py --tool WREF_CHECK --interps INTERPS_TXT [--rounds R] [--suite-rounds S]
               [--suite-interps all|TAG,...] [--memcheck-suite-interps TAG,...|none]
               [--json OUT] [--quick]

Two workloads, each run in four configurations:
  plain       the interpreter alone
  checker     under `wref-check --verbosity=1 --` (its statistics line proves it was active
              and counts the borrows it recorded)
  pymalloc    PYTHONMALLOC=debug (CPython's own debug allocator hooks), no checker
  memcheck    valgrind --tool=memcheck with CPython's suppressions (/usr/lib/valgrind/python3.supp,
              shipped by Debian's valgrind package)

  get         bench/python/get_child.py: PyWeakref_GetObject + Py_INCREF + Py_DECREF in a C loop
              of an extension module (bench/python/pyget.c), timed inside the process (wall and
              thread CPU time per call), median of the batches of a process; two cases, "same"
              (one weakref again and again) and "many" (1024 distinct referents in turn). On
              every interpreter in INTERPS_TXT (CMake writes it: tag|python|module dir).
  test_weakref  `python -m test test_weakref`, the wall time of the whole process (and its CPU
              time, user + system, from getrusage), on the
              interpreters of --suite-interps that have CPython's test suite (Debian's
              libpython3.11-testsuite, a pyenv build's lib/python3.X/test). memcheck runs it
              once (at most), on --memcheck-suite-interps (default debian-3.11): it takes
              tens of minutes.

Interleaving: each round runs every (workload, interpreter, configuration) process once, in a
fresh random order; the figures are medians over rounds, and each ratio is the median over
rounds of that round's checked/plain ratio (the two processes of a ratio ran in the same round,
so under the same load). The load average is recorded at the start and at the end.
Writes OUT (default bench/python-results.json) and prints the table.
"""
import argparse
import json
import os
import platform
import random
import re
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, "get_child.py")
SUPP = "/usr/lib/valgrind/python3.supp"
CONFIGS = ["plain", "checker", "pymalloc", "memcheck"]
BORROWS_RE = re.compile(r"python frontend: CPython \S+: (\d+) borrows from PyWeakref_GetObject, (\d+) objects "
                        r"watched, (\d+) freed while watched")
ERRORS_RE = re.compile(r"ERROR SUMMARY: (\d+) errors")


def command(config, tool, python, args, logdir, tag):
    env = dict(os.environ)
    for k in ("PYTHONMALLOC", "LD_PRELOAD", "LD_AUDIT", "WREF_CHECK_OPTIONS", "PYTHONTRACEMALLOC"):
        env.pop(k, None)
    log = None
    if config == "plain":
        cmd = [python] + args
    elif config == "checker":
        cmd = [tool, "--verbosity=1", "--"] + [python] + args
    elif config == "pymalloc":
        env["PYTHONMALLOC"] = "debug"
        cmd = [python] + args
    elif config == "memcheck":
        log = os.path.join(logdir, "memcheck.%s.%d.log" % (tag, time.monotonic_ns()))
        cmd = ["valgrind", "--tool=memcheck", "--log-file=" + log]
        if os.path.exists(SUPP):
            cmd.append("--suppressions=" + SUPP)
        cmd += [python] + args
    else:
        raise ValueError(config)
    return cmd, env, log


def run(config, tool, python, args, logdir, tag, timeout):
    cmd, env, log = command(config, tool, python, args, logdir, tag)
    t0 = time.monotonic()
    u0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        status, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        status, out, err = "timeout", e.stdout or "", e.stderr or ""
        out = out.decode() if isinstance(out, bytes) else out
        err = err.decode() if isinstance(err, bytes) else err
    wall = time.monotonic() - t0
    u1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # the child's CPU time (user + system): processes run one at a time, so the difference is
    # this one's; unlike wall time it does not count the time spent waiting for a CPU
    cpu = (u1.ru_utime - u0.ru_utime) + (u1.ru_stime - u0.ru_stime)
    rec = {"config": config, "status": status, "wall_s": wall, "cpu_s": cpu}
    m = BORROWS_RE.search(err)
    if m:
        rec["borrows"], rec["watched"], rec["tombstones"] = (int(x) for x in m.groups())
    if "ERROR: wref-check" in err:
        rec["findings"] = err.count("ERROR: wref-check")
    if log and os.path.exists(log):
        with open(log) as f:
            text = f.read()
        m = ERRORS_RE.search(text)
        if m:
            rec["memcheck_errors"] = int(m.group(1))
    return rec, out, err


def load():
    return [round(x, 2) for x in os.getloadavg()]


def med(xs):
    return statistics.median(xs) if xs else None


def parse_interps(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                tag, python, moddir = line.split("|")
                out.append({"tag": tag, "python": python, "moddir": moddir})

    def key(it):   # Debian's first, then pyenv's by version
        v = it["tag"].split("-", 1)[1]
        return (not it["tag"].startswith("debian-"), [int(x) for x in v.split(".") if x.isdigit()])
    return sorted(out, key=key)


def has_suite(python):
    try:
        p = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0 and os.path.exists(os.path.join(p.stdout.strip(), "test", "test_weakref.py"))


def version(python):
    p = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return p.stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", required=True)
    ap.add_argument("--interps", required=True)
    ap.add_argument("--rounds", type=int, default=5, help="rounds of the get workload (default 5)")
    ap.add_argument("--suite-rounds", type=int, default=3, help="rounds of test_weakref (default 3)")
    ap.add_argument("--suite-interps", default="debian-3.11,pyenv-3.12,pyenv-3.13",
                    help="tags (or tag prefixes) that run test_weakref, or 'all' (default: "
                         "debian-3.11,pyenv-3.12,pyenv-3.13)")
    ap.add_argument("--memcheck-suite-interps", default="debian-3.11",
                    help="tags that run test_weakref once under memcheck, or 'none' (default debian-3.11)")
    ap.add_argument("--n", type=int, default=200000, help="calls per batch (default 200000)")
    ap.add_argument("--batches", type=int, default=5, help="batches per process (default 5)")
    ap.add_argument("--json", default=os.path.join(os.path.dirname(HERE), "python-results.json"))
    ap.add_argument("--logdir", default=None)
    ap.add_argument("--quick", action="store_true", help="1 round, no test_weakref (a smoke test)")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.suite_rounds, a.n, a.batches = 1, 0, 20000, 2
        a.memcheck_suite_interps = "none"
    logdir = a.logdir or os.path.join(os.path.dirname(a.json) or ".", "python-logs")
    os.makedirs(logdir, exist_ok=True)
    have_valgrind = subprocess.run(["sh", "-c", "command -v valgrind"], stdout=subprocess.DEVNULL).returncode == 0
    configs = [c for c in CONFIGS if c != "memcheck" or have_valgrind]

    interps = parse_interps(a.interps)
    if not interps:
        print("pybench: no interpreter in %s (no /usr/bin/python3.11 with Python.h, no pyenv shared build)"
              % a.interps, file=sys.stderr)
        return 2
    for it in interps:
        it["version"] = version(it["python"])

    def chosen(spec, tag):
        if spec == "all":
            return True
        return any(tag == s or tag.startswith(s + ".") for s in spec.split(",") if s and s != "none")

    suite = [it for it in interps if a.suite_rounds and chosen(a.suite_interps, it["tag"]) and has_suite(it["python"])]
    mem_suite = [it for it in suite if "memcheck" in configs and chosen(a.memcheck_suite_interps, it["tag"])]

    # One job = one process. The get jobs run in every round; test_weakref in the first
    # suite_rounds rounds (memcheck: in the first round only).
    rounds = max(a.rounds, a.suite_rounds)
    jobs_by_round = []
    for r in range(rounds):
        jobs = []
        if r < a.rounds:
            for it in interps:
                for c in configs:
                    jobs.append(("get", it, c))
        if r < a.suite_rounds:
            for it in suite:
                for c in configs:
                    if c != "memcheck" or (r == 0 and it in mem_suite):
                        jobs.append(("test_weakref", it, c))
        random.shuffle(jobs)
        jobs_by_round.append(jobs)

    commit = subprocess.run(["git", "-C", HERE, "log", "-1", "--format=%h"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True).stdout.strip() or "?"
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": commit, "load_start": load(),
           "cpus": os.cpu_count(), "kernel": platform.release(), "rounds": a.rounds,
           "suite_rounds": a.suite_rounds, "n": a.n, "batches": a.batches,
           "memcheck_supp": SUPP if os.path.exists(SUPP) else None,
           "interps": [{k: it[k] for k in ("tag", "python", "version")} for it in interps],
           "runs": []}
    start = time.monotonic()
    total = sum(len(j) for j in jobs_by_round)
    done = 0
    for r, jobs in enumerate(jobs_by_round):
        for work, it, c in jobs:
            done += 1
            if work == "get":
                args = [CHILD, it["moddir"], str(a.n), str(a.batches)]
                timeout = 1800
            else:
                args = ["-m", "test", "test_weakref"]
                timeout = 7200 if c == "memcheck" else 1800
            rec, out, err = run(c, a.tool, it["python"], args, logdir, it["tag"], timeout)
            rec.update({"round": r, "work": work, "interp": it["tag"], "load": load()})
            if work == "get":
                line = [l for l in out.splitlines() if l.startswith("WREF_PYBENCH ")]
                if line:
                    d = json.loads(line[-1][len("WREF_PYBENCH "):])
                    for k in ("same_wall", "same_cpu", "many_wall", "many_cpu"):
                        rec[k] = med(d[k])
            else:
                rec["suite_ok"] = rec["status"] == 0 and "SUCCESS" in out
            ok = rec["status"] == 0 and (work != "get" or "same_wall" in rec)
            if not ok:
                with open(os.path.join(logdir, "failed.%s.%s.%s.%d.log" % (work, it["tag"], c, r)), "w") as f:
                    f.write("status %s\n--- stdout\n%s\n--- stderr\n%s\n" % (rec["status"], out, err))
            print("pybench: [%d/%d] round %d %-12s %-14s %-8s %7.1f s  %s%s" % (
                done, total, r, work, it["tag"], c, rec["wall_s"],
                "same %.1f ns many %.1f ns (cpu %.1f / %.1f)" % (rec["same_wall"], rec["many_wall"], rec["same_cpu"],
                                                                rec["many_cpu"]) if "same_wall" in rec else
                ("ok" if rec.get("suite_ok") else "status %s" % rec["status"]),
                "" if "borrows" not in rec else ", %d borrows" % rec["borrows"]), flush=True)
            res["runs"].append(rec)
    res["wall_s"] = round(time.monotonic() - start, 1)
    res["load_end"] = load()
    res["summary"] = summarize(res, configs)
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    print_table(res)
    print("pybench: wrote %s (%.0f s)" % (a.json, res["wall_s"]))
    return 0


def summarize(res, configs):
    """Per (work, interp, config): medians over rounds; ratios to plain, round by round."""
    out = []
    runs = res["runs"]
    keys = sorted({(r["work"], r["interp"]) for r in runs}, key=lambda k: (k[0], k[1]))
    for work, tag in keys:
        fields = ["same_wall", "same_cpu", "many_wall", "many_cpu"] if work == "get" else ["wall_s", "cpu_s"]
        for c in configs:
            rs = [r for r in runs if r["work"] == work and r["interp"] == tag and r["config"] == c]
            if not rs:
                continue
            row = {"work": work, "interp": tag, "config": c, "n": len(rs),
                   "ok": all(r["status"] == 0 for r in rs)}
            for fld in fields:
                vals = [r[fld] for r in rs if r.get(fld) is not None and r["status"] == 0]
                row[fld] = med(vals)
                row[fld + "_all"] = [round(v, 2) for v in vals]
                ratios = []
                for r in rs:
                    p = [q for q in runs if q["work"] == work and q["interp"] == tag and q["config"] == "plain"
                         and q["round"] == r["round"] and q.get(fld) and q["status"] == 0]
                    if p and r.get(fld) is not None and r["status"] == 0:
                        ratios.append(r[fld] / p[0][fld])
                row[fld + "_ratio"] = med(ratios)
                row[fld + "_ratios"] = [round(x, 2) for x in ratios]
            for extra in ("borrows", "watched", "tombstones", "memcheck_errors", "findings"):
                vals = [r[extra] for r in rs if extra in r]
                if vals:
                    row[extra] = max(vals)
            if work == "test_weakref":
                row["suite_ok"] = all(r.get("suite_ok") for r in rs)
            out.append(row)
    return out


def print_table(res):
    print("\nCPython frontend bench, %s, load %s -> %s, %d CPUs" % (res["date"], res["load_start"], res["load_end"],
                                                                  res["cpus"]))
    print("%-13s %-14s %-9s %s" % ("work", "interp", "config", "median (ratio to plain, median of same-round ratios)"))
    for row in res["summary"]:
        if row["work"] == "get":
            cells = []
            for case in ("same", "many"):
                for kind in ("wall", "cpu"):
                    v, r = row.get("%s_%s" % (case, kind)), row.get("%s_%s_ratio" % (case, kind))
                    cells.append("%s %s %s ns%s" % (case, kind, "-" if v is None else "%.1f" % v,
                                                     "" if r is None else " (%.2fx)" % r))
            text = ", ".join(cells)
        else:
            v, r = row.get("wall_s"), row.get("wall_s_ratio")
            c, cr = row.get("cpu_s"), row.get("cpu_s_ratio")
            text = "wall %s s%s, cpu %s s%s, %s" % (
                "-" if v is None else "%.1f" % v, "" if r is None else " (%.2fx)" % r,
                "-" if c is None else "%.1f" % c, "" if cr is None else " (%.2fx)" % cr,
                "SUCCESS" if row.get("suite_ok") else "NOT SUCCESS")
        extra = []
        if "borrows" in row:
            extra.append("%d borrows" % row["borrows"])
        if "memcheck_errors" in row:
            extra.append("%d memcheck errors" % row["memcheck_errors"])
        if "findings" in row:
            extra.append("%d FINDINGS" % row["findings"])
        print("%-13s %-14s %-9s %s%s" % (row["work"], row["interp"], row["config"], text,
                                         " [%s]" % ", ".join(extra) if extra else ""))


if __name__ == "__main__":
    sys.exit(main())
