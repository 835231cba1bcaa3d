#!/usr/bin/env python3
"""run_report_test.py CASE: one test of `wref-check report` (tools/report/, docs/report-tool.md).

Environment (tests/report/CMakeLists.txt): WREF_TOOL (the wref-check binary), FIXTURES
(tests/report/fixtures), WORK (scratch dir), SYM_BINARY (a victim built with -g, for
symbolize), CHECK_LIB (libwref-check.so), VICTIMS_BIN (build/tests/victims), SARIF_DIR
(tests/report/sarif, where scripts/setup-npm.sh installs the Multitool), PY_MODULES (where
tests/python built victim_borrow.so for Debian's python3.11, for the python_* cases). Exits 0
on pass, 77 to skip (with the reason on stdout), 1 on the first failed check (with KEEP_GOING=1:
after all checks, each failed one printed).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

TOOL = os.environ["WREF_TOOL"]
FIX = os.environ["FIXTURES"]
KINDS = ["dangling-borrow", "use-after-free", "use-after-clear", "invalid-object", "heap-overflow",
         "write-after-free", "clear-live", "leak", "callback-never-ran", "callback-suppressed",
         "callback-error"]
# Kinds only the CPython frontend reports (docs/python.md): in the rule table, not in the
# wref fixtures.
PYTHON_KINDS = ["dangling-weakref"]
A, B = FIX + "/dangling_borrow_a.json", FIX + "/dangling_borrow_b.json"
ALL, CLEAN = FIX + "/all_kinds.json", FIX + "/clean.json"


def work(case):
    d = os.path.join(os.environ["WORK"], case)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def fail(msg, r=None):
    print("FAIL:", msg)
    if r is not None:
        print("--- stdout:\n" + r.stdout[:4000] + "\n--- stderr:\n" + r.stderr[:4000])
    sys.exit(1)


# KEEP_GOING=1: a failed check is printed and the case goes on (exit 1 at the end), to see
# which checks fail against another build of the tool.
KEEP_GOING = os.environ.get("KEEP_GOING") == "1"
failed = []


def check(cond, msg, r=None):
    if not cond and KEEP_GOING:
        print("FAIL (going on):", msg)
        failed.append(msg)
        return
    if not cond:
        fail(msg, r)
    print("ok:", msg)


def report(*args, stdin=None, status=None):
    r = subprocess.run([TOOL, "report"] + list(args), input=stdin, capture_output=True, text=True)
    if status is not None:
        check(r.returncode == status, "wref-check report %s: exit %d (expected %d)"
              % (" ".join(a[-40:] for a in args), r.returncode, status), r)
    return r


def case_schema():
    import jsonschema
    schema = json.load(open(os.path.join(FIX, "..", "..", "..", "docs", "report-schema.json")))
    v = jsonschema.Draft202012Validator(schema)
    for name in sorted(os.listdir(FIX)):
        v.validate(json.load(open(os.path.join(FIX, name))))
        check(True, "%s conforms to docs/report-schema.json" % name)


def case_kinds():
    r = report("--format=json", ALL, status=1)
    d = json.loads(r.stdout)
    check(sorted(d["totals"]["by_kind"]) == sorted(KINDS), "every kind is loaded and kept apart")
    check(all(v == 1 for v in d["totals"]["by_kind"].values()), "one finding per kind")
    t = report(ALL, status=1).stdout
    for k in KINDS:
        check("] %s in victim_%s (all_kinds.c)" % (k, k.replace("-", "_")) in t, "text names %s" % k)


def case_merge():
    d = json.loads(report("--format=json", A, B, status=1).stdout)
    check(d["totals"]["distinct"] == 1 and d["totals"]["occurrences"] == 2,
          "same bug, other pids/addresses/offsets/paths: 1 finding, 2 occurrences")
    g = d["findings"][0]
    check(g["processes"] == 2 and [i["report"] for i in g["instances"]] == [0, 1],
          "the finding occurs in both processes")
    t = report(A, B, status=1).stdout
    check("2 occurrences in 2 processes" in t, "text says '2 occurrences in 2 processes'")
    d = json.loads(report("--format=json", A, ALL, B, status=1).stdout)
    check(d["totals"]["distinct"] == 12, "different bugs stay separate (11 + 1)")
    d = json.loads(report("--format=json", FIX, status=1).stdout)
    check(len(d["reports"]) == 4 and d["totals"]["occurrences"] == 13, "a directory loads every *.json")


def fingerprint_of(doc):
    r = report("--format=json", "-", stdin=json.dumps(doc))
    return json.loads(r.stdout)["findings"][0]["fingerprint"]


def case_fingerprint():
    a = json.load(open(A))
    fa = fingerprint_of(a)
    check(re.fullmatch(r"[0-9a-f]{16}", fa) is not None, "fingerprint is 16 hex digits")
    check(fa == fingerprint_of(json.load(open(B))), "two runs/builds give the same fingerprint")
    a2 = json.load(open(A))
    for fr in a2["findings"][0]["stacks"][0]["frames"]:
        fr["line"] = (fr["line"] or 1) + 7
        fr["file"] = fr["file"] and "/elsewhere/" + os.path.basename(fr["file"])
    check(fingerprint_of(a2) == fa, "lines and directories do not change it")
    a3 = json.load(open(A))
    a3["findings"][0]["stacks"][0]["frames"][1]["function"] = "another_function"
    check(fingerprint_of(a3) != fa, "another user function changes it")
    a4 = json.load(open(A))
    a4["findings"][0]["stacks"][0]["frames"][0]["function"] = "wref_decref"
    check(fingerprint_of(a4) == fa, "frames in libwref do not count")
    a5 = json.load(open(A))
    a5["findings"][0]["kind"] = "use-after-free"
    check(fingerprint_of(a5) != fa, "the kind counts")
    # The CPython interpreter's frames are not user frames (the checker's rule: libpython*, or
    # an executable python* that is not a .so); an extension module named python* is one.
    def with_frame(module, function):
        doc = json.load(open(A))
        fr = dict(doc["findings"][0]["stacks"][0]["frames"][1], module=module, function=function, file=None, line=None)
        doc["findings"][0]["stacks"][0]["frames"].insert(1, fr)
        return doc
    check(fingerprint_of(with_frame("/opt/py/lib/libpython3.12.so.1.0", "PyObject_Repr")) == fa
          and fingerprint_of(with_frame("/usr/bin/python3.11", "_PyEval_EvalFrameDefault")) == fa,
          "interpreter frames (libpython3.12.so.1.0, python3.11) do not count")
    check(fingerprint_of(with_frame("/x/python_ext.cpython-311-x86_64-linux-gnu.so", "ext_call")) != fa,
          "an extension module named python*.so counts")


def case_exit():
    report(CLEAN, status=0)
    report(A, status=1)
    report("--exit-zero", A, status=0)
    # Every verb: only the report formats say "there are findings" with 1.
    for fmt in ("text", "sarif", "junit", "github", "dot", "svg", "json"):
        report("--format=" + fmt, A, status=1)
        report("--format=" + fmt, CLEAN, status=0)
        report("--format=" + fmt, "--exit-zero", A, status=0)
    r = report("--gen-suppressions", A, status=0)
    check("dangling-borrow:" in r.stdout, "--gen-suppressions printed its entries and exited 0", r)
    report("--gen-suppressions", CLEAN, status=0)
    w = work("exit")
    r = report("--format=symbolize", A, "-o", os.path.join(w, "sym.json"), status=0)
    check(json.load(open(os.path.join(w, "sym.json")))["findings"], "--format=symbolize wrote the findings and exited 0", r)
    report("--format=symbolize", CLEAN, status=0)
    # Some inputs skipped: 3, whatever the findings and --exit-zero; no report at all: 2.
    bad = os.path.join(w, "bad.json")
    open(bad, "w").write("{")
    for args in ([A, bad], [CLEAN, bad], ["--exit-zero", A, bad], ["--gen-suppressions", A, bad],
                 ["--format=symbolize", CLEAN, bad]):
        report(*args, status=3)
    os.makedirs(os.path.join(w, "empty"))
    for args in ([bad], [os.path.join(w, "empty")], ["--gen-suppressions", os.path.join(w, "empty")],
                 ["--format=symbolize", os.path.join(w, "empty")], ["--exit-zero", bad]):
        report(*args, status=2)
    r = report("--help", status=0)
    for opt in ["--format", "text", "sarif", "junit", "github", "dot", "svg", "json", "symbolize",
                "--output", "--color", "--source-root", "--gen-suppressions", "--exit-zero", "Exit status",
                "--help-uri-base", "--information-uri", "3 some inputs were skipped"]:
        check(opt in r.stdout, "--help documents %s" % opt)
    for args in (["--format=xml", A], ["--color=sometimes", A], [], ["--bogus", A], ["--format"]):
        r = report(*args, status=2)
        check(len(r.stderr.splitlines()) == 1 and "see wref-check report --help" in r.stderr,
              "usage error %s: one line" % args, r)


def case_text():
    t = report("--color=never", "--source-root=/home/ci/wref", A, B, status=1).stdout
    check("\033[" not in t, "--color=never: no ANSI escapes")
    check("#1 victim_use_borrowed tests/victims/dangling_borrow.c:18 (victim_dangling_borrow_preload+0x11b8)" in t,
          "frames as 'function file:line (module+offset)', file relative to --source-root")
    check(t.rstrip().splitlines()[-1] == "TOTAL: 1 distinct finding (2 occurrences) in 2 reports: 1 dangling-borrow",
          "closing totals line")
    check(t.count("borrowed, thread T0:") == 1, "only the first occurrence's stacks are printed")
    t = report("--color=always", A, status=1).stdout
    check("\033[1;31mdangling-borrow\033[0m" in t, "--color=always colours the kind")
    o = os.path.join(work("text"), "out.txt")
    report("-o", o, A, status=1)
    check("\033[" not in open(o).read(), "-o FILE: no colour with auto")


def case_sarif():
    d = json.loads(report("--format=sarif", "--source-root=/home/ci/wref", A, ALL, B, status=1).stdout)
    check(d["version"] == "2.1.0" and d["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json", "version, $schema")
    run = d["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    check(run["tool"]["driver"]["name"] == "wref-check" and [r["id"] for r in rules] == KINDS + PYTHON_KINDS, "a rule per kind")
    check(all(r["shortDescription"]["text"] and r["fullDescription"]["text"]
              and r["defaultConfiguration"]["level"] in ("error", "warning") for r in rules),
          "rules have descriptions and a default level")
    # No invented URLs: by default helpUri is this machine's docs/reports.md with the kind's
    # own section as the fragment, for exactly the kinds that file has a section for, and
    # informationUri is docs/wref-check.md; both files exist.
    docs = os.path.join(FIX, "..", "..", "..", "docs")
    sections = set(re.findall(r"^## ([a-z-]+)$", open(os.path.join(docs, "reports.md")).read(), re.M))
    for r in rules:
        if r["id"] in sections:
            check(r.get("helpUri") == "file://" + os.path.realpath(os.path.join(docs, "reports.md")) + "#" + r["id"],
                  "rule %s: helpUri is reports.md#%s (%s)" % (r["id"], r["id"], r.get("helpUri")))
        else:
            check("helpUri" not in r, "rule %s: no helpUri, reports.md has no section for it" % r["id"])
    check(run["tool"]["driver"]["informationUri"] == "file://" + os.path.realpath(os.path.join(docs, "wref-check.md")),
          "informationUri is docs/wref-check.md: %s" % run["tool"]["driver"]["informationUri"])
    # ...configurable: the URIs given, or none at all
    base = "https://example.org/wref/docs/reports.md"
    d2 = json.loads(report("--format=sarif", "--help-uri-base=" + base, "--information-uri=https://example.org/wref",
                           A, status=1).stdout)
    drv = d2["runs"][0]["tool"]["driver"]
    check(drv["informationUri"] == "https://example.org/wref"
          and [r.get("helpUri") for r in drv["rules"]] == [base + "#" + r["id"] if r["id"] in sections else None
                                                            for r in drv["rules"]],
          "--help-uri-base and --information-uri are used as given")
    drv = json.loads(report("--format=sarif", "--help-uri-base=", "--information-uri=", A, status=1).stdout)["runs"][0]["tool"]["driver"]
    check("informationUri" not in drv and not any("helpUri" in r for r in drv["rules"]),
          "--help-uri-base= --information-uri=: no URL at all")
    check(run["originalUriBaseIds"]["SRCROOT"]["uri"] == "file:///home/ci/wref/", "SRCROOT base")
    res = run["results"]
    check(len(res) == 12, "one result per de-duplicated finding")
    db = [r for r in res if r["ruleId"] == "dangling-borrow" and "victim_use_borrowed" in r["message"]["text"]][0]
    loc = db["locations"][0]["physicalLocation"]
    check(loc["artifactLocation"] == {"uri": "tests/victims/dangling_borrow.c", "uriBaseId": "SRCROOT"}
          and loc["region"]["startLine"] == 18, "location: first user frame, relative to SRCROOT")
    check(re.fullmatch(r"[0-9a-f]{16}", db["partialFingerprints"]["wrefFingerprint/v1"]) is not None, "partialFingerprints")
    check([x["message"]["text"] for x in db["relatedLocations"]]
          == ["borrowed", "destroyed (the last reference dropped)", "created"], "relatedLocations per history stack")
    check(db["relatedLocations"][0]["physicalLocation"]["region"]["startLine"] == 8, "related location is the first user frame")
    check(len(db["stacks"]) == 4 and len(db["stacks"][0]["frames"]) == 4, "stacks with every frame")
    check(db["properties"]["occurrenceCount"] == 2 and db["properties"]["processCount"] == 2, "counts in properties")
    check(db["level"] == "error" and [r for r in res if r["ruleId"] == "callback-error"][0]["level"] == "warning", "levels")
    d = json.loads(report("--format=sarif", A, status=1).stdout)
    uri = d["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    check(uri == {"uri": "file:///home/ci/wref/tests/victims/dangling_borrow.c"}, "absolute file:// URI without --source-root")


def multitool(mt, path, name):
    """Validates the SARIF file `path` with the Multitool `mt`: it must run and report no
    error or warning."""
    out = path[:-len(".sarif")] + ".validation.sarif"
    r = subprocess.run([mt, "validate", path, "-o", out], capture_output=True, text=True)
    check(r.returncode == 0, "Multitool ran on %s" % name, r)
    problems = [(x["ruleId"], x["message"].get("arguments")) for x in json.load(open(out))["runs"][0].get("results", [])
                if x.get("level", "warning") in ("error", "warning")]
    check(not problems, "Multitool: no error or warning for %s%s" % (name, problems and ": %s" % problems))


def case_sarif_validate():
    sd = os.environ["SARIF_DIR"]
    exe = os.path.join(sd, "node_modules", ".bin", "sarif-multitool")
    if not shutil.which("npm"):
        print("SKIP: npm is not installed; the SARIF Multitool validation needs it (scripts/setup-npm.sh)")
        sys.exit(77)
    if not os.path.exists(exe):
        fail("%s missing: run scripts/setup-npm.sh (npm is installed)" % exe)
    w = work("sarif_validate")
    for name, args in (("all", [A, ALL, B, "--source-root=/home/ci/wref"]), ("abs", [A]), ("clean", [CLEAN])):
        path = os.path.join(w, name + ".sarif")
        report("--format=sarif", "-o", path, *args)
        multitool(exe, path, name)


def case_junit():
    x = report("--format=junit", A, ALL, B, status=1).stdout
    root = ET.fromstring(x)
    suites = root.findall("testsuite")
    check([s.get("name") for s in suites] == KINDS, "one testsuite per kind")
    cases = root.findall("testsuite/testcase")
    check(len(cases) == 12 and int(root.get("failures")) == 12, "one failed testcase per finding")
    db = [c for c in cases if "victim_use_borrowed" in c.get("name")][0]
    check(db.get("classname") == "victim_dangling_borrow_preload", "classname is the program basename")
    check(db.get("name").startswith("dangling-borrow in victim_use_borrowed"), "name = kind + fingerprint summary")
    check("2 occurrences in 2 processes" in db.find("failure").text, "failure holds the text report")
    ho = [c for c in cases if "heap_overflow" in c.get("name")][0].find("failure")
    check(ho.get("message") == 'the heap-overflow message, with "quotes" <tags> & 100% a:b,c', "escaping round-trips")


def case_github():
    lines = report("--format=github", "--source-root=/home/ci/wref", A, ALL, B, status=1).stdout.splitlines()
    check(len(lines) == 12, "one annotation per finding")
    check("::error file=tests/victims/dangling_borrow.c,line=18,title=wref-check dangling-borrow::"
          "dangling-borrow in victim_use_borrowed (dangling_borrow.c) < main (dangling_borrow.c): object given "
          "a new reference (incref): a borrowed pointer (from wref_get_object) used after its object was "
          "destroyed (2 occurrences in 2 processes)" in lines, "::error line with file relative to --source-root")
    check(any(l.startswith("::warning file=tests/victims/all_kinds.c,line=21,title=wref-check callback-error::") for l in lines),
          "::warning for severity warning")
    check(any("100%25 a:b,c" in l for l in lines), "message escaping: % -> %25")
    doc = json.load(open(A))
    doc["findings"][0]["stacks"][0]["frames"][1]["file"] = "/x/a,b:c%d.c"
    doc["findings"][0]["message"] = "two\nlines\r"
    l = report("--format=github", "-", stdin=json.dumps(doc)).stdout
    check("file=/x/a%2Cb%3Ac%25d.c,line=18," in l, "property escaping: , : %")
    check("two%0Alines%0D" in l, "message escaping: newline, carriage return")


def case_dot():
    d = report("--format=dot", ALL, A, status=1).stdout
    check("subgraph cluster_0" in d and 'label="all_kinds (pid 3003)"' in d, "a cluster per process")
    check("p0_1 -> p0_2 [color=red, penwidth=3, style=bold]" in d and "p0_2 -> p0_1 [color=red, penwidth=3, style=bold]" in d,
          "cycle edges highlighted bold red")
    check(re.search(r"p0_2 -> p0_3;", d) is not None, "edge out of the cycle is plain")
    check(re.search(r'p0_1 \[label="Node#1\\n32 bytes at 0x5555aaaa0040", fillcolor="#ff8080", color=red, penwidth=3\]', d) is not None,
          "cycle member: red, bold red border; type, serial, size and address")
    check('p0_3 [label="Payload#3\\n32 bytes at 0x5555aaaa00c0", fillcolor="#d0d0d0"]' in d, "indirect leak grey")
    check('p0_5 -> p0_4 [style=dashed, label="callback pending"]' in d, "weakref: dashed edge, callback pending")
    check("p0_f8 " not in d and 'p0_f1 [label="dangling-borrow #1\\lWidget#1, 32 bytes at 0x5555aaaa0040\\l'
          'where: victim_dangling_borrow (all_kinds.c:11)\\lcreated: make_object (all_kinds.c:51)\\l", shape=note' in d,
          "a finding no object covers is a note with its object and stacks; the leak (in the graph) is not")
    check('label="victim_dangling_borrow_preload (pid 1001)\\nno leak graph in this report";' in d
          and "p1_f1 [label=\"dangling-borrow #1\\l" in d,
          "a report without leak_graph: a cluster that says so, with its findings")
    d = report("--format=dot", CLEAN, status=0).stdout
    check("cluster" not in d, "a report with neither a leak graph nor findings has no cluster")
    svg = report("--format=svg", ALL, status=1).stdout
    root = ET.fromstring(svg)
    check(root.tag.endswith("svg") and "Node#1" in svg, "dot -Tsvg renders it")
    env = dict(os.environ, PATH="/nonexistent")
    r = subprocess.run([TOOL, "report", "--format=svg", ALL], capture_output=True, text=True, env=env)
    check(r.returncode == 2 and "Graphviz" in r.stderr and "not in PATH" in r.stderr, "clear error when dot is missing", r)


def case_json():
    d = json.loads(report("--format=json", A, B, CLEAN, status=1).stdout)
    check(d["format"] == "wref-check-merged" and d["version"] == 1, "format, version")
    check([r["pid"] for r in d["reports"]] == [1001, 2002, 4004], "reports in load order")
    g = d["findings"][0]
    check(g["kind"] == "dangling-borrow" and g["occurrences"] == 2 and g["first"]["id"] == 1
          and g["first"]["stacks"][0]["label"] == "where", "group with the first occurrence as in its report")
    check(d["totals"] == {"distinct": 1, "occurrences": 2, "reports": 3, "by_kind": {"dangling-borrow": 1}}, "totals")


def case_suppressions():
    out = report("--gen-suppressions", A, ALL, B, status=0).stdout.splitlines()
    check(len(out) == 24 and all(l.startswith("# ") for l in out[0::2]), "a comment then an entry per finding")
    # the narrowest entry: the object's type and the top user frame together
    check("dangling-borrow:type=Widget:frame=victim_use_borrowed" in out and "leak:type=Node:frame=victim_leak" in out,
          "kind:type=Type:frame=function entries")
    check(out[out.index("dangling-borrow:type=Widget:frame=victim_use_borrowed") - 1].startswith(
        "# dangling-borrow in victim_use_borrowed (dangling_borrow.c)"), "comment is the summary")
    doc = json.load(open(A))
    for s in doc["findings"][0]["stacks"]:
        s["frames"] = [f for f in s["frames"] if os.path.basename(f["module"] or "").startswith("libwref")]
    out = report("--gen-suppressions", "-", stdin=json.dumps(doc)).stdout.splitlines()
    check(out[1] == "dangling-borrow:type=Widget", "kind:type=Type without a user frame")


def case_symbolize():
    w = work("symbolize")
    big = os.path.join(w, "small.json")
    gen = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen_big_report.py")
    subprocess.run([sys.executable, gen, "--binary", os.environ["SYM_BINARY"], "--library",
                    os.environ["CHECK_LIB"], "--findings", "20", "--graph-objects", "10", "-o", big], check=True)
    out = os.path.join(w, "sym.json")
    r = report("--format=symbolize", big, "-o", out, status=0)
    check(r.stderr == "", "no warning", r)
    d = json.load(open(out))
    user = [f for fd in d["findings"] for s in fd["stacks"] for f in s["frames"] if f["module"] == os.environ["SYM_BINARY"]]
    named = [f for f in user if f["function"] and f["file"] and f["line"]]
    check(len(user) > 50 and len(named) > 0.8 * len(user), "%d of %d user frames got function/file/line" % (len(named), len(user)))
    check(any(f["function"] == "main" and f["file"].endswith(".c") for f in named), "main is found with its .c file")
    # build-id mismatch: skipped with a warning
    doc = json.load(open(big))
    for fd in doc["findings"]:
        for s in fd["stacks"]:
            for f in s["frames"]:
                if f["module"] == os.environ["SYM_BINARY"]:
                    f["build_id"] = "00ff"
    r = report("--format=symbolize", "-", stdin=json.dumps(doc))
    check(r.returncode == 0 and "build ID" in r.stderr and len(r.stderr.splitlines()) == 1, "build ID mismatch: one warning", r)
    check(json.loads(r.stdout)["findings"][0]["stacks"][0]["frames"][1]["function"] is None, "mismatched frames left alone")
    # symbolized output is still a valid report that loads
    report("--format=json", out, status=1)
    # an -O2 inline chain (tests/victims/inline_chain.c): offline, every level at its own
    # call-site line, exactly as the checker symbolized it live
    exe = os.path.join(os.environ["VICTIMS_BIN"], "victim_inline_chain_O2")
    env = dict(os.environ, LD_PRELOAD=os.environ["CHECK_LIB"], WREF_CHECK_OPTIONS="report=json:log_path=%s/inl" % w,
               ASAN_OPTIONS="verify_asan_link_order=0:detect_leaks=0")
    subprocess.run([exe], env=env, capture_output=True)
    inl = [os.path.join(w, n) for n in os.listdir(w) if n.startswith("inl.")]
    check(len(inl) == 1, "inline_chain_O2 wrote one report")
    doc = json.load(open(inl[0]))
    mine = lambda fs: [(f["function"], f["file"], f["line"], f["inlined"]) for f in fs if f["module"] == exe]
    live = mine(doc["findings"][0]["stacks"][0]["frames"])
    check([x[0] for x in live][:4] == ["victim_inner", "victim_middle", "victim_outer", "victim_entry"],
          "the checker's live stack has the whole chain: %s" % live)
    for fd in doc["findings"]:
        for st in fd["stacks"]:
            st["frames"] = [dict(f, function=None, file=None, line=None) for f in st["frames"] if not f["inlined"]]
    r = report("--format=symbolize", "-", stdin=json.dumps(doc), status=0)
    offline = mine(json.loads(r.stdout)["findings"][0]["stacks"][0]["frames"])
    check(offline == live, "offline symbolization of the stripped report gives the same frames: %s" % offline, r)
    # several inputs need -o DIR
    report("--format=symbolize", big, A, status=2)
    report("--format=symbolize", big, A, "-o", w, status=0)
    check(os.path.exists(os.path.join(w, "dangling_borrow_a.json")), "-o DIR writes one file per input")


def bad_inputs(w):
    good = open(A).read()
    deep = "[" * 100000 + "]" * 100000
    doc = json.loads(good)
    doc["findings"][0]["message"] = "x" * (1 << 20)
    big_string = json.dumps(doc)
    wrong_version = json.loads(good)
    wrong_version["version"] = 2
    no_kind = json.loads(good)
    del no_kind["findings"][0]["kind"]
    bad_frame = json.loads(good)
    bad_frame["findings"][0]["stacks"][1]["frames"][2]["line"] = "eight"
    bad_hex = json.loads(good)
    bad_hex["findings"][0]["address"] = "12"
    cases = {
        "truncated": (good[:len(good) // 2], "line"),
        "empty": ("", "end of file"),
        "not_object": ("[1, 2]", "expected a JSON object"),
        "wrong_version": (json.dumps(wrong_version), "unsupported report version"),
        "missing_kind": (json.dumps(no_kind), "findings[0]: missing required field 'kind'"),
        "wrong_type": (json.dumps(bad_frame), "findings[0].stacks[1].frames[2]: field 'line': expected an integer or null, got a string"),
        "bad_hex": (json.dumps(bad_hex), "field 'address': expected a hex string"),
        "deep_nesting": (deep, "maximum parsing depth"),
        "nul_byte": (good.replace('"where"', '"wh\\u0000ere"', 1), "NUL"),
        "binary": ("\x00\x01\xff garbage", "line"),
    }
    for name, (text, want) in cases.items():
        path = os.path.join(w, name + ".json")
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
        yield name, path, want
    path = os.path.join(w, "big_string.json")
    open(path, "w").write(big_string)
    yield "big_string_ok", path, None


WARNING = r"==\d+==WARNING: wref-check: "


def case_bad_input():
    w = work("bad_input")
    for name, path, want in bad_inputs(w):
        for fmt in ("text", "sarif", "symbolize"):
            r = report("--format=" + fmt, path)
            if want is None:
                check(r.returncode == (1 if fmt != "symbolize" else 0), "%s (1 MB string) loads (%s)" % (name, fmt), r)
                continue
            check(r.returncode == 2 and r.stdout == "", "%s alone: exit 2, nothing written (%s)" % (name, fmt), r)
            lines = r.stderr.splitlines()
            check(len(lines) == 2 and re.match(WARNING + re.escape(path) + ": ", lines[0]) and want in lines[0]
                  and lines[0].endswith("(input skipped)"),
                  "%s: one warning naming the file and '%s'" % (name, want), r)
            check(lines[1] == "wref-check report: no report could be read (1 input skipped); nothing written",
                  "%s: then the error that there is no report" % name, r)
    r = report(os.path.join(w, "no_such.json"), status=2)
    check(re.match(WARNING + re.escape(os.path.join(w, "no_such.json")) + ": No such file or directory", r.stderr),
          "missing file named", r)
    r = report(A, os.path.join(w, "truncated.json"), status=3)
    check("TOTAL: 1 distinct finding (1 occurrence) in 1 report" in r.stdout, "the good input is still reported", r)


def case_skip():
    """A directory of many reports with a truncated one and an invalid one among them."""
    w = work("skip")
    good, mixed = os.path.join(w, "good"), os.path.join(w, "mixed")
    os.makedirs(good)
    base = json.load(open(A))
    for i in range(8):
        base["program"]["pid"] = 5000 + i
        json.dump(base, open(os.path.join(good, "r%d.json" % i), "w"))
    shutil.copy(ALL, os.path.join(good, "all.json"))
    shutil.copytree(good, mixed)
    text = open(ALL).read()
    open(os.path.join(mixed, "r3b-truncated.json"), "w").write(text[:len(text) // 3])
    open(os.path.join(mixed, "r5b-invalid.json"), "w").write('{"format": "wref-check-report", "version": 1}')
    for fmt in ("text", "sarif", "junit", "github", "dot", "json"):
        want = report("--format=" + fmt, good, status=1).stdout
        out = os.path.join(w, "out." + fmt)
        r = report("--format=" + fmt, "-o", out, mixed, status=3)
        got = open(out).read().replace(mixed, good)
        if fmt == "json":   # the merged JSON names its input files
            want, got = json.loads(want), json.loads(got)
            check([x["file"] for x in got["reports"]] == [x["file"] for x in want["reports"]] and len(want["reports"]) == 9,
                  "json: the 9 good reports were merged")
            for d in (want, got):
                del d["reports"]
        check(got == want, "%s: the other reports were merged and written as without the bad files" % fmt, r)
        lines = r.stderr.splitlines()
        check(len(lines) == 3, "%s: a warning per bad file and one closing warning" % fmt, r)
        check(re.match(WARNING + re.escape(os.path.join(mixed, "r3b-truncated.json")) + ": line \\d+ column \\d+: .*\\(input skipped\\)$", lines[0]),
              "%s: the truncated file is named" % fmt, r)
        check(re.match(WARNING + re.escape(os.path.join(mixed, "r5b-invalid.json")) + ": missing required field 'tool' \\(input skipped\\)$", lines[1]),
              "%s: the invalid file is named with what is wrong" % fmt, r)
        check(re.match(WARNING + "2 inputs were skipped; the report holds the other 9 \\(exit status 3\\)$", lines[2]),
              "%s: the closing warning counts them" % fmt, r)


def case_empty():
    """No report at all is an error: an empty directory, a directory without *.json."""
    w = work("empty")
    empty, other = os.path.join(w, "empty"), os.path.join(w, "other")
    os.makedirs(empty)
    os.makedirs(other)
    open(os.path.join(other, "report.txt"), "w").write("not a json report\n")
    open(os.path.join(other, ".hidden.json"), "w").write("{}")
    for d in (empty, other):
        for args in (["--format=text"], ["--format=sarif"], ["--format=junit"], ["--gen-suppressions"],
                     ["--format=symbolize"], ["--exit-zero"]):
            out = os.path.join(w, "out")
            if os.path.exists(out):
                os.remove(out)
            r = report(*args, "-o", out, d, status=2)
            check(not os.path.exists(out), "%s %s: nothing written" % (os.path.basename(d), args[0]), r)
            lines = r.stderr.splitlines()
            check(len(lines) == 2 and re.match(WARNING + re.escape(d) + ": no \\*\\.json report in this directory$", lines[0]),
                  "%s %s: a warning names the directory" % (os.path.basename(d), args[0]), r)
            check(lines[1].startswith("wref-check report: no report found in %s; nothing written" % d),
                  "%s %s: an error says there is no report" % (os.path.basename(d), args[0]), r)
    r = report("-", stdin="", status=2)
    check(re.match(WARNING + "<stdin>: ", r.stderr), "empty stdin: named <stdin>", r)


def case_paths():
    """Paths are joined with one '/'; '..' and '.' in --source-root are resolved."""
    w = work("paths")
    d = os.path.join(w, "in")
    os.makedirs(d)
    shutil.copy(A, d)
    for spelling in (d + "/", d + "//"):
        j = json.loads(report("--format=json", spelling, status=1).stdout)
        f = j["reports"][0]["file"]
        check(f == os.path.join(d, "dangling_borrow_a.json"), "input %s: report file named %s" % (spelling, f))
    os.makedirs(os.path.join(w, "out"))
    report("--format=symbolize", d + "/", A, "-o", os.path.join(w, "out") + "/", status=0)
    check(sorted(os.listdir(os.path.join(w, "out"))) == ["dangling_borrow_a.json"], "symbolize -o DIR/: one file per input")
    t = report("--source-root=/home/ci/x/../wref/", A, status=1).stdout
    check(" tests/victims/dangling_borrow.c:18 " in t, "--source-root with '..' and a trailing '/' is resolved")


def case_cycle():
    """A reference cycle keeps its type names in every format."""
    want = "Node#1 -> Node#2 -> Node#1"
    t = report(ALL, status=1).stdout
    check("    reference cycle: %s\n" % want in t, "text: " + want)
    s = json.loads(report("--format=sarif", ALL, status=1).stdout)
    leak = [r for r in s["runs"][0]["results"] if r["ruleId"] == "leak"][0]
    check(leak["message"]["text"].endswith("; reference cycle: " + want) and leak["properties"]["cycle"] == want, "sarif: message and properties.cycle")
    g = report("--format=github", ALL, status=1).stdout
    check("; reference cycle: %s (1 occurrence" % want in g, "github: in the message")
    x = ET.fromstring(report("--format=junit", ALL, status=1).stdout)
    check(any("reference cycle: " + want in (f.text or "") for f in x.iter("failure")), "junit: in the failure text")
    j = json.loads(report("--format=json", ALL, status=1).stdout)
    check([f["cycle"] for f in j["findings"] if "cycle" in f] == [want], "json: the group's cycle")
    # Without a leak graph, only the finding's own object has a known type.
    doc = json.load(open(ALL))
    del doc["leak_graph"]
    t = report("-", stdin=json.dumps(doc), status=1).stdout
    check("reference cycle: Node#1 -> #2 -> Node#1\n" in t, "without leak_graph: unknown types are left out, not guessed")


def case_sarif_dotdot():
    """A victim whose source is compiled as dir/../file.c: SARIF URIs without dot segments,
    relative to --source-root, accepted by the Multitool."""
    w = work("sarif_dotdot")
    src = os.path.join(w, "src")
    os.makedirs(os.path.join(src, "sub"))
    shutil.copy(os.environ["LEAK_SOURCE"], os.path.join(src, "leak_one.c"))
    exe = os.path.join(w, "leak_dotdot")
    spelled = os.path.join(src, "sub", "..", "leak_one.c")
    cc = [os.environ.get("CC_FOR_TESTS", "cc"), "-g", "-O0", "-fno-omit-frame-pointer"] + \
        os.environ.get("SANITIZE_FLAGS", "").split() + ["-I" + os.environ["WREF_INCLUDE"], spelled,
        os.environ["WREF_LIB"], "-Wl,-rpath," + os.path.dirname(os.environ["WREF_LIB"]), "-o", exe]
    r = subprocess.run(cc, capture_output=True, text=True)
    check(r.returncode == 0, "compiled %s" % spelled, r)
    reports = os.path.join(w, "reports")
    os.makedirs(reports)
    env = dict(os.environ, LD_PRELOAD=os.environ["CHECK_LIB"],
               WREF_CHECK_OPTIONS="report=json:log_path=%s/r" % reports,
               ASAN_OPTIONS="verify_asan_link_order=0:detect_leaks=0")
    for _ in range(2):
        subprocess.run([exe], env=env, capture_output=True)
    files = sorted(os.listdir(reports))
    check(len(files) == 2, "two reports written")
    raw = json.load(open(os.path.join(reports, files[0])))
    check(any(f["file"] == spelled for fd in raw["findings"] for s in fd["stacks"] for f in s["frames"]),
          "the checker's report has the file as compiled, %s" % spelled)
    # libc's frames name files relative to glibc's build directory ("../sysdeps/...", what
    # libc6-dbg gives): one such frame in every run, whether or not libc6-dbg is installed
    libc = [f for fd in raw["findings"] for s in fd["stacks"] for f in s["frames"]
            if f["module"] and os.path.basename(f["module"]) == "libc.so.6"]
    check(libc, "the report has libc frames")
    libc[-1].update(file="../sysdeps/nptl/libc_start_call_main.h", line=58)
    json.dump(raw, open(os.path.join(reports, files[0]), "w"))
    g = report("--format=github", "--source-root=" + src, reports, status=1).stdout
    check("::error file=leak_one.c,line=10," in g, "github: file= normalized and relative to --source-root", r)
    mt = os.path.join(os.environ["SARIF_DIR"], "node_modules", ".bin", "sarif-multitool")
    for name, args in (("abs", []), ("root", ["--source-root=" + os.path.join(src, "sub", "..") + "/"])):
        path = os.path.join(w, name + ".sarif")
        report("--format=sarif", "-o", path, reports, *args, status=1)
        d = json.load(open(path))
        uris = []

        def walk(x):
            if isinstance(x, dict):
                if "artifactLocation" in x:
                    uris.append(x["artifactLocation"])
                for v in x.values():
                    walk(v)
            elif isinstance(x, list):
                for v in x:
                    walk(v)
        walk(d)
        check(uris, "%s: artifact locations present" % name)
        bad = [u["uri"] for u in uris if any(seg in (".", "..") for seg in u["uri"].split("/"))]
        check(not bad, "%s: no '.' or '..' segment in any URI (%d URIs)%s" % (name, len(uris), bad and ": %s" % bad))
        climbing = [u for u in uris if u.get("uriBaseId") == "LIBC_SO_6_BUILD_UP1"]
        check(climbing and all(not u["uri"].startswith("..") for u in climbing)
              and {"uri": "sysdeps/nptl/libc_start_call_main.h", "uriBaseId": "LIBC_SO_6_BUILD_UP1"} in climbing,
              "%s: libc's ../sysdeps/... has a physicalLocation, relative to LIBC_SO_6_BUILD_UP1" % name)
        base = d["runs"][0]["originalUriBaseIds"]["LIBC_SO_6_BUILD_UP1"]
        check("uri" not in base and "libc.so.6" in base["description"]["text"],
              "%s: originalUriBaseIds describes LIBC_SO_6_BUILD_UP1 (location unknown)" % name)
        mine = [u for u in uris if u["uri"].endswith("leak_one.c")]
        if name == "abs":
            check(mine and all(u == {"uri": "file://" + os.path.join(src, "leak_one.c")} for u in mine),
                  "abs: the victim's file is file://%s" % os.path.join(src, "leak_one.c"))
        else:
            check(mine and all(u == {"uri": "leak_one.c", "uriBaseId": "SRCROOT"} for u in mine),
                  "root: the victim's file is relative to SRCROOT")
            check(d["runs"][0]["originalUriBaseIds"]["SRCROOT"]["uri"] == "file://%s/" % src, "root: SRCROOT is file://%s/" % src)
        if not os.path.exists(mt):
            print("note: no SARIF Multitool (scripts/setup-npm.sh); structure checked only")
            continue
        multitool(mt, path, name)


def case_victims():
    """Runs every victim twice with report=json; converts; checks the merge."""
    vb = os.environ["VICTIMS_BIN"]
    lib = os.environ["CHECK_LIB"]
    w = work("victims")
    victims = sorted(n[len("victim_"):-len("_preload")] for n in os.listdir(vb)
                     if n.startswith("victim_") and n.endswith("_preload"))
    # Victims that are harnesses of their own (their victim.* tests run them): they need their
    # report on a pipe they control, or fork children with reports of their own, so a run with
    # log_path and suppressions is not theirs to make (callback_suppressed_unlocked's watchdog
    # waits 10 s for a report that the suppressed run never writes).
    victims = [v for v in victims if v not in ("callback_suppressed_unlocked", "fork_under_load")]
    check(len(victims) >= 13, "%d victims found" % len(victims))
    sup = os.path.join(w, "suppressions.txt")
    for run in ("run1", "run2", "suppressed"):
        if run == "suppressed":
            gen = report("--gen-suppressions", os.path.join(w, "run1"), status=0).stdout
            open(sup, "w").write(gen)
            # a failing callback's entry names the callback and its referent's type, never the
            # wref_decref that happened to run it (issue 11, "callbacks are named")
            lines = gen.splitlines()
            check("callback-error:type=Widget:frame=victim_failing_callback" in lines,
                  "--gen-suppressions: callback_error's entry is type and callback together")
            check(not any(l.startswith("callback-error:") and "wref_" in l for l in lines),
                  "--gen-suppressions: no callback-error entry names a wref_* function")
        os.makedirs(os.path.join(w, run))
        for v in victims:
            extra = (":guard=all" if v == "uaf_guard" else "") + (":suppressions=" + sup if run == "suppressed" else "")
            env = dict(os.environ, LD_PRELOAD=lib,
                       WREF_CHECK_OPTIONS="report=json:log_path=%s/%s/%s%s" % (w, run, v, extra))
            env["ASAN_OPTIONS"] = "verify_asan_link_order=0:detect_leaks=0:handle_segv=0"
            env["TSAN_OPTIONS"] = "handle_segv=0"
            subprocess.run([os.path.join(vb, "victim_%s_preload" % v)], env=env, capture_output=True)
        files = [f for f in os.listdir(os.path.join(w, run)) if f.endswith(".json")]
        check(len(files) == len(victims), "%s: a JSON report per victim (%d)" % (run, len(files)))
    r = report(os.path.join(w, "suppressed"), status=0)
    check("TOTAL: 0 distinct findings" in r.stdout, "--gen-suppressions entries silence every finding in the checker")
    one = json.loads(report("--format=json", os.path.join(w, "run1"), status=1).stdout)
    both = json.loads(report("--format=json", os.path.join(w, "run1"), os.path.join(w, "run2"), status=1).stdout)
    fp1 = sorted(g["fingerprint"] for g in one["findings"])
    fp2 = sorted(g["fingerprint"] for g in both["findings"])
    check(fp1 == fp2, "merging two runs: exactly one finding per bug (%d distinct)" % len(fp1))
    check(both["totals"]["occurrences"] == 2 * one["totals"]["occurrences"], "every occurrence counted")
    kinds = {g["kind"] for g in one["findings"]}
    check(kinds >= set(KINDS) - {"write-after-free"} or len(kinds) >= 10, "victims cover the kinds: %s" % sorted(kinds))
    for fmt in ("text", "sarif", "junit", "github", "dot", "svg", "json", "symbolize"):
        args = ["--format=" + fmt, os.path.join(w, "run1")]
        if fmt == "symbolize":
            args += ["-o", os.path.join(w, "run1")]   # in place
        r = report(*args, status=0 if fmt == "symbolize" else 1)
        check(r.stderr == "", "%s of every victim's report: no error" % fmt, r)
    r = report("--format=sarif", os.path.join(w, "run1"), status=1)
    check(len(json.loads(r.stdout)["runs"][0]["results"]) == len(fp1), "SARIF: a result per bug")
    t = report(os.path.join(w, "run1", [f for f in os.listdir(os.path.join(w, "run1")) if f.startswith("leak.")][0]),
               status=1).stdout
    check("reference cycle: Node#1 -> Node#2 -> Node#1\n" in t, "victim leak: the cycle with its type names")


def case_repeats():
    """A finding's in-process repeats (the checker's "repeats", fold_repeats=1) count as
    occurrences in every format; a bad value is rejected; a real run's totals are the checker's."""
    w = work("repeats")
    a = json.load(open(A))
    a["findings"][0]["repeats"] = 4
    pa = os.path.join(w, "a.json")
    json.dump(a, open(pa, "w"))
    t = report(pa, status=1).stdout
    check("5 occurrences in 1 process" in t, "text: 1 finding with 4 repeats is 5 occurrences")
    check("(5 occurrences)" in t, "text: the total counts them")
    d = json.loads(report("--format=json", pa, B, status=1).stdout)
    check(d["totals"]["occurrences"] == 6 and d["findings"][0]["occurrences"] == 6 and d["findings"][0]["processes"] == 2,
          "json: merged with the same bug of another process, 6 occurrences in 2 processes")
    r = json.loads(report("--format=sarif", pa, B, status=1).stdout)["runs"][0]["results"][0]
    check(r["properties"]["occurrenceCount"] == 6, "sarif: occurrenceCount 6")
    g = report("--format=github", pa, status=1).stdout
    check("(5 occurrences in 1 process)" in g, "github: 5 occurrences")
    check("(5 occurrences)" in report("--gen-suppressions", pa, status=0).stdout, "suppressions: 5 occurrences")
    a["findings"][0]["repeats"] = -1
    r = report("-", stdin=json.dumps(a))
    check(r.returncode == 2 and "findings[0]: field 'repeats'" in r.stderr, "a negative repeats is rejected", r)
    a["findings"][0]["repeats"] = "4"
    r = report("-", stdin=json.dumps(a))
    check(r.returncode == 2 and "field 'repeats': expected an integer" in r.stderr, "a string repeats is rejected", r)
    # the checker's own report: victim repeated_bug (1001 use-after-free, 3 leaks, 3 printed)
    env = dict(os.environ, LD_PRELOAD=os.environ["CHECK_LIB"], WREF_CHECK_OPTIONS="report=json:log_path=%s/r" % w)
    env["ASAN_OPTIONS"] = "verify_asan_link_order=0:detect_leaks=0:handle_segv=0"
    subprocess.run([os.path.join(os.environ["VICTIMS_BIN"], "victim_repeated_bug_preload")], env=env,
                   capture_output=True)
    files = [os.path.join(w, f) for f in os.listdir(w) if f.startswith("r.") and f.endswith(".json")]
    check(len(files) == 1, "repeated_bug: one JSON report")
    doc = json.load(open(files[0]))
    check(len(doc["findings"]) == 3 and doc["summary"]["findings"] == 1004 and doc["summary"]["repeats"] == 1001,
          "repeated_bug: 3 findings in the document, 1004 counted, 1001 of them repeats")
    d = json.loads(report("--format=json", files[0], status=1).stdout)
    occ = sorted((g["kind"], g["occurrences"]) for g in d["findings"])
    # both use-after-free call sites have one fingerprint (function@file, no lines)
    check(d["totals"]["occurrences"] == 1004 and occ == [("leak", 3), ("use-after-free", 1001)],
          "repeated_bug: the tool counts 1004 occurrences: %s" % occ)


# ---- CPython findings (report.python_*) ------------------------------------------------------
# Real reports: tests/report/python/python_bugs.py run as a script, and test_python_bugs.py run
# by pytest, under this tree's wref-check with report=json, on Debian's python3.11 with the
# victim_borrow.so that tests/python builds for it (PY_MODULES). Skipped (77) without them.

PY311 = "/usr/bin/python3.11"
PYCASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "python")
BUGS = os.path.join(PYCASES, "python_bugs.py")
TESTS = os.path.join(PYCASES, "test_python_bugs.py")
DB_TITLE = "dangling-borrow in use_after_callback (victim_borrow.c)"
PARSE_TITLE = "callback-error in bug_callback_parse (python_bugs.py)"
INDEX_TITLE = "callback-error in bug_callback_index (python_bugs.py)"
TEST_BORROW = "test_python_bugs.py::test_borrow (call)"
TEST_PARSE = "test_python_bugs.py::test_callback_parse (call)"


def py_markers():
    out = {}
    for path in (BUGS, TESTS):
        for n, line in enumerate(open(path), 1):
            for m in re.finditer(r"# @(\w+)", line):
                out[m.group(1)] = n
    return out


def python_modules():
    """The directory of the CPython victim modules (PY_MODULES); skips (77) without Debian's
    python3.11 or victim_borrow.so there."""
    mods = os.environ.get("PY_MODULES", "")
    if not os.path.exists(PY311):
        print("SKIP: %s is missing (Debian's python3.11)" % PY311)
        sys.exit(77)
    if not os.path.exists(os.path.join(mods, "victim_borrow.so")):
        print("SKIP: %s/victim_borrow.so is missing (tests/python builds it when /usr/include/python3.11 "
              "has Python.h: python3.11-dev)" % mods)
        sys.exit(77)
    return mods


def python_reports(case):
    """Runs the script (bugs borrow, callback_parse, callback_index) and the pytest file under
    wref-check; returns (work dir, script report path, pytest report path, checker text of the
    script run)."""
    mods = python_modules()
    if subprocess.run([PY311, "-c", "import pytest"], capture_output=True).returncode:
        print("SKIP: %s has no pytest (python3-pytest)" % PY311)
        sys.exit(77)
    w = work(case)
    env = {k: v for k, v in os.environ.items() if k not in ("ASAN_OPTIONS", "PYTEST_PLUGINS", "PYTHONPATH")}
    env.update(PYTHONDONTWRITEBYTECODE="1", WREF_PY_MODULES=mods)
    runs = (("script", [PY311, BUGS, mods, "borrow", "callback_parse", "callback_index"]),
            ("pytest", [PY311, "-m", "pytest", "-p", "no:cacheprovider", "-q", TESTS]))
    for name, cmd in runs:
        env["WREF_CHECK_OPTIONS"] = "report='text,json':log_path=%s/%s" % (w, name)
        r = subprocess.run([TOOL, "--"] + cmd, env=env, cwd=PYCASES, capture_output=True, text=True, timeout=120)
        check(r.returncode == 23, "%s run under wref-check: exit 23 (findings)" % name, r)
    found = {}
    for f in sorted(os.listdir(w)):
        found.setdefault(f.split(".")[0], []).append(os.path.join(w, f))
    texts = [f for f in found.get("script", []) if not f.endswith(".json")]
    check(len(found.get("script", [])) == 2 and len(found.get("pytest", [])) == 2 and len(texts) == 1,
          "each run wrote its text and JSON report: %s" % sorted(os.listdir(w)))
    js = lambda n: [f for f in found[n] if f.endswith(".json")][0]
    return w, js("script"), js("pytest"), open(texts[0]).read()


def case_python_fingerprint():
    """Titles and fingerprints name the extension, not the interpreter; the same bug from a
    script and under pytest is one finding; two callback errors stay two."""
    _, script, pytest, _ = python_reports("python_fingerprint")
    d = json.loads(report("--format=json", script, pytest, status=1).stdout)
    by = {g["summary"]: g for g in d["findings"]}
    check(sorted(by) == sorted([DB_TITLE, PARSE_TITLE, INDEX_TITLE]),
          "titles name the extension's function or, without one, the Python function: %s" % sorted(by))
    db = by.get(DB_TITLE, {})
    check(db.get("occurrences") == 2 and db.get("processes") == 2,
          "the dangling borrow from the script (call(fn, *args)) and from pytest (a direct call) is one finding")
    cb = sorted(g["occurrences"] for g in d["findings"] if g["kind"] == "callback-error")
    check(cb == [1, 2] and by.get(PARSE_TITLE, {}).get("occurrences") == 2,
          "two callback errors of one extension are two findings; the script's and pytest's parse one is one")


def py_blocks(text):
    """The Python frame blocks of a text report, each a list of its frame lines (stripped)."""
    blocks, cur = [], None
    for line in text.splitlines():
        if line.strip() == "Python frames:":
            cur = []
            blocks.append(cur)
        elif cur is not None and re.match(r"^\s+#\d+ ", line):
            cur.append(line.strip())
        else:
            cur = None
    return blocks


def case_python_text():
    """Text and JUnit: every stack's Python frames, as the checker prints them, and the test."""
    _, script, pytest, checker_text = python_reports("python_text")
    m = py_markers()
    t = report("--color=never", script, status=1).stdout
    want = py_blocks(checker_text)
    check(want and py_blocks(t) == want,
          "text: the Python frames of every stack, exactly as the checker's own text report has them "
          "(%d blocks)" % len(want), subprocess.CompletedProcess([], 0, t, checker_text))
    t = report("--color=never", "--source-root=" + PYCASES, script, status=1).stdout
    check(("      Python frames:\n        #0 python_bugs.py:%d in call\n        #1 python_bugs.py:%d in bug_borrow\n"
           "        #2 python_bugs.py:%d in <module>\n" % (m["call"], m["borrow"], m["main"])) in t,
          "text: 'Python frames:' then '#N file:line in function', relative to --source-root")
    t = report("--color=never", pytest, status=1).stdout
    check("    in test: %s\n" % TEST_BORROW in t and "    in test: %s\n" % TEST_PARSE in t,
          "text: each pytest finding names its test ('in test: ...')")
    root = ET.fromstring(report("--format=junit", script, pytest, status=1).stdout)
    cases = {c.get("name"): c for c in root.iter("testcase")}
    check(sorted(cases) == sorted([DB_TITLE, PARSE_TITLE, INDEX_TITLE]), "junit: testcases named after the extension")
    body = [c.find("failure").text for c in cases.values() if "callback-error" in c.get("name")][0]
    check("Python frames:" in body and "#0 %s:%d in bug_callback_parse" % (BUGS, m["parse_free"]) in body,
          "junit: the failure's text has the Python frames")
    root = ET.fromstring(report("--format=junit", pytest, status=1).stdout)
    props = {c.get("name"): [(p.get("name"), p.get("value")) for p in c.iter("property")] for c in root.iter("testcase")}
    body = [c for c in root.iter("testcase") if c.get("name").startswith("dangling-borrow")][0].find("failure").text
    check(props.get(DB_TITLE) == [("test", TEST_BORROW)] and props.get(PARSE_TITLE) == [("test", TEST_PARSE)]
          and "in test: %s" % TEST_BORROW in body,
          "junit: the pytest test as <property name=\"test\"> and in the failure's text")
    # guards (these passed before too): the other formats take the Python reports as well
    for fmt in ("dot", "svg", "json"):
        r = report("--format=" + fmt, script, pytest, status=1)
        check(r.stderr == "" and r.stdout, "%s of the Python reports: written, no error" % fmt, r)
    sym = os.path.join(os.path.dirname(script), "symbolized.json")
    report("--format=symbolize", pytest, "-o", sym, status=0)
    f = json.load(open(sym))["findings"][0]
    check(f.get("test") == TEST_BORROW and f["stacks"][0].get("python_frames") == json.load(open(pytest))["findings"][0]["stacks"][0]["python_frames"],
          "symbolize keeps each finding's test and Python frames")


