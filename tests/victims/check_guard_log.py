#!/usr/bin/env python3
"""check_guard_log.py: guard pages and the log files (issue 11).

usage: check_guard_log.py --lib LIBWREF_CHECK --clean GUARD_CLEAN --uaf UAF_GUARD --recover GUARD_RECOVER

Each run is LD_PRELOAD=LIB with guard=all, report=text,json and log_path=<tmp>/r:
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


def run(lib, exe, options):
    d = tempfile.mkdtemp(prefix="wref-guard-log-")
    env = dict(os.environ, LD_PRELOAD=lib,
               WREF_CHECK_OPTIONS=f"guard=all:report=text,json:log_path={d}/r" + (":" + options if options else ""))
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

    for e in errors:
        print("FAIL:", e)
    print("FAIL" if errors else "PASS", "guard_log")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
