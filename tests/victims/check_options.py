#!/usr/bin/env python3
"""check_options.py: report options of the checker, end to end on the victim programs.

usage: check_options.py --lib LIBWREF_CHECK --victims DIR [--tool WREF_CHECK_TOOL]

Each case runs a victim (built against libwref) with LD_PRELOAD=LIB and WREF_CHECK_OPTIONS,
in a fresh temporary directory, and asserts on its exit status, stderr and files:
  suppress-function   dangling-borrow:victim_use_borrowed silences the finding, exit 0,
                      "Suppressions used" table with count 1
  suppress-type       leak:type=Node silences the leak; JSON suppressions table and counts
  suppress-file-glob  *:dangling_borrow.c (a source file) silences everything in it
  suppress-no-match   an entry that matches nothing changes nothing
  suppress-bad        each kind of bad line, a missing file and a directory stop the run at start
                      (exit 1) with a message naming the file and line
  suppress-combined   kind:type=T:frame=F matches only when both the type and a frame match
  graveyard           quarantine_mb=0: a dangling borrow still names its object (graveyard lookup)
  warning-prefix      every checker warning starts "==PID==WARNING: wref-check: "
  suppress-indirect   suppressing a leak (a cycle, a direct leak) also suppresses what only it
                      keeps alive (victim leak_owned)
  gen-suppressions    `wref-check report --gen-suppressions` proposes type and function together;
                      each entry silences its own leak and what it owns, nothing else
  lsan                leak_format=lsan prints LeakSanitizer's shape, to LSAN_OPTIONS' log_path
  halt-json           halt_on_error=1: the JSON report is complete with exit_status 23
  json-path           report=json with log_path=P writes P.<pid>.json, no text, and one line on
                      stderr saying where the report went
  json-names          a type name with quotes, a newline, control and non-UTF-8 bytes: valid JSON
  symlink-trap        symlinks planted at <log_path>.<pid>[.json] are never written through
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)
    return cond


def run(lib, exe, options, extra_env=None):
    work = tempfile.mkdtemp(prefix="wref-options-")
    env = dict(os.environ, LD_PRELOAD=lib, WREF_CHECK_OPTIONS=options)
    env.update(extra_env or {})
    p = subprocess.run([exe], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stderr.decode("utf-8", "replace"), work


def write(work_dir, name, text):
    path = os.path.join(work_dir, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def main(argv):
    lib = argv[argv.index("--lib") + 1]
    victims = argv[argv.index("--victims") + 1]
    borrow = os.path.join(victims, "victim_dangling_borrow_preload")
    leak = os.path.join(victims, "victim_leak_preload")
    tmp = tempfile.mkdtemp(prefix="wref-supp-")

    # suppress-function
    supp = write(tmp, "fn.supp", "# the demo's bug, known\ndangling-borrow:victim_use_borrowed\n")
    rc, err, _ = run(lib, borrow, f"suppressions={supp}")
    check(rc == 0, f"suppress-function: exit {rc}, expected 0\n{err}")
    check("ERROR: wref-check" not in err, "suppress-function: a finding was still reported")
    check(re.search(r"Suppressions used:\n  count pattern\n +1 dangling-borrow:victim_use_borrowed\n", err),
          f"suppress-function: no 'Suppressions used' table with count 1:\n{err}")

    # suppress-type, with the JSON report's suppressions table
    supp = write(tmp, "type.supp", "leak:type=No?e   # glob on the type name\n")
    rc, err, work = run(lib, leak, f"suppressions={supp}:report=text,json")
    check(rc == 0, f"suppress-type: exit {rc}, expected 0\n{err}")
    docs = glob.glob(os.path.join(work, "wref-check.*.json"))
    if check(len(docs) == 1, f"suppress-type: JSON report missing in {work}"):
        doc = json.load(open(docs[0]))
        check(doc["findings"] == [], f"suppress-type: JSON findings {doc['findings']}")
        check(doc["suppressions"] == [{"kind": "leak", "pattern": "type=No?e", "count": 1}],
              f"suppress-type: JSON suppressions {doc['suppressions']}")
        check(doc["summary"]["suppressed"] == 1 and doc["summary"]["exit_status"] is None,
              f"suppress-type: JSON summary {doc['summary']}")

    # suppress-file-glob: a source file's basename
    supp = write(tmp, "file.supp", "*:dangling_borrow.c\n")
    rc, err, _ = run(lib, borrow, f"suppressions={supp}")
    check(rc == 0 and "ERROR: wref-check" not in err, f"suppress-file-glob: exit {rc}\n{err}")

    # suppress-no-match
    supp = write(tmp, "none.supp", "leak:no_such_function\nuse-after-free:*\n")
    rc, err, _ = run(lib, borrow, f"suppressions={supp}")
    check(rc == 23 and "ERROR: wref-check: dangling-borrow" in err and "Suppressions used" not in err,
          f"suppress-no-match: exit {rc}\n{err}")

    # suppress-bad: every line that is not an entry, a missing file and an unreadable one stop the
    # run at start (exit 1, before main: the victim's own output never appears) with a message
    # naming the file and the line; a typo never silently turns a suppression off
    bad_lines = [("not-a-kind:foo", "unknown kind before ':'"),
                 ("leak", "expected kind:pattern"),
                 ("Leak:victim_make_node", "unknown kind before ':'"),
                 ("leak:   ", "empty pattern after ':'"),
                 ("leak:type=", "empty type pattern after 'type='"),
                 ("leak:type=Node:frame=", "empty frame pattern after ':frame='"),
                 ("leak:frame=", "empty frame pattern after 'frame='"),
                 ("leak:" + "x" * 1100, "line longer than 1022 bytes")]
    for i, (line, why) in enumerate(bad_lines):
        supp = write(tmp, f"bad{i}.supp", "# fine\nleak:victim_make_node\n" + line + "\n")
        rc, err, _ = run(lib, borrow, f"suppressions={supp}")
        check(rc == 1 and re.match(r"==\d+==ERROR: wref-check: suppressions file " + re.escape(supp) +
                                   r", line 3: " + re.escape(why) + r".*: '", err) and
              "stopping (exit status 1)" in err and "ERROR: wref-check: dangling-borrow" not in err,
              f"suppress-bad: {line[:40]!r}: exit {rc}, expected 1 and '{why}' at line 3:\n{err[:600]}")
    rc, err, _ = run(lib, borrow, "suppressions=/nonexistent/wref.supp")
    check(rc == 1 and re.match(r"==\d+==ERROR: wref-check: cannot read the suppressions file /nonexistent/wref.supp "
                               r"\(No such file or directory\)\n", err) and "dangling-borrow" not in err,
          f"suppress-bad: missing file: exit {rc}, expected 1\n{err}")
    rc, err, _ = run(lib, borrow, f"suppressions={tmp}")   # a directory: cannot be read as a file
    check(rc == 1 and "cannot read the suppressions file" in err, f"suppress-bad: a directory: exit {rc}\n{err}")

    # suppress-combined: kind:type=T:frame=F needs both the type and a frame to match
    for line, silenced in [("leak:type=Node:frame=victim_make_node", True),
                           ("leak:type=Node:frame=no_such_function", False),
                           ("leak:type=Widget:frame=victim_make_node", False),
                           ("leak:frame=victim_make_node", True),
                           ("leak:type=N*e:frame=victim_link_*", False),   # not in the created stack
                           ("leak:type=N*e:frame=leak.c", True)]:
        supp = write(tmp, "combined.supp", line + "\n")
        rc, err, _ = run(lib, leak, f"suppressions={supp}")
        if silenced:
            check(rc == 0 and "ERROR: wref-check" not in err and
                  re.search(r"Suppressions used:\n  count pattern\n +1 " + re.escape(line) + "\n", err),
                  f"suppress-combined: {line} should silence the leak: exit {rc}\n{err}")
        else:
            check(rc == 23 and "ERROR: wref-check: leak" in err, f"suppress-combined: {line} should not match: exit {rc}\n{err}")

    # suppress-indirect: leak_owned has a cycle owning a Payload, and two Documents (document_new,
    # cache_new) owning two Pages each; its findings by summary line:
    owned = os.path.join(victims, "victim_leak_owned_preload")

    def leaks(err):
        return sorted(re.findall(r"==\d+==ERROR: wref-check: leak on (\w+)#\d+", err))

    all_leaks = ["Document", "Document", "Node", "Page", "Page", "Payload"]
    rc, err, _ = run(lib, owned, "")
    check(rc == 23 and leaks(err) == all_leaks, f"suppress-indirect: unsuppressed: exit {rc}, {leaks(err)}")
    for line, left in [("leak:type=Node", ["Document", "Document", "Page", "Page"]),   # the cycle and its Payload
                       ("leak:make_cycle", ["Document", "Document", "Page", "Page"]),
                       ("leak:type=Document:frame=document_new", ["Document", "Node", "Page", "Payload"]),
                       ("leak:type=Document", ["Node", "Payload"]),
                       ("leak:type=Page", ["Document", "Document", "Node", "Payload"])]:   # indirect only
        supp = write(tmp, "owned.supp", line + "\n")
        rc, err, _ = run(lib, owned, f"suppressions={supp}")
        check(rc == 23 and leaks(err) == left, f"suppress-indirect: {line}: expected {left}, got {leaks(err)}\n{err}")

    # gen-suppressions: the tool's entries are type and function together, and each silences
    # its own finding (and what only it owns) without touching the other Document
    if "--tool" in argv:
        tool = argv[argv.index("--tool") + 1]
        rc, err, work = run(lib, owned, "report=json")
        docs = glob.glob(os.path.join(work, "wref-check.*.json"))
        gen = subprocess.run([tool, "report", "--gen-suppressions"] + docs, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=60)
        entries = [l for l in gen.stdout.decode().splitlines() if l and not l.startswith("#")]
        check(gen.returncode in (0, 1) and "leak:type=Document:frame=document_new" in entries and
              "leak:type=Document:frame=cache_new" in entries and "leak:type=Node:frame=make_cycle" in entries,
              f"gen-suppressions: exit {gen.returncode}, entries {entries}\n{gen.stderr.decode()}")
        supp = write(tmp, "gen.supp", gen.stdout.decode())
        rc, err, _ = run(lib, owned, f"suppressions={supp}")
        check(rc == 0 and leaks(err) == [], f"gen-suppressions: the whole file: exit {rc}, {leaks(err)}\n{err}")
        supp = write(tmp, "gen1.supp", "leak:type=Document:frame=document_new\n")
        rc, err, _ = run(lib, owned, f"suppressions={supp}")
        check(rc == 23 and leaks(err) == ["Document", "Node", "Page", "Payload"] and "leak in cache_new" in err,
              f"gen-suppressions: one entry: exit {rc}, {leaks(err)}")

    # graveyard: with quarantine_mb=0 the object's record leaves the table at once; the
    # dangling-borrow still names it, from the graveyard (found by serial)
    rc, err, _ = run(lib, borrow, "quarantine_mb=0")
    check(rc == 23 and re.match(r"==\d+==ERROR: wref-check: dangling-borrow on Widget#1 at 0x", err) and
          "destroyed (the last reference dropped) by thread T0 here:" in err and "created by thread T0 here:" in err,
          f"graveyard: quarantine_mb=0: exit {rc}\n{err}")

    # warning-prefix: every warning of the checker starts "==PID==WARNING: wref-check: "
    rc, err, _ = run(lib, borrow, "no_such_option=1:exitcode=x:oops:report=text,xml:verbosity=1:"
                                  f"log_path={tmp}/no/such/dir/log")
    warnings = [l for l in err.splitlines() if "WARNING" in l or "wref-check:" in l and "ERROR" not in l
                and "SUMMARY" not in l and not l.startswith("    ")]
    check(len(warnings) >= 6, f"warning-prefix: expected at least 6 warnings:\n{err}")
    for w in warnings:
        check(re.match(r"==\d+==WARNING: wref-check: \S", w), f"warning-prefix: {w!r}")

    # lsan: LeakSanitizer's shape, in the file LSAN_OPTIONS names
    rc, err, work = run(lib, leak, "leak_format=lsan", {"LSAN_OPTIONS": "verbosity=0:log_path=" + tmp + "/lsan"})
    logs = glob.glob(os.path.join(tmp, "lsan.*"))
    check(rc == 23, f"lsan: exit {rc}")
    if check(len(logs) == 1, f"lsan: expected one {tmp}/lsan.<pid>, found {logs}; stderr:\n{err}"):
        text = open(logs[0]).read()
        check(re.search(r"==\d+==ERROR: LeakSanitizer: detected memory leaks\n\n"
                        r"Direct leak of 64 byte\(s\) in 2 object\(s\) allocated from:\n"
                        r"    #0 0x[0-9a-f]+ in wref_new", text), f"lsan: no LSan block:\n{text}")
        check("SUMMARY: AddressSanitizer: 64 byte(s) leaked in 2 allocation(s)." in text, f"lsan: no LSan SUMMARY:\n{text}")
        check("ERROR: wref-check: leak" in text, "lsan: the wref finding is missing from the log")

    # halt-json
    rc, err, work = run(lib, borrow, "halt_on_error=1:report=text,json")
    docs = glob.glob(os.path.join(work, "wref-check.*.json"))
    if check(rc == 23 and len(docs) == 1, f"halt-json: exit {rc}, JSON {docs}"):
        doc = json.load(open(docs[0]))
        check(doc["complete"] is True and doc["summary"]["exit_status"] == 23 and len(doc["findings"]) == 1,
              f"halt-json: {doc['complete']} {doc['summary']}")

    # json-path: report=json only, to <log_path>.<pid>.json, no text on stderr but one line
    # saying where the report went (with the default prefix, an absolute path too)
    rc, err, work = run(lib, borrow, f"report=json:log_path={tmp}/r")
    docs = glob.glob(os.path.join(tmp, "r.*.json"))
    check(rc == 23 and len(docs) == 1 and "ERROR" not in err and not glob.glob(os.path.join(tmp, "r.[0-9]*[0-9]")),
          f"json-path: exit {rc}, files {os.listdir(tmp)}, stderr:\n{err}")
    if docs:
        check(re.fullmatch(r"==(\d+)==wref-check: JSON report \(1 finding\(s\)\) written to " + re.escape(docs[0]) + "\n",
                           err), f"json-path: expected one line naming {docs[0]} on stderr, got:\n{err}")
    rc, err, work = run(lib, borrow, "report=json")
    docs = glob.glob(os.path.join(work, "wref-check.*.json"))
    check(len(docs) == 1 and err == f"=={docs[0].split('.')[-2]}==wref-check: JSON report (1 finding(s)) written to "
          f"{os.path.realpath(docs[0])}\n", f"json-path: default prefix: {docs}, stderr:\n{err}")

    # json-names
    rc, err, work = run(lib, os.path.join(victims, "victim_hostile_names_preload"), "report=json")
    docs = glob.glob(os.path.join(work, "wref-check.*.json"))
    if check(rc == 23 and len(docs) == 1, f"json-names: exit {rc}, JSON {docs}"):
        try:
            doc = json.load(open(docs[0], encoding="utf-8"))
            name = doc["findings"][0]["object"]["type"]
            check(name == 'We"ird\\\n\x01\ufffd\u20ac', f"json-names: type name {name!r}")
        except ValueError as e:
            check(False, f"json-names: invalid JSON: {e}")

    # symlink-trap: the same pid (exec) finds symlinks at both of its report names
    trap_dir = tempfile.mkdtemp(prefix="wref-trap-")
    target = write(trap_dir, "target", "")
    env = dict(os.environ, LD_PRELOAD=lib, WREF_CHECK_OPTIONS=f"report=text,json:log_path={trap_dir}/r")
    p = subprocess.run([os.path.join(victims, "victim_symlink_trap_preload"), f"{trap_dir}/r", target],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    err = p.stderr.decode("utf-8", "replace")
    check(p.returncode == 23, f"symlink-trap: exit {p.returncode}\n{err}")
    check(open(target).read() == "", "symlink-trap: the symlink's target was written to")
    check("cannot create log file" in err and "ERROR: wref-check: leak" in err,
          f"symlink-trap: expected the warning and the report on stderr:\n{err}")
    docs = glob.glob(os.path.join(trap_dir, "r.*.1.json"))
    if check(len(docs) == 1, f"symlink-trap: no r.<pid>.1.json in {os.listdir(trap_dir)}"):
        check([f["kind"] for f in json.load(open(docs[0]))["findings"]] == ["leak"], "symlink-trap: JSON findings")

    for e in errors:
        print("FAIL: " + e)
    print("ok" if not errors else f"{len(errors)} failure(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
