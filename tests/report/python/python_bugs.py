"""python_bugs.py: CPython extension bugs for the report.python_* tests (run_report_test.py).

usage: python3.11 python_bugs.py MODULE_DIR BUG...

Each BUG is one function below, run in one process under wref-check with report=json; the
same functions are run under pytest by test_python_bugs.py. victim_borrow is the extension
module of tests/python (victim_borrow.c), built by this tree for Debian's python3.11. Lines
marked "# @name" are where the tests expect Python frames (they read the markers from here).
"""
import os
import sys
import weakref

if __name__ == "__main__":
    sys.path.insert(0, sys.argv[1])
else:
    sys.path.insert(0, os.environ["WREF_PY_MODULES"])
import victim_borrow as vb  # noqa: E402


class Victim:
    pass


def call(fn, *args):
    """A script's own way of calling: through *args (another C path into the extension than
    the direct call pytest's test makes)."""
    try:
        return fn(*args)  # @call
    except ReferenceError:  # the checker's tombstone refused the use
        return None


def bug_borrow():
    """dangling-borrow in the extension (use_after_callback, victim_borrow.c)."""
    holder = [Victim()]  # @borrow_new
    return call(vb.use_after_callback, weakref.ref(holder[0]), holder.clear)  # @borrow


def failing_parse(ref):
    raise ValueError("parse cache is corrupt")


def failing_index(ref):
    raise KeyError("index entry missing")


def bug_callback_parse():
    """callback-error: a callback registered from C raises; nothing of the extension's C is
    on the destroy stack, so the Python frame names it."""
    obj = Victim()
    vb.subscribe_proxy(obj, failing_parse)  # @parse_reg
    del obj  # @parse_free


def bug_callback_index():
    """Another callback-error in the same extension, from another Python function."""
    obj = Victim()
    vb.subscribe_proxy(obj, failing_index)  # @index_reg
    del obj  # @index_free


def on_never(ref):
    print("callback ran")


def bug_never_ran():
    """callback-never-ran (script only, report.python_dot): the referent of a callback
    registered from C (subscribe) leaks: a reference taken in C (keep_forever) is never
    released, so the referent is alive at exit and its callback never runs."""
    lost = Victim()  # @nr_new
    vb.subscribe(lost, on_never)  # @nr_reg
    vb.keep_forever(lost)


if __name__ == "__main__":
    for name in sys.argv[2:]:
        globals()["bug_" + name]()  # @main
