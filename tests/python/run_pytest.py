#!/usr/bin/env python3
"""run_pytest.py: pytest under wref-check with the wref_pytest plugin (python/wref_pytest.py).

usage: run_pytest.py --tool WREF_CHECK --python PYTHON --modules DIR --plugin-dir DIR

Asserts, once with `-p wref_pytest` and once with neither -p nor PYTHONPATH (wref-check loads
the plugin itself through PYTEST_PLUGINS): the checker's finding names the pytest test that was
running ("in test:"); the JUnit
XML has exactly test_hidden_dangling_borrow failed (with the plugin's message) and the two
clean tests passed; the process exits with the checker's status 23. Then runs the plugin
without the checker (it says so in the header, all tests pass apart from the swallowed bug,
which nothing can see) and imports it in a Python without pytest when one is given, which must
fail with the plugin's clear message."""
import argparse
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, env):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=300)
    sys.stdout.write(p.stdout)
    return p


def check_checked_run(cmd, env, xml, label, errors):
    """The run under the checker: exit 23, the plugin active, the finding names its test, and
    exactly the buggy test failed in the JUnit XML with the plugin's message."""
    if os.path.exists(xml):
        os.unlink(xml)
    p = run(cmd, env)
    if p.returncode != 23:
        errors.append(f"{label}: under the checker: exit status {p.returncode}, expected 23")
    if "wref-check: active" not in p.stdout:
        errors.append(label + ": " + "the plugin's header does not say the checker is active")
    want = "in test: " + "tests/python/pytest_cases/test_plugin.py::test_hidden_dangling_borrow (call)"
    if not any(line.startswith("in test: ") and line.endswith("test_plugin.py::test_hidden_dangling_borrow (call)")
               for line in p.stdout.splitlines()):
        errors.append(f"{label}: the finding does not name the test (expected a line like {want!r})")
    try:
        cases = {c.get("name"): c for c in ET.parse(xml).getroot().iter("testcase")}
    except (OSError, ET.ParseError) as e:
        cases = {}
        errors.append(f"{label}: no JUnit XML: {e}")
    for name, should_fail in (("test_clean_before", False), ("test_hidden_dangling_borrow", True),
                              ("test_clean_after", False)):
        c = cases.get(name)
        failed = c is not None and (c.find("failure") is not None or c.find("error") is not None)
        if c is None:
            errors.append(f"{label}: {name} missing from the JUnit XML")
        elif failed != should_fail:
            errors.append(f"{label}: {name}: {'failed' if failed else 'passed'} in the JUnit XML, expected "
                          f"{'failed' if should_fail else 'passed'}")
        elif should_fail and "wref-check: 1 finding(s) during the call of" not in ET.tostring(c, encoding="unicode"):
            errors.append(f"{label}: {name}: the failure does not carry the plugin's message")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--modules", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--python-without-pytest")
    a = ap.parse_args()
    errors = []
    tmp = tempfile.mkdtemp(prefix="wref-pytest-")
    env = dict(os.environ, PYTHONPATH=a.plugin_dir, WREF_PY_MODULES=a.modules, PYTHONDONTWRITEBYTECODE="1")
    xml = os.path.join(tmp, "junit.xml")
    tests = os.path.join(HERE, "pytest_cases", "test_plugin.py")
    common = ["-m", "pytest", "-p", "wref_pytest", "-p", "no:cacheprovider", "--junitxml", xml, tests]
    check_checked_run([a.tool, "--", a.python] + common, env, xml, "with -p wref_pytest", errors)
    # No -p, no PYTHONPATH: wref-check loads the plugin itself (PYTEST_PLUGINS), as a user who
    # never heard of it would run pytest; without it the finding's report is captured and lost.
    auto = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "PYTEST_PLUGINS")}
    check_checked_run([a.tool, "--", a.python, "-m", "pytest", "-p", "no:cacheprovider", "--junitxml", xml, tests],
                      auto, xml, "loaded by wref-check", errors)

    # halt_on_error ends the process inside the buggy test, before pytest prints what it
    # captured: the plugin switches fd capture to sys capture, so the report still shows.
    p = run([a.tool, "--halt-on-error", "--"] + [a.python, "-m", "pytest", "-v", "-p", "no:cacheprovider", tests], auto)
    if p.returncode != 23:
        errors.append(f"with --halt-on-error: exit status {p.returncode}, expected 23")
    if p.stdout.count("ERROR: wref-check: dangling-borrow") != 1 or "test_hidden_dangling_borrow (call)" not in p.stdout:
        errors.append("with --halt-on-error: the report of the buggy test is not in the output "
                      "(pytest's fd capture went down with the process)")
    if "test_clean_after" in p.stdout:
        errors.append("with --halt-on-error: the run went on after the first finding")

    p = run([a.python] + common, env)
    if p.returncode != 0 or "wref-check: not active" not in p.stdout:
        errors.append(f"without the checker: exit {p.returncode}, expected 0 and the 'not active' header")

    if a.python_without_pytest:
        p = run([a.python_without_pytest, "-c", "import wref_pytest"], env)
        if p.returncode == 0 or "wref_pytest is a pytest plugin; install pytest" not in p.stdout:
            errors.append("importing the plugin without pytest did not fail with its message")

    for e in errors:
        print("run_pytest: FAIL:", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
