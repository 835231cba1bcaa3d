#!/usr/bin/env python3
"""run_memcheck_test.py: `ctest -T memcheck` (LeakSanitizer type) must count wref's leaks.

Configures the nested project (project/CMakeLists.txt: tests `leaks` and `clean` running the
leaker linked against libwref-check with WREF_CHECK_OPTIONS=leak_format=lsan), runs
`ctest -T memcheck` in it, and asserts:
  - ctest's summary lists "Direct leak - 2" under "Memory checking results:" and
    "Defects: 2" for the test `leaks`;
  - Testing/<tag>/DynamicAnalysis.xml (Checker="LeakSanitizer") has, for `leaks`,
    exactly <Defect type="Direct leak">2</Defect> and no other defect, its log holds the
    LeakSanitizer-shaped lines (two "Direct leak of N byte(s) in 1 object(s) allocated from:",
    frames "#0 0x... in ...", one "SUMMARY: AddressSanitizer: N byte(s) leaked in 2
    allocation(s)."), and the test `clean` has no defect.
Exactly 2: the leaker leaks two objects from two allocation sites; a count of 4 would mean
the leak lines reached CTest twice (e.g. on stderr, which CTest also parses, and in the log).
Prints what it saw; exits 1 on the first failed assertion.
"""
import argparse
import base64
import glob
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib


def fail(msg, extra=""):
    print("memcheck test: FAIL: " + msg)
    if extra:
        print(extra)
    sys.exit(1)


def log_text(log):
    """The text of a <Log>: CTest compresses it (zlib, base64) unless --no-compress-output."""
    if log is None or not log.text:
        return ""
    if log.get("compression") == "gzip" and log.get("encoding") == "base64":
        return zlib.decompress(base64.b64decode(log.text), zlib.MAX_WBITS | 32).decode(errors="replace")
    return log.text


def main():
    ap = argparse.ArgumentParser()
    for opt in ("source", "build", "leaker", "cmake", "ctest"):
        ap.add_argument("--" + opt, required=True)
    a = ap.parse_args()

    shutil.rmtree(a.build, ignore_errors=True)
    env = dict(os.environ)
    env.pop("LSAN_OPTIONS", None)       # ctest sets it, with log_path
    env.pop("WREF_CHECK_OPTIONS", None)  # the project sets it
    cfg = [a.cmake, "-S", a.source, "-B", a.build, "-DWREF_LEAKER=" + a.leaker]
    extra_env = env.pop("WREF_MEMCHECK_ENV", "")
    if extra_env:
        cfg.append("-DWREF_MEMCHECK_ENV=" + extra_env)
    r = subprocess.run(cfg, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        fail("configuring the nested project failed", r.stdout)

    r = subprocess.run([a.ctest, "-T", "memcheck", "--output-on-failure"], cwd=a.build, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = r.stdout
    print(out)
    if r.returncode != 0:
        fail("ctest -T memcheck exited %d (the tests themselves must pass: exitcode=0)" % r.returncode)

    # ---- ctest's own summary
    if not re.search(r"^Memory checking results:\s*\n(?:.*\n)*?Direct leak - 2\s*$", out, re.M):
        fail('the memcheck summary does not say "Direct leak - 2"')
    m = re.search(r"MemCheck: #\d+: leaks\b.*Defects: (\d+)", out)
    if not m or m.group(1) != "2":
        fail("the memcheck summary does not give the test `leaks` 2 defects")
    if re.search(r"MemCheck: #\d+: clean\b.*Defects:", out):
        fail("the test `clean` has defects")

    # ---- Testing/<tag>/DynamicAnalysis.xml
    with open(os.path.join(a.build, "Testing", "TAG")) as f:
        tag = f.readline().strip()
    xml_path = os.path.join(a.build, "Testing", tag, "DynamicAnalysis.xml")
    if not os.path.exists(xml_path):
        fail("no %s; Testing/ holds %s" % (xml_path, glob.glob(os.path.join(a.build, "Testing", "*", "*"))))
    root = ET.parse(xml_path).getroot()
    da = root.find("DynamicAnalysis")
    if da is None or da.get("Checker") != "LeakSanitizer":
        fail('DynamicAnalysis.xml: no <DynamicAnalysis Checker="LeakSanitizer">')
    tests = {}
    for t in da.findall("Test"):
        name = t.findtext("Name")
        defects = {d.get("type"): int(d.text) for d in t.findall("Results/Defect")}
        tests[name] = (defects, log_text(t.find("Log")))
    print("DynamicAnalysis.xml: " + ", ".join(
        "%s: %s" % (n, d) for n, (d, _) in sorted(tests.items())))
    if "leaks" not in tests:
        fail("DynamicAnalysis.xml has no result for the test `leaks`")
    defects, log = tests["leaks"]
    if defects != {"Direct leak": 2}:
        fail("test `leaks`: defects %s, expected {'Direct leak': 2}" % defects, log)
    if "clean" in tests and tests["clean"][0]:
        fail("test `clean`: defects %s, expected none" % tests["clean"][0], tests["clean"][1])
    # the log is the test's output plus the log_path file, with <b>Direct leak</b> markers
    plain = re.sub(r"</?b>", "", log)
    heads = re.findall(r"^(?:Direct leak )?Direct leak of (\d+) byte\(s\) in (\d+) object\(s\) allocated from:$", plain, re.M)
    if len(heads) != 2 or any(n != "1" for _, n in heads):
        fail("expected 2 lines 'Direct leak of N byte(s) in 1 object(s) allocated from:', got %s" % heads, log)
    if not re.search(r"^    #0 0x[0-9a-f]+ in \S+", plain, re.M):
        fail("no '    #0 0x... in fn' frame after the leak lines", log)
    if not re.search(r"^    #\d+ 0x[0-9a-f]+ in make_(session|buffer)\b", plain, re.M):
        fail("the allocation stacks do not name the leaker's make_session/make_buffer", log)
    total = sum(int(b) for b, _ in heads)
    if not re.search(r"^SUMMARY: AddressSanitizer: %d byte\(s\) leaked in 2 allocation\(s\)\.$" % total, plain, re.M):
        fail("no 'SUMMARY: AddressSanitizer: %d byte(s) leaked in 2 allocation(s).' line" % total, log)
    print("memcheck test: PASS (2 direct leaks counted by ctest -T memcheck, %d bytes)" % total)


if __name__ == "__main__":
    main()