def case_python_sarif():
    """SARIF and GitHub: a finding without an extension frame is located at its innermost
    Python frame; Python frames and the test are carried; the Multitool accepts it."""
    w, script, pytest, _ = python_reports("python_sarif")
    m = py_markers()
    d = json.loads(report("--format=sarif", "--source-root=" + PYCASES, script, pytest, status=1).stdout)
    res = {r["properties"]["fingerprintSummary"]: r for r in d["runs"][0]["results"]}
    for title, marker in ((PARSE_TITLE, "parse_free"), (INDEX_TITLE, "index_free")):
        loc = res.get(title, {}).get("locations", [{}])[0].get("physicalLocation")
        check(loc == {"artifactLocation": {"uri": "python_bugs.py", "uriBaseId": "SRCROOT"},
                      "region": {"startLine": m[marker]}},
              "sarif: %s is located at its innermost Python frame, python_bugs.py:%d (%s)" % (title, m[marker], loc))
    db = [r for r in d["runs"][0]["results"] if r["ruleId"] == "dangling-borrow"][0]
    stacks = [s["message"]["text"] for s in db["stacks"]]
    check(stacks == ["where", "where: Python frames", "borrowed", "borrowed: Python frames",
                     "destroyed (the last reference dropped)", "destroyed (the last reference dropped): Python frames",
                     "created", "created: Python frames"], "sarif: each stack is followed by its Python frames: %s" % stacks)
    py = db["stacks"][1]["frames"] if len(db["stacks"]) > 1 else []
    check([(f["location"].get("physicalLocation", {}).get("artifactLocation", {}).get("uri"),
            f["location"].get("physicalLocation", {}).get("region", {}).get("startLine"),
            f["location"].get("logicalLocations", [{}])[0].get("name")) for f in py]
          == [("python_bugs.py", m["call"], "call"), ("python_bugs.py", m["borrow"], "bug_borrow"),
              ("python_bugs.py", m["main"], "<module>")], "sarif: Python frames with file, line and function")
    d = json.loads(report("--format=sarif", pytest, status=1).stdout)
    tests = sorted(r["properties"].get("test", "") for r in d["runs"][0]["results"])
    check(tests == sorted([TEST_BORROW, TEST_PARSE]), "sarif: properties.test names the pytest test: %s" % tests)
    # The same report with the callback error's innermost Python frame a pseudo-file and the
    # next one relative (CPython gives relative names for files run by relative path): the
    # location is the next frame's, its file joined to the process's cwd.
    doc = json.load(open(script))
    cb = [f for f in doc["findings"] if f["kind"] == "callback-error"][0]
    py = cb["stacks"][0]["python_frames"]
    py[0]["file"] = os.path.relpath(py[0]["file"], PYCASES)
    py.insert(0, {"file": "<frozen importlib._bootstrap>", "line": 241, "function": "_call_with_frames_removed"})
    doc["program"]["cwd"] = PYCASES
    d = json.loads(report("--format=sarif", "--source-root=" + PYCASES, "-", stdin=json.dumps(doc), status=1).stdout)
    loc = [r for r in d["runs"][0]["results"] if r["ruleId"] == "callback-error"][0].get("locations", [{}])[0]
    check(loc.get("physicalLocation") == {"artifactLocation": {"uri": "python_bugs.py", "uriBaseId": "SRCROOT"},
                                          "region": {"startLine": m["parse_free"]}},
          "sarif: a pseudo-file frame is passed over, a relative file is joined to the report's cwd: %s" % loc)
    lines = report("--format=github", "--source-root=" + PYCASES, script, status=1).stdout.splitlines()
    ann = [l for l in lines if "title=wref-check callback-error::" in l and "failing_parse" in l]
    check(len(ann) == 1 and ann[0].startswith("::warning file=python_bugs.py,line=%d," % m["parse_free"])
          and "; Python: %s:%d in bug_callback_parse" % (BUGS, m["parse_free"]) in ann[0],
          "github: the callback error's annotation is at python_bugs.py:%d and names its Python frame" % m["parse_free"])
    lines = report("--format=github", pytest, status=1).stdout.splitlines()
    check(any(l.startswith("::error ") and "dangling-borrow" in l and l.endswith("; in test: %s (1 occurrence in 1 process)" % TEST_BORROW)
              for l in lines), "github: the annotation names the pytest test")
    mt = os.path.join(os.environ["SARIF_DIR"], "node_modules", ".bin", "sarif-multitool")
    if not os.path.exists(mt):
        print("note: no SARIF Multitool (scripts/setup-npm.sh); structure checked only")
        return
    for name, args in (("root", ["--source-root=" + PYCASES]), ("abs", [])):
        path = os.path.join(w, name + ".sarif")
        report("--format=sarif", "-o", path, script, pytest, *args, status=1)
        multitool(mt, path, "the Python findings (%s)" % name)


