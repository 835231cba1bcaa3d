"""uaf_cases.py: the Python side of victim_uaf (run by run_uaf.py under python_watch=all).

usage: python uaf_cases.py uaf|uaf_incref|uaf_incref_evicted|uaf_decref|uaf_store|uaf_str|uaf_ok MODULE_DIR

uaf: an extension function keeps an item of a list without a reference while Python code
empties the list, then uses it: use-after-free. uaf_incref: the same with a Py_INCREF after
the free (seen at exit). uaf_incref_evicted: the same, then 70,000 more objects freed, so that
the tombstone leaves the quarantine (its bound: 65536 blocks) and is seen then. uaf_decref: the
stale pointer's only use is a Py_DECREF (the tombstone's dealloc). uaf_store: the
same stale pointer handed to a Python function that
uses it, with CPython's type cache filled by the code that empties the list (victim_uaf.c
fill_type_cache), so that the checker's store of the use's new Python stack frees an object (a
tombstone whose destroy stack is captured inside that store). uaf_str: uaf with a str item, early in
the run. uaf_ok: the same with the reference held, plus
a short mixed workload (objects of many types created and freed), which must give no finding.
Lines marked "# @name" are where run_uaf.py expects Python frames."""
import sys

sys.path.insert(0, sys.argv[2])
import victim_uaf as vu  # noqa: E402


class Victim:
    def __init__(self, name):
        self.name = name


def drop(holder):
    holder.clear()  # @drop


def case(ok):
    holder = [Victim("victim")]
    fn = vu.use_after_list_clear_ok if ok else vu.use_after_list_clear
    try:
        print(fn(holder, lambda: drop(holder)))  # @call
    except ReferenceError as e:  # the checker's tombstone refused the use
        print("ReferenceError:", e)


def case_str():
    """uaf with a str as the item, early in the run (no churn before it, unlike case_store): with a
    shared libpython the checker starts while the interpreter readies its types, and sees str
    objects freed before str is a ready type; that verdict must not stop later str frees from
    being recognized (wide.c)."""
    holder = ["-".join(["victim", str(len(sys.argv))])]   # a new str, only the list holds it
    try:
        print(vu.use_after_list_clear(holder, lambda: drop(holder)))  # @call_str
    except ReferenceError as e:  # the checker's tombstone refused the use
        print("ReferenceError:", e)


def drop_and_fill(holder):
    holder.clear()  # @drop_fill
    fill_kept.append(vu.fill_type_cache(drop_and_fill.__code__, 8192))  # @fill


def use(item):
    return item.name  # @use


def case_store():
    # 110,000 frees first (from before wide.c kept no verdict on a type not ready yet, the names
    # of the fill were then not recognized; case_str tests that now): the store's own test is
    # the same with them
    for _ in range(110000):
        object()
    holder = [Victim("victim")]
    try:
        print(vu.pass_after_list_clear(holder, lambda: drop_and_fill(holder), use))  # @call_store
    except ReferenceError as e:  # the checker's tombstone refused the use
        print("ReferenceError:", e)
    print("type cache entries held by the fill's names:", fill_kept[0])


fill_kept = []


def case_incref():
    holder = [Victim("victim")]
    vu.incref_after_list_clear(holder, lambda: drop(holder))  # @incref


def case_decref():
    holder = [Victim("victim")]
    vu.decref_after_list_clear(holder, lambda: drop(holder))  # @decref
    print("after the late Py_DECREF")


def churn(n):
    for i in range(n):
        Victim(i)  # freed at once: a tombstone each


def workload():
    import collections
    import json
    import weakref
    total = 0
    for i in range(1500):
        v = Victim(str(i))
        d = {"k": [v, (i, i * 2.5)], "s": {i, -i}}
        r = weakref.ref(v)
        total += len(json.dumps({"n": v.name})) + len(d) + (r() is v)
        collections.OrderedDict(a=i).popitem()
    print("workload", total)


def main():
    ok = sys.argv[1] == "uaf_ok"
    if sys.argv[1] == "uaf_incref":
        case_incref()  # @main_incref
        return
    if sys.argv[1] == "uaf_incref_evicted":
        case_incref()  # @main_incref_evicted
        print("incref done", flush=True)
        churn(70000)
        print("churned", flush=True)  # not reached: halt_on_error=1 at the finding
        return
    if sys.argv[1] == "uaf_decref":
        case_decref()  # @main_decref
        return
    if sys.argv[1] == "uaf_store":
        case_store()  # @main_store
        return
    if sys.argv[1] == "uaf_str":
        case_str()  # @main_str
        return
    case(ok)  # @main
    if ok:
        workload()


main()  # @module
