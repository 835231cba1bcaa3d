"""Run by pytest under wref-check (run_report_test.py, report.python_*): the same bugs as
python_bugs.py's script run, the dangling borrow called directly (not through call())."""
import weakref

import python_bugs as pb


def test_borrow():
    holder = [pb.Victim()]
    try:
        pb.vb.use_after_callback(weakref.ref(holder[0]), holder.clear)  # @test_borrow
    except ReferenceError:
        pass


def test_callback_parse():
    pb.bug_callback_parse()  # @test_parse
