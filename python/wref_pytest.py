"""wref_pytest: a pytest plugin for running tests under wref-check (docs/python.md).

    wref-check -- python3 -m pytest -p wref_pytest tests/

Each finding the checker reports while a test runs (its setup, call or teardown) fails that
phase of that test, so `--junitxml` and every other pytest report show it where it happened.
The finding itself is in the checker's report, which names the test (`in test:`, or `test` in
the JSON report). Without the checker the plugin does nothing but say so in pytest's header.

The plugin reads the count of findings from libwref-check (wref_check_findings), found in the
process with ctypes; it needs nothing else."""
import ctypes
import os
import re

try:
    import pytest
except ImportError as e:  # pragma: no cover - a clear message instead of a bare ImportError
    raise ImportError("wref_pytest is a pytest plugin; install pytest (Debian: python3-pytest) and run "
                      "'python3 -m pytest -p wref_pytest'") from e


def _finding_counter():
    try:
        fn = ctypes.CDLL(None).wref_check_findings
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_size_t
    fn.argtypes = []
    return fn


_findings = _finding_counter()


def _checker_option(name):
    """The value WREF_CHECK_OPTIONS gives option `name` (options are separated by ',', ':' or
    spaces), or None."""
    m = re.search(r"(?:^|[,: ])%s=('[^']*'|[^,: ]*)" % name, os.environ.get("WREF_CHECK_OPTIONS", ""))
    return m.group(1).strip("'") if m else None


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config):
    """With halt_on_error the checker ends the process at its first finding, inside the test,
    before pytest prints what it captured: with fd capture the report would go down with it.
    So, unless the reports go to a log file, capture at the sys level only ('--capture=sys'):
    Python's own output is still captured, the checker's (written to fd 2) reaches the
    terminal. Runs before the capture plugin reads the method."""
    ns = early_config.known_args_namespace
    if (_findings is not None and _checker_option("halt_on_error") in ("1", "true", "yes")
            and not _checker_option("log_path") and getattr(ns, "capture", None) == "fd"):
        ns.capture = "sys"
    yield


def pytest_report_header(config):
    if _findings is None:
        return "wref-check: not active (run under 'wref-check --' to check this run)"
    return "wref-check: active: a finding fails the test that caused it"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if _findings is not None:
        item._wref_findings = _findings()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if _findings is None or not hasattr(item, "_wref_findings"):
        return
    now = _findings()
    new = now - item._wref_findings
    item._wref_findings = now
    if new <= 0:
        return
    report = outcome.get_result()
    message = ("wref-check: %d finding(s) during the %s of %s; the checker's report names this test "
               "('in test: %s (%s)')" % (new, call.when, item.nodeid, item.nodeid, call.when))
    if report.passed:
        report.outcome = "failed"
        report.longrepr = message
    else:
        report.sections.append(("wref-check", message))
