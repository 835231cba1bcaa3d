"""cases.py: the Python side of the CPython victims, one case per process.

usage: python cases.py CASE MODULE_DIR

Each victim case makes one dangling borrowed reference through victim_borrow (an extension
module); each *_ok case runs the correct version of the same code and must give no finding.
Lines marked with a "# @name" comment are where the run_python.py driver expects Python
frames: it reads the markers from this file, so the line numbers are never written twice.
"""
import sys
import threading
import weakref

sys.path.insert(0, sys.argv[2])
import victim_borrow as vb  # noqa: E402


class Victim:
    def __init__(self, name, holder=None):
        self.name = name
        self.holder = holder

    def __eq__(self, other):
        self.holder.clear()  # @eq_drop
        return False

    __hash__ = object.__hash__


def make():
    holder = []
    holder.append(Victim("victim", holder))  # @make
    return holder, weakref.ref(holder[0])


def drop_all(holder):
    holder.clear()  # @drop


def run(fn, *args):
    try:
        return fn(*args)  # @run
    except ReferenceError as e:  # the checker's tombstone refused the use
        print("ReferenceError:", e)
        return None


def case_callback(ok=False):
    holder, ref = make()  # @callback_make
    fn = vb.use_after_callback_ok if ok else vb.use_after_callback
    print(run(fn, ref, lambda: drop_all(holder)))  # @callback


def case_eq(ok=False):
    holder, ref = make()  # @eq_make
    fn = vb.use_after_eq_ok if ok else vb.use_after_eq
    print(run(fn, ref, 42))  # @eq


def dropper(holder, go):
    go.wait()
    holder.clear()  # @thread_drop
    vb.released()


def case_thread(ok=False):
    holder, ref = make()  # @thread_make
    go = threading.Event()
    t = threading.Thread(target=dropper, args=(holder, go))
    t.start()
    fn = vb.use_after_gil_release_ok if ok else vb.use_after_gil_release
    print(run(fn, ref, go))  # @thread
    t.join()


def rebound_other(ref, go, done):
    go.wait()
    vb.borrow_keep(ref)  # @rb_other
    done.set()


def case_rebound(ok=False):
    """The object is borrowed at one site (C call and Python position) by the main thread,
    then by another thread, then at the first site again: the pointer used is the newest
    borrow's, the main thread's second, and the report must say so (not the other thread's)."""
    holder, ref = make()  # @rb_make
    go, done = threading.Event(), threading.Event()
    t = threading.Thread(target=rebound_other, args=(ref, go, done))
    t.start()
    for i in range(2):
        vb.borrow_keep(ref)  # @rb_borrow
        if i == 0:
            go.set()
            done.wait()
    t.join()
    drop_all(holder)  # @rb_drop
    print(run(vb.use_kept))  # @rb_use


def case_late_incref(ok=False):
    holder, ref = make()  # @late_make
    fn = vb.incref_in_time if ok else vb.incref_too_late
    obj = fn(ref, lambda: drop_all(holder))  # @late
    print(run(repr, obj))  # @late_use
    del obj


def case_dangling_weakref(ok=False):
    """A Leaky is freed with its weakref still registered (its dealloc never clears it); the
    weakref, touched later, must not crash the process. Tidy is the correct twin."""
    obj = vb.Tidy() if ok else vb.Leaky()  # @dw_new
    ref = vb.make_ref(obj)  # @dw_ref
    del obj  # @dw_free
    print("referent gone:", ref() is None)
    print(run(repr, ref()))  # a use through the weakref: ReferenceError, no second finding
    del ref
    print("survived")


def weakly_referenced(cls):
    return weakref.ref(cls())  # @dwp_ref


def case_dangling_weakref_py(ok=False):
    """gh-108295's shape: the weakref is made in Python code (no interposer sees it) and the
    Leaky dies at once; nothing was borrowed or weakly referenced from C. Tidy is the twin."""
    ref = weakly_referenced(vb.Tidy if ok else vb.Leaky)  # @dwp_call
    print("referent gone:", ref() is None)
    print(run(repr, ref()))  # a use through the weakref: ReferenceError, no second finding
    del ref
    print("survived")


