#!/usr/bin/env python3
"""check_survive.py: findings survive the process (issue 6, point 4), on the survivor victim.

usage: check_survive.py --lib LIBWREF_CHECK --exe SURVIVOR

Each case runs `SURVIVOR MODE` with LD_PRELOAD=LIB and
WREF_CHECK_OPTIONS=report=text,json:log_path=DIR/r[:more] and asserts on how it ended and on
the files DIR/r.<pid> (text) and DIR/r.<pid>[.<n>].json it left: every finding made before the
end is there, whole, and every JSON document parses.
"""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile

errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)
    return cond


def run(lib, exe, mode, extra=""):
    d = tempfile.mkdtemp(prefix="wref-survive-")
    opts = f"report=text,json:log_path={d}/r" + (":" + extra if extra else "")
    env = dict(os.environ, LD_PRELOAD=lib, WREF_CHECK_OPTIONS=opts)
    p = subprocess.run([exe, mode], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    docs = {}
    for path in sorted(glob.glob(os.path.join(d, "r.*.json"))):
        try:
            docs[os.path.basename(path)] = json.load(open(path, encoding="utf-8"))
        except ValueError as e:
            errors.append(f"{mode}: {path} does not parse: {e}")
    texts = {os.path.basename(p): open(p, encoding="utf-8", errors="replace").read()
             for p in glob.glob(os.path.join(d, "r.*")) if not p.endswith(".json")}
    return p.returncode, docs, texts, p.stderr.decode("utf-8", "replace")


def kinds(doc):
    return [f["kind"] for f in doc["findings"]]


def one_process(case, rc, want_rc, docs, texts, want_kinds, complete):
    check(rc == want_rc, f"{case}: exit status {rc}, expected {want_rc}")
    if not check(len(docs) == 1 and len(texts) == 1, f"{case}: files {list(docs) + list(texts)}"):
        return None
    doc = next(iter(docs.values()))
    text = next(iter(texts.values()))
    check(kinds(doc) == want_kinds, f"{case}: JSON findings {kinds(doc)}, expected {want_kinds}")
    check(doc["complete"] is complete, f"{case}: complete={doc['complete']}, expected {complete}")
    got = re.findall(r"==\d+==ERROR: wref-check: (\S+)", text)
    check(got == want_kinds, f"{case}: text findings {got}, expected {want_kinds}")
    check(text.count("SUMMARY: wref-check: ") >= len(want_kinds), f"{case}: a text finding is cut short")
    return doc


def main(argv):
    lib = argv[argv.index("--lib") + 1]
    exe = argv[argv.index("--exe") + 1]
    uaf = ["use-after-free"]

    for mode, want_rc in (("abort", -signal.SIGABRT), ("segv", -signal.SIGSEGV), ("_exit", 3),
                          ("term", -signal.SIGTERM)):
        rc, docs, texts, _ = run(lib, exe, mode)
        one_process(mode, rc, want_rc, docs, texts, uaf, False)

    # flush_on_signal: the exit census runs before death by SIGTERM
    # flush_timeout=30: the exit work takes over 2 s (the default) under TSan on a loaded machine
    rc, docs, texts, err = run(lib, exe, "term", "flush_on_signal=1:flush_timeout=30")
    doc = one_process("term+flush_on_signal", rc, -signal.SIGTERM, docs, texts, uaf + ["leak"], True)
    if doc:
        check(doc["summary"]["exit_status"] is None, f"term+flush_on_signal: exit_status {doc['summary']}")

    # fork: the child's report is its own
    rc, docs, texts, _ = run(lib, exe, "fork")
    check(rc == 23, f"fork: exit status {rc}, expected 23")
    if check(len(docs) == 2 and len(texts) == 2, f"fork: expected 2 JSON and 2 text files, got {list(docs)} {list(texts)}"):
        by_kinds = {tuple(kinds(d)): d for d in docs.values()}
        parent, child = by_kinds.get(("use-after-free", "leak")), by_kinds.get(("invalid-object",))
        check(parent is not None and parent["complete"] is True, f"fork: parent report {list(by_kinds)}")
        check(child is not None and child["complete"] is False, f"fork: child report {list(by_kinds)}")
        if parent and child:
            check(child["program"]["ppid"] == parent["program"]["pid"], "fork: the child's ppid is not the parent")
            # each text report holds exactly its own process's findings, in order: the parent's
            # use-after-free (made before the fork) and leak, the child's invalid-object only
            for who, doc, want in (("parent", parent, ["use-after-free", "leak"]),
                                   ("child", child, ["invalid-object"])):
                name = f"r.{doc['program']['pid']}"
                got = re.findall(r"ERROR: wref-check: (\S+)", texts.get(name, ""))
                check(got == want, f"fork: {who}'s text report {name} has findings {got}, expected {want}")

    # exec: same pid, a second document next to the first
    rc, docs, texts, _ = run(lib, exe, "exec")
    check(rc == 0, f"exec: exit status {rc}, expected 0 (the exec'd image is clean)")
    names = sorted(docs, key=lambda n: (len(n), n))
    if check(len(names) == 2, f"exec: expected r.<pid>.json and r.<pid>.1.json, got {names}"):
        first, second = docs[names[0]], docs[names[1]]
        check(re.fullmatch(r"r\.\d+\.json", names[0]) and re.fullmatch(r"r\.\d+\.1\.json", names[1]),
              f"exec: file names {names}")
        check(kinds(first) == uaf and first["complete"] is False, f"exec: first image {kinds(first)}")
        check(kinds(second) == [] and second["complete"] is True, f"exec: second image {kinds(second)}")
        check(first["program"]["pid"] == second["program"]["pid"], "exec: the pids differ")

    for e in errors:
        print("FAIL: " + e)
    print("ok" if not errors else f"{len(errors)} failure(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
