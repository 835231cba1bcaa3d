#!/usr/bin/env python3
"""check_guard_log.py: the log files on the signal path (issues 10 and 11): a text log exists
only when there is a finding to write, also when the finding is made by the SIGSEGV handler
(which creates it with open(2) from a name formatted at start-up: docs/checker.md, "Memory").

usage: check_guard_log.py --lib LIBWREF_CHECK --clean GUARD_CLEAN --uaf UAF_GUARD --recover GUARD_RECOVER
                          --foreign FOREIGN_FAULT --poisoned POISONED_POINTER

Each run is LD_PRELOAD=LIB with report=text,json and log_path=<tmp>/r, and guard=all unless
said otherwise:
  clean       GUARD_CLEAN (correct) with verbosity=1: exit 0; the checker says it is active
              and counts 2 objects (the Widget, its weakref); no text log r.<pid> is left (nothing was written), and the
              JSON report is complete with no findings
  fault       UAF_GUARD (a guard-page fault): death by SIGSEGV; the text log r.<pid>, created
              by the signal handler, holds the use-after-free; the JSON report holds it too
  suppressed  UAF_GUARD with use-after-free:type=Widget suppressed: death by SIGSEGV (the
              program's fault still kills it); no text log (nothing was written); the JSON
              report exists, is valid, has no findings, counts the fault as suppressed (1)
              and lists the entry used once (complete=false: the process died)
  recover     GUARD_RECOVER (its own handler siglongjmps out of the fault, then it returns 0):
              unsuppressed, the fault is a finding and the exit report is complete with it;
              suppressed, exit 0, no finding, suppressed=1 and the entry used once, complete
  foreign     FOREIGN_FAULT (a SIGSEGV of the program's own, at no object), with guard=all and
              in the default mode: death by SIGSEGV, nothing on stderr, no text log; the JSON
              report (guard=all: made at start-up) has no findings; in the default mode there
              is none (it is made at the first finding or at exit)
  poisoned    POISONED_POINTER in the default mode (a poison pointer followed; its own handler
              then _exits 42): the text log, created by the signal handler, holds the
              use-after-free, and so does the JSON report the handler created (complete=false)
  clean, default mode: exit 0, no text log; the JSON report made at exit, no findings
"""
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile

errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)
    return cond


def run(lib, exe, options, guard=True):
    d = tempfile.mkdtemp(prefix="wref-guard-log-")
    env = dict(os.environ, LD_PRELOAD=lib,
               WREF_CHECK_OPTIONS=("guard=all:" if guard else "") + f"report=text,json:log_path={d}/r"
               + (":" + options if options else ""))
    p = subprocess.run([exe], cwd=d, env=env, capture_output=True, text=True, timeout=60)
    texts = sorted(f for f in glob.glob(f"{d}/r.*") if not f.endswith(".json"))
    docs = glob.glob(f"{d}/r.*.json")
    doc = None
    if len(docs) == 1:
        try:
            doc = json.load(open(docs[0]))
        except ValueError as e:
            doc = f"unparsable: {e}"
    return p, d, texts, doc