def case_dangling_weakref_many(ok=False):
    """The same bug 2000 times: 2000 Leaky objects, each freed with a weakref made in Python
    still pointing at it (the same code, so the same stacks): one report, 1999 repeats counted."""
    refs = []
    for _ in range(2000):
        refs.append(weakly_referenced(vb.Tidy if ok else vb.Leaky))  # @dwn_call
    print("referent gone:", refs[-1]() is None)
    print(run(repr, refs[-1]()))  # a use through the weakref: ReferenceError, no second finding
    del refs
    print("survived")


def case_dangling_weakref_managed(ok=False):
    """3.12+: the same with a managed weakref list (Py_TPFLAGS_MANAGED_WEAKREF, a heap type)."""
    ref = weakly_referenced(vb.TidyManaged if ok else vb.LeakyManaged)  # @dwm_call
    print("referent gone:", ref() is None)
    print(run(repr, ref()))  # a use through the weakref: ReferenceError, no second finding
    del ref
    print("survived")


def case_get_ref_ok():
    """The SIP/Cython/pythoncapi-compat pattern, many times: never a finding."""
    objs = [Victim(str(i)) for i in range(100)]
    refs = [weakref.ref(o) for o in objs]
    for _ in range(20):
        for r in refs:
            assert vb.get_ref(r) is not None
    del objs
    assert all(vb.get_ref(r) is None for r in refs)


def case_tracemalloc_ok():
    """tracemalloc started and stopped while the checker's allocator hook is installed: both
    keep working (tracemalloc wraps the checker's hook and restores it)."""
    import tracemalloc
    case_get_ref_ok()
    tracemalloc.start()
    case_get_ref_ok()
    snap = tracemalloc.take_snapshot()
    assert tracemalloc.get_traced_memory()[0] > 0 and snap.statistics("lineno")
    tracemalloc.stop()
    case_get_ref_ok()
    print("tracemalloc ok")


def stop_then_drop(tracemalloc, holder):
    tracemalloc.stop()
    drop_all(holder)  # @tms_drop


def case_tracemalloc_stop(ok=False):
    """tracemalloc started before the checker (PYTHONTRACEMALLOC=5), so the checker's allocator
    hook wraps tracemalloc's; tracemalloc.stop() restores the allocator tracemalloc saved, which
    drops the checker's hook. The callback victim with the stop between its borrow and the drop:
    the free right after the stop must still be seen."""
    import tracemalloc
    assert tracemalloc.is_tracing(), "run with PYTHONTRACEMALLOC=5 or -X tracemalloc=5"
    holder, ref = make()  # @tms_make
    print(run(vb.use_after_callback, ref, lambda: stop_then_drop(tracemalloc, holder)))  # @tms
    assert not tracemalloc.is_tracing()


def failing(ref):
    raise ValueError("cache index is corrupt")


def case_callback_error(ok=False):
    """A callback registered from C (PyWeakref_NewProxy) raises when its referent dies."""
    obj = Victim("v")
    vb.subscribe_proxy(obj, (lambda r: None) if ok else failing)  # @ce_reg
    del obj  # @ce_free
    print("after the callback")


def case_never_ran(ok=False):
    """A callback registered from C (PyWeakref_NewRef) whose referent leaks (a reference taken
    in C and never released): it never runs."""
    obj = Victim("v")
    vb.subscribe(obj, lambda r: print("callback ran"))  # @nr_reg
    if not ok:
        vb.keep_forever(obj)
    del obj


def case_use_after_clear(ok=False):
    """A callback registered from C resurrects its dying referent through a pointer that held
    no reference; the object is freed anyway and the reference handed out dangles."""
    obj = Victim("v")  # @uac_new
    vb.cache_raw(obj, int(ok))  # @uac_reg
    del obj  # @uac_free
    print(run(repr, vb.take_handed_out()))


def case_weakref_dying(ok=False):
    """The same raw pointer, used by the death callback to make a new weakref to the dying
    object (weakly referenced in its dying window). Its correct twin is use_after_clear_ok."""
    obj = Victim("v")  # @uacw_new
    vb.cache_raw(obj, 2)  # @uacw_reg
    del obj  # @uacw_free
    print("survived")