def python_run(w, name, bugs):
    """Runs python_bugs.py with `bugs` under wref-check (report=json, log_path w/name); returns
    the JSON report's path. Skips (77) without Debian's python3.11 or victim_borrow.so."""
    mods = python_modules()
    env = {k: v for k, v in os.environ.items() if k not in ("ASAN_OPTIONS", "PYTEST_PLUGINS", "PYTHONPATH")}
    env.update(PYTHONDONTWRITEBYTECODE="1", WREF_CHECK_OPTIONS="report=json:log_path=%s/%s" % (w, name))
    r = subprocess.run([TOOL, "--", PY311, BUGS, mods] + bugs, env=env, cwd=PYCASES, capture_output=True,
                       text=True, timeout=120)
    check(r.returncode == 23, "%s run under wref-check: exit 23 (findings)" % name, r)
    got = [f for f in os.listdir(w) if f.startswith(name + ".") and f.endswith(".json")]
    check(len(got) == 1, "%s wrote one JSON report: %s" % (name, sorted(os.listdir(w))))
    return os.path.join(w, got[0])


def case_python_dot():
    """dot and svg of real CPython reports: a callback-never-ran's leaked referent (type,
    serial, size, address, where it was created), its weakref and callback (with where it was
    registered); a lone dangling borrow (no object alive at exit) as a note with its history.
    The reports conform to the schema."""
    w = work("python_dot")
    m = py_markers()
    nr = python_run(w, "never_ran", ["never_ran"])
    db = python_run(w, "borrow", ["borrow"])
    doc = json.load(open(nr))
    f = doc["findings"]
    check([x["kind"] for x in f] == ["callback-never-ran"], "the never_ran run: one callback-never-ran")
    obj = f[0]["object"]
    d = report("--format=dot", nr, status=1).stdout
    node = 'p0_python_%d [label="Victim#%d\\n%d bytes at %s\\ncreated: %s:%d in bug_never_ran", fillcolor="#ff8080"];' % (
        obj["serial"], obj["serial"], obj["size"], obj["address"], BUGS, m["nr_new"])
    check(node in d, "the referent: its type, serial, size, address and creation line (%s)" % node,
          subprocess.CompletedProcess([], 0, d, ""))
    weak = re.search(r'p0_python_%d_w0 \[label="weakref\.ReferenceType at 0x[0-9a-f]+\\ncallback: <function on_never at 0x[0-9a-f]+>'
                     r'\\nregistered: subscribe \(victim_borrow\.c:\d+\), Python python_bugs\.py:%d in bug_never_ran", '
                     r'shape=ellipse' % (obj["serial"], m["nr_reg"]), d)
    check(weak is not None, "the weakref: its type and address, the callback's name and where it was registered",
          subprocess.CompletedProcess([], 0, d, ""))
    check('p0_python_%d_w0 -> p0_python_%d [style=dashed, label="callback pending"];' % (obj["serial"], obj["serial"]) in d,
          "a dashed edge from the weakref to its referent, callback pending")
    check("no objects alive at exit" not in d and "p0_f1 " not in d,
          "the finding is drawn as its objects, not again as a note")
    d = report("--format=dot", db, status=1).stdout
    check('label="python3.11 (pid %d)\\nno objects alive at exit";' % json.load(open(db))["program"]["pid"] in d,
          "a report with no object alive at exit says so")
    note = re.search(r'p0_f1 \[label="dangling-borrow #1\\lVictim#\d+, \d+ bytes at 0x[0-9a-f]+\\l'
                     r'where: use_after_callback \(victim_borrow\.c:\d+\), Python python_bugs\.py:%d in call\\l'
                     r'borrowed: use_after_callback .*\\lcreated: Python python_bugs\.py:%d in bug_borrow\\l", shape=note'
                     % (m["call"], m["borrow_new"]), d)
    check(note is not None, "the dangling borrow is a note: its object and its stacks, C and Python",
          subprocess.CompletedProcess([], 0, d, ""))
    svg = report("--format=svg", nr, db, status=1).stdout
    root = ET.fromstring(svg)
    texts = [t.text or "" for t in root.iter() if t.tag.endswith("text")]
    check(root.tag.endswith("svg") and any(t.startswith("Victim#%d" % obj["serial"]) for t in texts)
          and any("on_never" in t for t in texts) and any(t.startswith("dangling-borrow #1") for t in texts),
          "dot -Tsvg renders both: the referent, the callback, the dangling borrow's note")
    # the reports conform to the schema (Debian's python3-jsonschema, as report.schema)
    schema = os.path.join(FIX, "..", "..", "..", "docs", "report-schema.json")
    code = ("import json, sys, jsonschema\n"
            "v = jsonschema.Draft202012Validator(json.load(open(sys.argv[1])))\n"
            "for p in sys.argv[2:]:\n    v.validate(json.load(open(p)))\n")
    r = subprocess.run(["/usr/bin/python3", "-c", "import jsonschema"], capture_output=True)
    if r.returncode:
        print("note: no python3-jsonschema for /usr/bin/python3; the schema is not checked here")
        return
    r = subprocess.run(["/usr/bin/python3", "-c", code, schema, nr, db], capture_output=True, text=True)
    check(r.returncode == 0, "both reports conform to docs/report-schema.json", r)


