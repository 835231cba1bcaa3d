#!/usr/bin/env python3
"""check_report.py: run a victim program and check the checker's report against an .expect file.

usage: check_report.py --expect NAME.expect [--env NAME=VALUE]... [--json SCHEMA] [--show] [--gen] -- PROGRAM [ARGS...]

The program runs with the caller's environment plus the --env settings (CTest passes
LD_PRELOAD this way, so only the program, not this script's interpreter, gets the checker).
--show prints the parsed report even when it passes. --gen prints an expectation file written
from this run (to be read and edited, never pasted blindly). --json SCHEMA also asks for the
JSON report (report=text,json; the program runs in a temporary directory, where the checker
writes wref-check.<pid>.json), validates it against SCHEMA with /usr/bin/python3's jsonschema,
and checks that it holds the same findings as the text: kinds, order, stack labels, threads,
summaries, and every frame of every stack (pc, function, file, line, module, offset).

The report (stderr) is parsed into findings, each finding into stacks:

    ==PID==ERROR: wref-check: KIND ...          head: starts a finding
    <what happened>                             what
        #0 0x... in fn file:line (module+0x..)  frames of stack "@where" (where it happened)
    LABEL by thread TN here:  /  LABEL here:    starts stack LABEL (its frames follow)
      other text                                extra lines
    SUMMARY: wref-check: KIND in FN             ends the finding
    SUMMARY: wref-check: N finding(s) in process PID: ...   the process summary
    ==PID==wref-check: N repeat(s) not printed: ...          the folded repeats (fold_repeats=1),
      KIND on TYPE#SERIAL in FN: and N more like it: ...     one line per finding that had some

Expectation file syntax: tests/README.md, "Victim expectations". In short (one directive per
line; '#' comments and blank lines are ignored; @exe stands for the program's file name,
@checker for libwref-check.so[.0]):

    exit N | exit signal SEGV   kinds K=N,...   process-summary TEXT   no-process-summary   note-re RE
    finding KIND                the next finding of KIND in report order; every finding of the
                                report must be claimed by one "finding" directive
      head TEXT / what TEXT / extra TEXT / extra-re REGEX / summary TEXT
      repeats N                   the finding had N repeats folded into it (the exit line
                                  "KIND on TYPE#SERIAL ...: and N more like it"; JSON "repeats");
                                  a finding with repeats and no "repeats" directive fails
      thread L1 == L2 | L1 != L2
      stack LABEL [by thread TN]   one stack, then EVERY one of its frames, one per line:
        #0 FN FILE:LINE (MODULE)     the frame as printed, without pc, directory and offset
        #1 (MODULE)                  an unsymbolized frame (guard-page reports)
        #2 ... (@checker)            checker frames between a callback and its API entry
        #3 <start>                   the C library's process or thread entry (and below)
      The stacks of a finding are listed all, in report order ("@where" first when the
      report has one); a finding with no "stack" directive has no stack at all.
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

HEAD = re.compile(r"^==(\d+)==ERROR: wref-check: (\S+)(.*)$")
THREAD_IN_HEAD = re.compile(r" in thread (T\d+)")
# #N 0xPC[ in FN][ FILE:LINE][ (MODULE+0xOFF)][REST]
FRAME = re.compile(r"^    #(\d+) (0x[0-9a-f]+)(?: in (\S+))?(?: (\S+):(\d+))?(?: \((.+?)\+(0x[0-9a-f]+)\))?(.*)$")
SECTION = re.compile(r"^(\S.*?)(?: by thread (T\d+))? here:$")
SUMMARY = re.compile(r"^SUMMARY: wref-check: (\S+)(?: in (.*)|(?: \(.*\)))$")
PROCESS_SUMMARY = re.compile(r"^SUMMARY: wref-check: \d+ finding\(s\) in process (\d+):")
REPEATS_HEAD = re.compile(r"^==\d+==wref-check: (\d+) repeat\(s\) not printed: ")
# the finding as "KIND on TYPE#SERIAL" (or "KIND at 0xADDR"), then its count
REPEATS_LINE = re.compile(r"^  (\S+ (?:on \S+#\d+|at 0x[0-9a-f]+)) in .*: and (\d+) more like it: same kind and stacks, "
                          r"other (?:objects|addresses) \(the last: .*\)$")


def module_name(module, exe):
    """@exe for the program; @checker for libwref-check, whichever name it was loaded by
    (libwref-check.so when preloaded by path, libwref-check.so.0 when linked)."""
    if module == exe:
        return "@exe"
    if re.fullmatch(r"libwref-check\.so(\.\d+)*", module):
        return "@checker"
    return module


class Frame:
    def __init__(self, m):
        self.index = int(m.group(1))
        self.pc = int(m.group(2), 16)
        self.function = m.group(3)
        self.file = m.group(4)
        self.line = int(m.group(5)) if m.group(5) else None
        self.module = m.group(6)
        self.offset = int(m.group(7), 16) if m.group(7) else None
        self.rest = m.group(8)

    def canonical(self, exe, index=None):
        """The frame as an .expect file writes it: no pc, no directory, no module offset, and
        no file:line inside the checker (they depend on the library's build type)."""
        s = f"#{self.index if index is None else index}"
        if self.function:
            s += " " + self.function
        mod = module_name(self.module, exe) if self.module else None
        if self.file and mod != "@checker":
            s += f" {os.path.basename(self.file)}:{self.line}"
        if mod:
            s += f" ({mod})"
        return s + self.rest


# Where a stack starts: the C library's (or a sanitizer runtime's) process or thread entry.
START = {"__libc_start_call_main", "__libc_start_main", "_start", "start_thread", "clone3", "clone",
         "__tsan_thread_start_func", "asan_thread_start"}


# Unsymbolized frames (guard-page reports) in a sanitizer runtime: only a sanitizer build has
# them (TSan wraps every thread's start), so they are left out and the rest stays exact.
SANITIZER_RUNTIME = re.compile(r"lib(tsan|asan|ubsan)\.so")


def canonical_frames(frames, exe):
    """The frames of one stack as an .expect file lists them. Frame #0 and the frames above the
    first non-checker frame are kept exactly. Below it, a run of two or more checker frames
    (the runtime calling back into the program: a callback, a destroy function) is shown as
    "#N ... (@checker)" for all but its last frame, the API entry the program called: how many
    internal frames there are depends on the library's build type (inlining), not on the
    program."""
    out, i, n = [], 0, 0
    seen_user = False
    while i < len(frames):
        fr = frames[i]
        inside = fr.module is not None and module_name(fr.module, exe) == "@checker"
        if inside and seen_user:
            j = i
            while j + 1 < len(frames) and frames[j + 1].module is not None and \
                    module_name(frames[j + 1].module, exe) == "@checker":
                j += 1
            if j > i:
                out.append(f"#{n} ... (@checker)")
                n += 1
            out.append(frames[j].canonical(exe, n))
            n += 1
            i = j + 1
            continue
        if fr.function is None and SANITIZER_RUNTIME.match(os.path.basename(fr.module or "")):
            i += 1   # a sanitizer's thread-start wrapper, in an unsymbolized (signal) stack
            continue
        if not inside:
            seen_user = True
        if fr.function in START and module_name(fr.module or "", exe) != "@exe":
            out.append(f"#{n} <start>")
            break
        out.append(fr.canonical(exe, n))
        n += 1
        i += 1
    return out


class Finding:
    def __init__(self, kind, head, pid):
        self.kind, self.head, self.pid = kind, head, pid
        self.what = None
        self.sections = []          # [label, thread, [Frame]]
        self.extra = []
        self.summary = None
        self.repeats = 0            # folded into it (the exit line "... and N more like it")
        self.repeats_checked = False

    def section(self, label):
        for s in self.sections:
            if s[0] == label:
                return s
        return None

    def stacks(self):
        """The stacks the report shows: @where when it has frames, then the history."""
        return [s for i, s in enumerate(self.sections) if i > 0 or s[2]]


JSON_WHERE = re.compile(r"==\d+==wref-check: JSON report \(\d+ finding\(s\)\) written to (/.*)$")


def parse(text):
    findings, process_summary, stray = [], None, []
    cur = None
    repeats_total = None
    for line in text.splitlines():
        m = REPEATS_HEAD.match(line)
        if m:
            repeats_total = int(m.group(1))
            cur = None
            continue
        m = REPEATS_LINE.match(line) if repeats_total is not None and cur is None else None
        if m:
            named = [f for f in findings if re.search(r"ERROR: wref-check: %s( at| \(|$)" % re.escape(m.group(1)), f.head)]
            if len(named) == 1 and not named[0].repeats:
                named[0].repeats = int(m.group(2))
            else:
                stray.append(line + "   <- names no single finding")
            continue
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
            cur.sections[-1][2].append(Frame(m))
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
    if repeats_total is not None and repeats_total != sum(f.repeats for f in findings):
        stray.append(f"(the repeats line counts {repeats_total}, the findings' lines {sum(f.repeats for f in findings)})")
    return findings, process_summary, stray


def check_json(schema, workdir, findings, finished, fail):
    """The JSON report matches the schema and the text report: findings, stacks, frames."""
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
        text_stacks = t.stacks()
        labels = [s["label"] for s in j["stacks"]]
        text_labels = [("where" if s[0] == "@where" else s[0]) for s in text_stacks]
        if labels != text_labels:
            fail(f"json: {j['kind']}: stack labels {labels}, text has {text_labels}")
            continue
        for js, ts in zip(j["stacks"], text_stacks):
            if ts[1] is not None and js["thread"] != int(ts[1][1:]):
                fail(f"json: {j['kind']}: stack {ts[0]!r} on thread {js['thread']}, text has {ts[1]}")
            jf, tf = js["frames"], ts[2]
            if len(jf) != len(tf):
                fail(f"json: {j['kind']}: stack {ts[0]!r} has {len(jf)} frame(s), text has {len(tf)}")
                continue
            for a, b in zip(jf, tf):
                # A frame the text prints without a function (guard-page reports) may be
                # symbolized in the JSON; everything the text shows must be the same.
                mism = []
                if int(a["pc"], 16) != b.pc:
                    mism.append("pc")
                if a["module"] is not None and os.path.basename(a["module"]) != b.module:
                    mism.append("module")
                if a["offset"] is not None and b.offset is not None and int(a["offset"], 16) != b.offset:
                    mism.append("offset")
                if b.function is not None and (a["function"] or "??") != b.function:
                    mism.append("function")
                if b.file is not None and (a["file"] != b.file or a["line"] != b.line):
                    mism.append("file:line")
                if b.function is not None and b.file is None and a["file"] is not None:
                    mism.append("file:line")
                if mism:
                    fail(f"json: {j['kind']}: stack {ts[0]!r} frame #{b.index}: {', '.join(mism)} differ: "
                         f"json {a}, text {b.canonical('')!r}")
        if t.summary is not None and "SUMMARY: wref-check: " + j["summary"] != t.summary:
            fail(f"json: {j['kind']}: summary {j['summary']!r}, text has {t.summary!r}")
        if j.get("repeats", 0) != t.repeats:
            fail(f"json: {j['kind']} #{j['id']}: repeats {j.get('repeats')}, text has {t.repeats}")
    repeats = sum(f.repeats for f in findings)
    if doc["summary"]["findings"] != len(findings) + repeats:
        fail(f"json: summary counts {doc['summary']['findings']} findings, text has {len(findings)} and {repeats} repeat(s)")
    if doc["summary"].get("repeats", 0) != repeats:
        fail(f"json: summary counts {doc['summary'].get('repeats')} repeats, text has {repeats}")


def describe(f, exe):
    out = [f"    {f.head}" + (f"  (+{f.repeats} repeat(s))" if f.repeats else "")]
    for label, thread, frames in f.sections:
        out.append(f"      [{label}{' ' + thread if thread else ''}]")
        out.extend("        " + x for x in canonical_frames(frames, exe))
    return "\n".join(out)


def generate(proc, findings, process_summary, exe):
    """An expectation file for this run, for a human to read and edit."""
    out = []
    if proc.returncode == -signal.SIGSEGV:
        out.append("exit signal SEGV")
    else:
        out.append(f"exit {proc.returncode}")
    counts = {}
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    out.append(("kinds " + ",".join(f"{k}={n}" for k, n in counts.items())).rstrip())
    for f in findings:
        out.append(f"finding {f.kind}")
        head = re.sub(r"^==\d+==", "", f.head)
        before, sep, after = head.partition(" at 0x")
        out.append(f"  head {before}" + (" at 0x" if sep else ""))
        after = re.sub(r"^[0-9a-f]+ ?", "", after)
        after = re.sub(r" \(tid \d+\)$", "", after)
        if after:
            out.append(f"  head {after}")
        if f.what is not None:
            out.append(f"  what {re.sub(r'0x[0-9a-f]+', '0x', f.what)}")
        for label, thread, frames in f.stacks():
            out.append(f"  stack {label}" + (f" by thread {thread}" if thread and label != "@where" else ""))
            out.extend("    " + x for x in canonical_frames(frames, exe))
        for x in f.extra:
            out.append(f"  extra {x.strip()}")
        if f.summary:
            out.append(f"  summary {f.summary}")
        if f.repeats:
            out.append(f"  repeats {f.repeats}")
    if process_summary:
        out.append("process-summary " + re.sub(r"in process \d+:", "in process @PID:", process_summary))
    else:
        out.append("no-process-summary")
    return "\n".join(out) + "\n"


class Expected:
    """The stacks an .expect file lists for one finding."""
    def __init__(self, finding, where):
        self.finding, self.where = finding, where
        self.stacks = []            # [(label, thread, [frame text], where)]


def check_stacks(exp, exe, fail):
    f = exp.finding
    got = f.stacks()
    want_labels = [s[0] for s in exp.stacks]
    got_labels = [s[0] for s in got]
    if want_labels != got_labels:
        fail(f"{exp.where}: {f.kind}: stacks {got_labels}, expected {want_labels}")
        return
    for (label, thread, frames, where), sec in zip(exp.stacks, got):
        if label != "@where" and thread != "*" and thread != sec[1]:
            fail(f"{where}: {f.kind}: stack {label!r} on thread {sec[1]}, expected {thread}")
        actual = canonical_frames(sec[2], exe)
        if actual != frames:
            diff = []
            for i in range(max(len(actual), len(frames))):
                a = actual[i] if i < len(actual) else "(none)"
                w = frames[i] if i < len(frames) else "(none)"
                diff.append(f"        {'  ' if a == w else '! '}got {a:<60} expected {w}")
            fail(f"{where}: {f.kind}: stack {label!r} frames differ:\n" + "\n".join(diff))


def main(argv):
    if "--" not in argv:
        sys.exit(__doc__)
    split = argv.index("--")
    opts, cmd = argv[:split], argv[split + 1:]
    expect_path = opts[opts.index("--expect") + 1] if "--expect" in opts else None
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
    if "--gen" in opts:
        sys.stdout.write(generate(proc, findings, process_summary, exe))
        return 0
    errors = []

    def fail(msg):
        errors.append(msg)

    # report=json: the checker says on stderr where the report went, one line per process that
    # reached its exit (a process killed by a signal cannot)
    json_lines = [m for m in map(JSON_WHERE.match, stray) if m]
    stray = [x for x in stray if not JSON_WHERE.match(x)]
    if schema:
        if proc.returncode in (0, 23) and not json_lines:   # exit() ran: 0 or the findings status
            fail("report=json: no '==PID==wref-check: JSON report ... written to PATH' line on stderr")
        for m in json_lines:
            if os.path.dirname(m.group(1)) != os.path.realpath(workdir) or not os.path.exists(m.group(1)):
                fail(f"report=json: the line names {m.group(1)}, not a report in {workdir}")
    elif json_lines:
        fail("a JSON report line without report=json: " + json_lines[0].group(0))

    pending = list(findings)
    cur = None          # the Finding being checked
    exp = None          # its Expected stacks
    stack = None        # the frame list being collected
    checked = []

    def close():
        if exp is not None:
            checked.append(exp)
            check_stacks(exp, exe, fail)

    for lineno, raw in enumerate(open(expect_path, encoding="utf-8"), 1):
        line = raw.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#") and not re.match(r"^\s*#\d+ ", line):
            continue
        where = f"{os.path.basename(expect_path)}:{lineno}"
        word, _, arg = line.strip().partition(" ")
        if re.match(r"^#\d+$", word):
            if stack is None:
                fail(f"{where}: a frame outside any 'stack'")
            else:
                stack.append(line.strip())
            continue
        stack = None
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
        elif word == "note-re":
            # a line outside every finding (a warning) that matches RE whole; @PID = the pid
            pid = findings[0].pid if findings else "?"
            rx = re.compile(arg.replace("@PID", pid))
            hit = next((x for x in stray if rx.fullmatch(x)), None)
            if hit is None:
                fail(f"{where}: no line outside the findings matches {arg!r}")
            else:
                stray.remove(hit)
        elif word == "finding":
            close()
            exp = None
            cur = next((f for f in pending if f.kind == arg), None)
            if cur is None:
                fail(f"{where}: no (more) {arg} finding in the report")
            else:
                pending.remove(cur)
                exp = Expected(cur, where)
        elif cur is None or exp is None:
            if word in ("head", "what", "stack", "thread", "extra", "extra-re", "summary", "repeats"):
                continue   # the finding is missing: already reported
            fail(f"{where}: unknown directive {word!r}")
        elif word == "head":
            if arg not in cur.head:
                fail(f"{where}: {cur.kind}: first line does not contain {arg!r}:\n      {cur.head}")
        elif word == "what":
            if not cur.what or arg not in cur.what:
                fail(f"{where}: {cur.kind}: description does not contain {arg!r}:\n      {cur.what}")
        elif word == "stack":
            m = re.match(r"^(.*?)(?: by thread (T\d+|\*))?$", arg.strip())
            stack = []
            exp.stacks.append((m.group(1), m.group(2), stack, where))
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
        elif word == "repeats":
            cur.repeats_checked = True
            if cur.repeats != int(arg):
                fail(f"{where}: {cur.kind}: expected {arg} repeat(s) folded into it, got {cur.repeats}")
        else:
            fail(f"{where}: unknown directive {word!r}")
    close()
    for f in pending:
        fail(f"{f.kind}: a finding of the report that no 'finding' directive claims:\n{describe(f, exe)}")

    if schema:
        check_json(schema, workdir, findings, process_summary is not None or (proc.returncode == 0 and not findings), fail)
        for p in glob.glob(os.path.join(workdir, "*")):
            os.unlink(p)
        os.rmdir(workdir)

    for f in findings:
        if f.summary is None:
            fail(f"{f.kind}: finding has no SUMMARY line (cut short?)")
        if f.repeats and not f.repeats_checked:
            fail(f"{f.kind}: {f.repeats} repeat(s) were folded into the finding, and no 'repeats' directive says so:\n"
                 f"      {f.head}")
    if stray:
        fail("stderr has lines outside any finding:\n      " + "\n      ".join(stray[:20]))

    if errors or "--show" in opts:
        print(f"command: {' '.join(cmd)}\nexit status: {proc.returncode}")
        print("parsed findings:")
        for f in findings:
            print(describe(f, exe))
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