def main(argv):
    lib = argv[argv.index("--lib") + 1]
    clean = argv[argv.index("--clean") + 1]
    uaf = argv[argv.index("--uaf") + 1]
    recover = argv[argv.index("--recover") + 1]
    foreign = argv[argv.index("--foreign") + 1]
    poisoned = argv[argv.index("--poisoned") + 1]

    p, d, texts, doc = run(lib, clean, "verbosity=1")
    check(p.returncode == 0 and p.stdout == "clean\n", f"clean: exit {p.returncode}, stdout {p.stdout!r}\n{p.stderr}")
    check("==WARNING: wref-check: active (pid" in p.stderr and "  objects created: 2\n" in p.stderr,
          f"clean: the checker does not say it is active with 2 objects:\n{p.stderr}")
    check(texts == [], f"clean: text log left behind: {texts} in {d}")
    check(isinstance(doc, dict) and doc["findings"] == [] and doc["complete"] is True,
          f"clean: JSON report {doc!r}")

    p, d, texts, doc = run(lib, uaf, "")
    check(p.returncode == -signal.SIGSEGV, f"fault: exit {p.returncode}, expected death by SIGSEGV\n{p.stderr}")
    text = "".join(open(f).read() for f in texts)
    check(len(texts) == 1 and "ERROR: wref-check: use-after-free on Widget#1" in text,
          f"fault: text logs {texts}: {text[:400]!r}")
    check(isinstance(doc, dict) and [f["kind"] for f in doc["findings"]] == ["use-after-free"],
          f"fault: JSON report {doc!r}")

    supp = os.path.join(tempfile.mkdtemp(prefix="wref-guard-supp-"), "w.supp")
    with open(supp, "w") as f:
        f.write("use-after-free:type=Widget\n")
    p, d, texts, doc = run(lib, uaf, f"suppressions={supp}")
    check(p.returncode == -signal.SIGSEGV, f"suppressed: exit {p.returncode}, expected death by SIGSEGV\n{p.stderr}")
    check("ERROR: wref-check" not in p.stderr, f"suppressed: a finding on stderr:\n{p.stderr}")
    check(texts == [], f"suppressed: text log left behind: {texts} in {d}")
    check(isinstance(doc, dict) and doc["findings"] == [] and doc["format"] == "wref-check-report",
          f"suppressed: JSON report {doc!r} in {d}")
    used = [{"kind": "use-after-free", "pattern": "type=Widget", "count": 1}]
    if isinstance(doc, dict):
        check(doc["summary"]["suppressed"] == 1 and doc["summary"]["findings"] == 0,
              f"suppressed: summary {doc['summary']!r}, expected 1 suppressed, 0 findings")
        check(doc["suppressions"] == used, f"suppressed: suppressions {doc['suppressions']!r}, expected {used!r}")
        check(doc["complete"] is False, "suppressed: a process killed by SIGSEGV wrote complete=true")

    p, d, texts, doc = run(lib, recover, "")
    check(p.returncode == 23 and "recovered" in p.stdout,
          f"recover: exit {p.returncode} (expected the checker's 23), stdout {p.stdout!r}\n{p.stderr}")
    check(isinstance(doc, dict) and [f["kind"] for f in doc["findings"]] == ["use-after-free"]
          and doc["complete"] is True and doc["summary"]["suppressed"] == 0,
          f"recover: JSON report {doc!r}")

    p, d, texts, doc = run(lib, recover, f"suppressions={supp}")
    check(p.returncode == 0 and p.stdout == "recovered\n",
          f"recover suppressed: exit {p.returncode}, stdout {p.stdout!r}\n{p.stderr}")
    check("ERROR: wref-check" not in p.stderr, f"recover suppressed: a finding on stderr:\n{p.stderr}")
    if check(isinstance(doc, dict), f"recover suppressed: JSON report {doc!r} in {d}"):
        check(doc["findings"] == [] and doc["complete"] is True,
              f"recover suppressed: findings {doc['findings']!r}, complete {doc['complete']!r}")
        check(doc["summary"]["suppressed"] == 1,
              f"recover suppressed: summary {doc['summary']!r}, expected 1 suppressed")
        check(doc["suppressions"] == used,
              f"recover suppressed: suppressions {doc['suppressions']!r}, expected {used!r}")

    for guard in (True, False):
        mode = "guard=all" if guard else "default mode"
        p, d, texts, doc = run(lib, foreign, "", guard)
        check(p.returncode == -signal.SIGSEGV and p.stdout == "faulting\n",
              f"foreign ({mode}): exit {p.returncode}, stdout {p.stdout!r}, expected death by SIGSEGV\n{p.stderr}")
        check(p.stderr == "", f"foreign ({mode}): stderr {p.stderr!r}")
        check(texts == [], f"foreign ({mode}): text log left behind: {texts} in {d}")
        if guard:
            check(isinstance(doc, dict) and doc["findings"] == [] and doc["summary"]["suppressed"] == 0,
                  f"foreign ({mode}): JSON report {doc!r}")
        else:
            check(doc is None, f"foreign ({mode}): a JSON report {doc!r} in {d}")

    p, d, texts, doc = run(lib, poisoned, "", False)
    check(p.returncode == 42, f"poisoned: exit {p.returncode}, expected the program's handler's 42\n{p.stderr}")
    text = "".join(open(f).read() for f in texts)
    check(len(texts) == 1 and "ERROR: wref-check: use-after-free on Holder#" in text and "(poisoned pointer)" in text,
          f"poisoned: text logs {texts}: {text[:400]!r}")
    check(isinstance(doc, dict) and [f["kind"] for f in doc["findings"]] == ["use-after-free"]
          and doc["complete"] is False, f"poisoned: JSON report {doc!r}")

    p, d, texts, doc = run(lib, clean, "", False)
    check(p.returncode == 0 and p.stdout == "clean\n", f"clean (default mode): exit {p.returncode}\n{p.stderr}")
    check(texts == [], f"clean (default mode): text log left behind: {texts} in {d}")
    check(isinstance(doc, dict) and doc["findings"] == [] and doc["complete"] is True,
          f"clean (default mode): JSON report {doc!r}")

    for e in errors:
        print("FAIL:", e)
    print("FAIL" if errors else "PASS", "guard_log")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