def case_python_suppressions():
    """--gen-suppressions: the narrowest entries, which the checker then honours one by one."""
    w, script, pytest, _ = python_reports("python_suppressions")
    gen = report("--gen-suppressions", script, pytest, status=0).stdout
    entries = [l for l in gen.splitlines() if l and not l.startswith("#")]
    want = ["dangling-borrow:type=Victim:frame=use_after_callback", "callback-error:type=Victim:frame=bug_callback_parse",
            "callback-error:type=Victim:frame=bug_callback_index"]
    check(entries == want, "entries name the extension's function or the Python function: %s" % entries)
    mods = os.environ["PY_MODULES"]
    env = {k: v for k, v in os.environ.items() if k not in ("ASAN_OPTIONS", "PYTEST_PLUGINS", "PYTHONPATH")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # "all" is a guard (the old, broader entries silenced everything too); "parse only" is the
    # narrowness: its entry must leave the other callback error of the same extension reported.
    for label, keep, status, left in (("all", want, 0, []), ("parse only", want[1:2], 23, [DB_TITLE, INDEX_TITLE])):
        sup = os.path.join(w, "sup.txt")
        open(sup, "w").write("\n".join(keep) + "\n")
        d = os.path.join(w, label.replace(" ", "_"))
        os.makedirs(d)
        env["WREF_CHECK_OPTIONS"] = "report=json:log_path=%s/r:suppressions=%s" % (d, sup)
        r = subprocess.run([TOOL, "--", PY311, BUGS, mods, "borrow", "callback_parse", "callback_index"], env=env,
                           cwd=PYCASES, capture_output=True, text=True, timeout=120)
        check(r.returncode == status, "suppressed (%s): exit %d" % (label, status), r)
        got = sorted(g["summary"] for g in json.loads(report("--format=json", "--exit-zero", d, status=0).stdout)["findings"])
        check(got == sorted(left), "suppressed (%s): the checker reports exactly %s" % (label, left or "nothing"))


if __name__ == "__main__":
    name = sys.argv[1]
    globals()["case_" + name]()
    if failed:
        print("FAILED: %d check(s) of %s" % (len(failed), name))
        sys.exit(1)
    print("PASS:", name)
