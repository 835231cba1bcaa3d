"""Tests run by pytest under wref-check with the wref_pytest plugin (tests/python/run_pytest.py).

test_hidden_dangling_borrow has a dangling borrowed reference whose ReferenceError it swallows:
only the plugin can fail it. The other tests are clean and must pass."""
import os
import sys
import weakref

sys.path.insert(0, os.environ["WREF_PY_MODULES"])
import victim_borrow as vb  # noqa: E402


class Victim:
    def __init__(self, name):
        self.name = name


def test_clean_before():
    obj = Victim("a")
    assert vb.get_ref(weakref.ref(obj)) is obj


def test_hidden_dangling_borrow():
    holder = [Victim("b")]
    ref = weakref.ref(holder[0])
    try:
        vb.use_after_callback(ref, holder.clear)
    except ReferenceError:
        pass  # the program swallows it: without the plugin this test would pass


def test_clean_after():
    holder = [Victim("c")]
    ref = weakref.ref(holder[0])
    assert vb.use_after_callback_ok(ref, holder.clear).startswith("<")
