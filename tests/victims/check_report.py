#!/usr/bin/env python3
"""check_report.py: run a victim program and check the checker's report against an .expect file.

usage: check_report.py --expect NAME.expect [--env NAME=VALUE]... [--json SCHEMA] [--show] -- PROGRAM [ARGS...]

The program runs with the caller's environment plus the --env settings (CTest passes
LD_PRELOAD this way, so only the program, not this script's interpreter, gets the checker).
--show prints the parsed report even when it passes. --json SCHEMA also asks for the JSON
report (report=text,json; the program runs in a temporary directory, where the checker writes
wref-check.<pid>.json), validates it against SCHEMA with /usr/bin/python3's jsonschema, and
checks that it holds the same findings as the text (kinds, order, stack labels, summaries). Its stderr is parsed into findings, each finding into sections:

    ==PID==ERROR: wref-check: KIND ...          head: starts a finding
    <what happened>                             what
        #0 0x... in fn file:line (module+0x..)  frames of section "@where" (where it happened)
    LABEL by thread TN here:  /  LABEL here:    starts section LABEL (its frames follow)
      other text                                extra lines
    SUMMARY: wref-check: KIND in FN             ends the finding
    SUMMARY: wref-check: N finding(s) in process PID: ...   the process summary

Expectation file syntax (one directive per line; lines starting with '#' and blank lines are ignored):

    exit N                      exit status N (signal SEGV: killed by SIGSEGV)
    kinds K=N[,K=N...]          exactly these findings, by kind; any other kind fails ("kinds"
                                alone: no finding at all)
    process-summary TEXT        the process SUMMARY line; @PID stands for the pid
    no-process-summary          there is none (the process died)
    finding KIND                the next finding of KIND (in report order); then, indented:
      head TEXT                   its first line contains TEXT
      what TEXT                   its second line contains TEXT
      section LABEL: F1 F2 ...    a section LABEL (@where for the first stack) whose frames
                                  include functions F1, F2... in this order (not necessarily
                                  adjacent); module:NAME matches a frame's module instead
                                  (NAME* is a prefix), @exe being the program's file name
      order L1 | L2 | ...         the history section labels, exactly, in this order
                                  ("order" alone: no history section at all)
      thread L1 == L2             sections L1 and L2 ran on the same thread (!= : different)
      extra TEXT                  a non-frame line of the finding contains TEXT
      extra-re REGEX              a non-frame line of the finding matches REGEX (re.search)
      summary TEXT                its SUMMARY line is exactly TEXT
"""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile

VALIDATE = """
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
doc = json.load(open(sys.argv[2]))
errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
for e in errors[:10]:
    print("  at", "/".join(str(p) for p in e.path), ":", e.message[:300])
sys.exit(1 if errors else 0)
"""