def case_uaf_weakref(ok=False):
    """The default mode's use-after-free: an object watched because a weakref to it was made from
    C (nothing borrowed), used after its free through a plain C pointer that held no reference."""
    obj = Victim("v")  # @uafw_new
    vb.observe(obj, int(ok))  # @uafw_ref
    del obj  # @uafw_free
    print(run(vb.use_observed))  # @uafw_use
    vb.forget_observed()  # the twin's reference released: its free is watched too


def case_uaf_proxy(ok=False):
    """The same with a proxy made from C (PyWeakref_NewProxy): the report names that API."""
    obj = Victim("v")  # @uafp_new
    vb.observe_proxy(obj)  # @uafp_ref
    del obj  # @uafp_free
    print(run(vb.use_observed))  # @uafp_use
    vb.forget_observed()


def case_uaf_weakref_incref(ok=False):
    """The same stale pointer's only use a Py_INCREF after the free (seen at exit)."""
    obj = Victim("v")  # @uafwi_new
    vb.observe(obj)  # @uafwi_ref
    del obj  # @uafwi_free
    vb.incref_observed()
    print("after the late Py_INCREF")


def case_weakref_dealloc(ok=False):
    """A dealloc that makes a new weakref to its dying object after clearing its weakrefs
    (weakly referenced in its dying window, during its dealloc)."""
    obj = vb.Notifier()  # @wdd_new
    del obj  # @wdd_free
    print("survived")


class Finalized:
    def __init__(self):
        self.ref = weakref.ref(self)

    def __del__(self):  # runs at count 1 (a temporary resurrection), before the weakrefs are cleared
        vb.borrow_keep(self.ref)  # @finb_borrow


def case_borrow_finalizer(ok=False):
    """Borrowed in its dying window: PyWeakref_GetObject in the object's __del__ returns it (its
    count is 1 there); the pointer kept is used after the free: a dangling borrow."""
    obj = Finalized()  # @finb_new
    del obj  # @finb_free
    print(run(vb.use_kept))  # @finb_use


def case_noline(ok=False):
    """The callback victim called from a function whose code has no line table: its Python frame
    has no line, and the text report writes it "cases.py in run_noline", as wref-check report does."""
    holder, ref = make()

    def run_noline():
        return run(vb.use_after_callback, ref, lambda: drop_all(holder))

    empty = {"co_linetable": b""} if sys.version_info >= (3, 10) else {"co_lnotab": b""}
    run_noline.__code__ = run_noline.__code__.replace(**empty)
    print(run_noline())


def case_two(ok=False):
    """Two findings in one process (the callback and eq victims, two objects): both reported, or
    with halt_on_error=1 the first alone, the process stopped there."""
    case_callback()
    print("first done", flush=True)
    case_eq()


def case_suppressed(ok=False):
    """3.13: a dealloc that calls PyUnstable_Object_ClearWeakRefsNoCallbacks drops a callback
    registered from C (Tidy, the correct twin, calls PyObject_ClearWeakRefs)."""
    obj = vb.Tidy() if ok else vb.Fast()
    vb.subscribe(obj, lambda r: print("callback ran"))  # @sup_reg
    del obj  # @sup_free


KEPT = []


def case_callbacks_ok():
    """The correct twins of the callback victims in one process, and callbacks registered from
    C on objects that live until the interpreter finalizes (a module global, a class): no
    finding, every callback runs."""
    case_callback_error(True)
    case_never_ran(True)
    case_use_after_clear(True)
    if hasattr(vb, "Fast"):
        case_suppressed(True)

    class Kept:
        pass

    KEPT.extend([Victim("global"), Kept])
    for o in KEPT:
        vb.subscribe(o, lambda r: None)
    vb.subscribe_proxy(KEPT[0], lambda r: None)


def main():
    name = sys.argv[1]
    ok = name.endswith("_ok") and name not in ("get_ref_ok", "tracemalloc_ok", "callbacks_ok")
    fn = globals()["case_" + (name[:-3] if ok else name)]
    if not ok and name.endswith("_ok"):
        fn()
    else:
        fn(ok)  # @main


main()  # @module