def check_json(schema, workdir, findings, finished, fail):
    """The JSON report matches the schema and the text report's findings."""
    paths = glob.glob(os.path.join(workdir, "wref-check.*.json"))
    if len(paths) != 1:
        fail(f"json: expected one wref-check.<pid>.json, found {paths}")
        return
    v = subprocess.run(["/usr/bin/python3", "-c", VALIDATE, schema, paths[0]],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if v.returncode != 0:
        fail("json: report does not match the schema (is python3-jsonschema installed?):\n" +
             v.stdout.decode("utf-8", "replace"))
        return
    doc = json.load(open(paths[0], encoding="utf-8"))
    if doc["complete"] != finished:
        fail(f"json: complete is {doc['complete']}, but the checker {'did' if finished else 'did not'} "
             "print its process summary")
    got = [f["kind"] for f in doc["findings"]]
    want = [f.kind for f in findings]
    if got != want:
        fail(f"json: findings {got}, text has {want}")
        return
    for j, t in zip(doc["findings"], findings):
        labels = [s["label"] for s in j["stacks"]]
        text_labels = (["where"] if t.sections[0][2] else []) + [s[0] for s in t.sections[1:]]
        if labels != text_labels:
            fail(f"json: {j['kind']}: stack labels {labels}, text has {text_labels}")
        if t.summary is not None and "SUMMARY: wref-check: " + j["summary"] != t.summary:
            fail(f"json: {j['kind']}: summary {j['summary']!r}, text has {t.summary!r}")
    if doc["summary"]["findings"] != len(findings):
        fail(f"json: summary counts {doc['summary']['findings']} findings, text has {len(findings)}")

HEAD = re.compile(r"^==(\d+)==ERROR: wref-check: (\S+)(.*)$")
THREAD_IN_HEAD = re.compile(r" in thread (T\d+)")
FRAME = re.compile(r"^    #(\d+) 0x[0-9a-f]+(?: in (\S+))?.*?(?: \(([^()+]+)\+0x[0-9a-f]+\))?$")
SECTION = re.compile(r"^(\S.*?)(?: by thread (T\d+))? here:$")
SUMMARY = re.compile(r"^SUMMARY: wref-check: (\S+)(?: in (.*)|(?: \(.*\)))$")
PROCESS_SUMMARY = re.compile(r"^SUMMARY: wref-check: \d+ finding\(s\) in process (\d+):")


class Finding:
    def __init__(self, kind, head, pid):
        self.kind, self.head, self.pid = kind, head, pid
        self.what = None
        self.sections = []          # [label, thread, [(fn, module)]]
        self.extra = []
        self.summary = None

    def section(self, label):
        for s in self.sections:
            if s[0] == label:
                return s
        return None


def parse(text):
    findings, process_summary, stray = [], None, []
    cur = None
    for line in text.splitlines():
        m = HEAD.match(line)
        if m:
            cur = Finding(m.group(2), line, m.group(1))
            t = THREAD_IN_HEAD.search(m.group(3))
            cur.sections.append(["@where", t.group(1) if t else None, []])
            findings.append(cur)
            continue
        if PROCESS_SUMMARY.match(line):
            process_summary = line
            cur = None
            continue
        if cur is None:
            if line.strip():
                stray.append(line)
            continue
        if cur.what is None:
            cur.what = line
            continue
        m = FRAME.match(line)
        if m:
            cur.sections[-1][2].append((m.group(2), m.group(3)))
            continue
        if SUMMARY.match(line):
            cur.summary = line
            cur = None
            continue
        m = SECTION.match(line)
        if m and not line.startswith(" "):
            cur.sections.append([m.group(1), m.group(2), []])
            continue
        cur.extra.append(line)
    return findings, process_summary, stray


def describe(f):
    out = [f"    {f.head}"]
    for label, thread, frames in f.sections:
        names = " ".join(fn or f"({mod})" for fn, mod in frames)
        out.append(f"      [{label}{' ' + thread if thread else ''}] {names}")
    return "\n".join(out)


def main(argv):
    if "--" not in argv:
        sys.exit(__doc__)
    split = argv.index("--")
    opts, cmd = argv[:split], argv[split + 1:]
    expect_path = opts[opts.index("--expect") + 1]
    exe = os.path.basename(cmd[0])
    env = dict(os.environ)
    for i, o in enumerate(opts):
        if o == "--env":
            name, _, value = opts[i + 1].partition("=")
            env[name] = value

    schema = opts[opts.index("--json") + 1] if "--json" in opts else None
    workdir = tempfile.mkdtemp(prefix="wref-victim-") if schema else None
    if schema:
        env["WREF_CHECK_OPTIONS"] = ":".join(x for x in (env.get("WREF_CHECK_OPTIONS"), "report=text,json") if x)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120, env=env, cwd=workdir)
    report = proc.stderr.decode("utf-8", "replace")
    findings, process_summary, stray = parse(report)
    errors = []

    def fail(msg):
        errors.append(msg)

    pending = list(findings)
    cur = None
    for lineno, raw in enumerate(open(expect_path, encoding="utf-8"), 1):
        line = raw.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{os.path.basename(expect_path)}:{lineno}"
        word, _, arg = line.strip().partition(" ")
        arg = arg.replace("@exe", exe)
        if word == "exit":
            if arg == "signal SEGV":
                if proc.returncode != -signal.SIGSEGV:
                    fail(f"{where}: expected death by SIGSEGV, got exit status {proc.returncode}")
            elif proc.returncode != int(arg):
                fail(f"{where}: expected exit status {arg}, got {proc.returncode}")
        elif word == "kinds":
            want = {}
            for item in (arg.split(",") if arg.strip() else []):   # "kinds" alone: none
                k, _, n = item.strip().partition("=")
                want[k] = int(n)
            got = {}
            for f in findings:
                got[f.kind] = got.get(f.kind, 0) + 1
            if got != want:
                fail(f"{where}: expected findings {want}, got {got}")
        elif word == "process-summary":
            pid = findings[0].pid if findings else "?"
            text = arg.replace("@PID", pid)
            if process_summary != text:
                fail(f"{where}: expected process summary\n      {text!r}\n    got {process_summary!r}")
        elif word == "no-process-summary":
            if process_summary is not None:
                fail(f"{where}: expected no process summary, got {process_summary!r}")
        elif word == "finding":
            cur = next((f for f in pending if f.kind == arg), None)
            if cur is None:
                fail(f"{where}: no (more) {arg} finding in the report")
            else:
                pending.remove(cur)
        elif cur is None:
            if word in ("head", "what", "section", "order", "thread", "extra", "extra-re", "summary"):
                continue   # the finding is missing: already reported
            fail(f"{where}: unknown directive {word!r}")
        elif word == "head":
            if arg not in cur.head:
                fail(f"{where}: {cur.kind}: first line does not contain {arg!r}:\n      {cur.head}")
        elif word == "what":
            if not cur.what or arg not in cur.what:
                fail(f"{where}: {cur.kind}: description does not contain {arg!r}:\n      {cur.what}")
        elif word == "section":
            label, _, names = arg.partition(":")
            label = label.strip()
            sec = cur.section(label)
            if sec is None:
                fail(f"{where}: {cur.kind}: no section {label!r}; sections: {[s[0] for s in cur.sections]}")
                continue
            frames, i = sec[2], 0
            for name in names.split():
                if name.startswith("module:"):
                    mod = name[len("module:"):]
                    if mod.endswith("*"):
                        hit = lambda fr: fr[1] is not None and fr[1].startswith(mod[:-1])
                    else:
                        hit = lambda fr: fr[1] == mod
                else:
                    hit = lambda fr: fr[0] == name
                while i < len(frames) and not hit(frames[i]):
                    i += 1
                if i == len(frames):
                    fail(f"{where}: {cur.kind}: section {label!r} has no frame {name!r} (in this order); "
                         f"frames: {[fr[0] or fr[1] for fr in frames]}")
                    break
                i += 1
        elif word == "order":
            want = [x.strip() for x in arg.split("|")] if arg.strip() else []
            got = [s[0] for s in cur.sections[1:]]
            if want != got:
                fail(f"{where}: {cur.kind}: history sections {got}, expected {want}")
        elif word == "thread":
            m = re.match(r"(.+?)\s*(==|!=)\s*(.+)$", arg)
            a, b = cur.section(m.group(1).strip()), cur.section(m.group(3).strip())
            if not a or not b or not a[1] or not b[1]:
                fail(f"{where}: {cur.kind}: cannot compare threads of {m.group(1)!r} and {m.group(3)!r}")
            elif (a[1] == b[1]) != (m.group(2) == "=="):
                fail(f"{where}: {cur.kind}: {a[0]!r} on {a[1]}, {b[0]!r} on {b[1]}: expected {m.group(2)}")
        elif word == "extra":
            if not any(arg in x for x in cur.extra):
                fail(f"{where}: {cur.kind}: no line contains {arg!r}; extra lines: {cur.extra}")
        elif word == "extra-re":
            if not any(re.search(arg, x) for x in cur.extra):
                fail(f"{where}: {cur.kind}: no line matches {arg!r}; extra lines: {cur.extra}")
        elif word == "summary":
            if cur.summary != arg:
                fail(f"{where}: {cur.kind}: expected {arg!r}, got {cur.summary!r}")
        else:
            fail(f"{where}: unknown directive {word!r}")

    if schema:
        check_json(schema, workdir, findings, process_summary is not None or (proc.returncode == 0 and not findings), fail)
        for p in glob.glob(os.path.join(workdir, "*")):
            os.unlink(p)
        os.rmdir(workdir)

    for f in findings:
        if f.summary is None:
            fail(f"{f.kind}: finding has no SUMMARY line (cut short?)")
    if stray:
        fail("stderr has lines outside any finding:\n      " + "\n      ".join(stray[:20]))

    if errors or "--show" in opts:
        print(f"command: {' '.join(cmd)}\nexit status: {proc.returncode}")
        print("parsed findings:")
        for f in findings:
            print(describe(f))
        print("---- stderr ----\n" + report + "---- end ----")
    if errors:
        print(f"FAILED ({len(errors)}):")
        for e in errors:
            print("  " + e)
        return 1
    print(f"ok: {len(findings)} finding(s) as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
