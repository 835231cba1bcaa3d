#!/usr/bin/env python3
"""run_python.py: runs one CPython victim or clean case under `wref-check -- PYTHON ...` and
asserts the report.

usage: run_python.py --tool WREF_CHECK --python PYTHON --modules DIR --case NAME
                     [--schema docs/report-schema.json]

A victim case must give exactly one finding of its kind (dangling-borrow: with the
ReferenceError raised by the tombstone; dangling-weakref: the process survives touching the
weakref), exit status 23, and in each stack (where, borrowed or weakref created, destroyed):
  - the C frames from #0 through the victim module's frame, in order: checker frames and
    victim frames by function (and file:line, from the "@marker" comments of victim_borrow.c),
    the interpreter's own frames between them as one or more frames in python*/libpython*;
  - the Python frames, innermost first, by function and cases.py line (from its "# @marker"
    comments): the whole stack for the main thread, a prefix for another thread's.
A clean case (*_ok) must give no finding, exit status 0, and the frontend's statistics line
showing that it was active (borrows seen, objects freed while watched; callbacks_ok: callbacks
registered from C).
With --schema, the JSON report is validated too and must carry the same Python frames."""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "PY+"   # one or more interpreter frames


def markers(path, pattern):
    out = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            for m in re.finditer(pattern, line):
                out[m.group(1)] = n
    return out


C = markers(os.path.join(HERE, "victim_borrow.c"), r"@(\w+) \*/")
P = markers(os.path.join(HERE, "cases.py"), r"# @(\w+)")


def c(fn, marker=None):
    return (fn, C[marker] if marker else None)


def p(fn, marker):
    return (fn, P[marker])


MAIN = [p("main", "main"), p("<module>", "module")]


DESTROYED = "destroyed (the last reference dropped)"
REGISTERED = "callback registered (weakref created)"
CREATED = "created"
# Where the object was allocated (origins.c): the object allocator's hook, then the interpreter.
CREATED_C = [c("py_object_malloc_hook"), PY]


def made(case_fn, marker):
    """The create stack's Python frames of a Victim from make(), called by case_fn at marker."""
    return [p("make", "make"), p(case_fn, marker)] + MAIN


def victim(where_c, where_py, borrow_c, borrow_py, destroy_c, destroy_py, created_py, destroy_prefix=False, what=""):
    return {"kind": "dangling-borrow", "type": "Victim", "labels": ["where", "borrowed", DESTROYED, CREATED],
            "where": (where_c, where_py, False), "borrowed": (borrow_c, borrow_py, False),
            DESTROYED: (destroy_c, destroy_py, destroy_prefix), CREATED: (CREATED_C, created_py, False), "what": what}


CASES = {
    "callback": victim(
        [c("freed_object_repr"), PY, c("use_after_callback", "cb_use")],
        [p("run", "run"), p("case_callback", "callback")] + MAIN,
        [c("PyWeakref_GetObject"), c("use_after_callback", "cb_borrow")],
        [p("run", "run"), p("case_callback", "callback")] + MAIN,
        [c("py_object_free_hook"), PY, c("use_after_callback", "cb_call")],
        [p("drop_all", "drop"), p("<lambda>", "callback"), p("run", "run"), p("case_callback", "callback")] + MAIN,
        made("case_callback", "callback_make"), what="repr() of a Victim that was freed"),
    "eq": victim(
        [c("freed_object_getattro"), PY, c("use_after_eq", "eq_use")],
        [p("run", "run"), p("case_eq", "eq")] + MAIN,
        [c("PyWeakref_GetObject"), c("use_after_eq", "eq_borrow")],
        [p("run", "run"), p("case_eq", "eq")] + MAIN,
        [c("py_object_free_hook"), PY, c("use_after_eq", "eq_call")],
        # the frame of __eq__ is being torn down (it holds the last reference): not on the stack
        [p("run", "run"), p("case_eq", "eq")] + MAIN,
        made("case_eq", "eq_make"), what="attribute read of a Victim that was freed"),
    "thread": victim(
        [c("freed_object_str"), PY, c("use_after_gil_release", "gil_use")],
        [p("run", "run"), p("case_thread", "thread")] + MAIN,
        [c("PyWeakref_GetObject"), c("use_after_gil_release", "gil_borrow")],
        [p("run", "run"), p("case_thread", "thread")] + MAIN,
        [c("py_object_free_hook"), PY],
        [p("dropper", "thread_drop")], made("case_thread", "thread_make"), destroy_prefix=True,
        what="str() of a Victim that was freed"),
    # borrowed by the main thread, then another thread, then the main thread at the first site
    "rebound": victim(
        [c("freed_object_repr"), PY, c("use_kept", "rb_use")],
        [p("run", "run"), p("case_rebound", "rb_use")] + MAIN,
        [c("PyWeakref_GetObject"), c("borrow_keep", "rb_borrow")],
        [p("case_rebound", "rb_borrow")] + MAIN,
        [c("py_object_free_hook"), PY],
        [p("drop_all", "drop"), p("case_rebound", "rb_drop")] + MAIN,
        made("case_rebound", "rb_make"), what="repr() of a Victim that was freed"),
    "late_incref": victim(
        [c("freed_object_repr"), PY],
        [p("run", "run"), p("case_late_incref", "late_use")] + MAIN,
        [c("PyWeakref_GetObject"), c("incref_too_late", "late_borrow")],
        [p("case_late_incref", "late")] + MAIN,
        [c("py_object_free_hook"), PY, c("incref_too_late", "late_call")],
        [p("drop_all", "drop"), p("<lambda>", "late"), p("case_late_incref", "late")] + MAIN,
        made("case_late_incref", "late_make"), what="repr() of a Victim that was freed"),
    # Reported at the free (where): the dealloc that forgot PyObject_ClearWeakRefs.
    "dangling_weakref": {
        "kind": "dangling-weakref", "type": "victim_borrow.Leaky", "labels": ["where", "weakref created", CREATED],
        "where": ([c("py_object_free_hook"), c("leaky_dealloc")], [p("case_dangling_weakref", "dw_free")] + MAIN,
                  False),
        "weakref created": ([c("PyWeakref_NewRef"), c("make_ref", "mk_ref")],
                            [p("case_dangling_weakref", "dw_ref")] + MAIN, False),
        CREATED: (CREATED_C, [p("case_dangling_weakref", "dw_new")] + MAIN, False),
        "what": "a victim_borrow.Leaky was freed while weakrefs still point at it"},
    # The same bug with the weakref made in Python (nobody watched the object): reported at the
    # free all the same; "weakref created" is where the weakref's block was allocated.
    "dangling_weakref_py": {
        "kind": "dangling-weakref", "type": "victim_borrow.Leaky", "labels": ["where", "weakref created", CREATED],
        "where": ([c("py_object_free_hook"), c("leaky_dealloc")], [p("weakly_referenced", "dwp_ref"),
                  p("case_dangling_weakref_py", "dwp_call")] + MAIN, False),
        "weakref created": ([c("py_object_malloc_hook"), PY], [p("weakly_referenced", "dwp_ref"),
                            p("case_dangling_weakref_py", "dwp_call")] + MAIN, False),
        CREATED: (CREATED_C, [p("weakly_referenced", "dwp_ref"), p("case_dangling_weakref_py", "dwp_call")] + MAIN,
                  False),
        "what": "a victim_borrow.Leaky was freed while weakrefs still point at it"},
    # The same bug on 2000 objects (the same code, so the same stacks): one report, and the
    # 1999 others counted as its repeats (fold_repeats=1).
    "dangling_weakref_many": {
        "kind": "dangling-weakref", "type": "victim_borrow.Leaky", "labels": ["where", "weakref created", CREATED],
        "where": ([c("py_object_free_hook"), c("leaky_dealloc")], [p("weakly_referenced", "dwp_ref"),
                  p("case_dangling_weakref_many", "dwn_call")] + MAIN, False),
        "weakref created": ([c("py_object_malloc_hook"), PY], [p("weakly_referenced", "dwp_ref"),
                            p("case_dangling_weakref_many", "dwn_call")] + MAIN, False),
        CREATED: (CREATED_C, [p("weakly_referenced", "dwp_ref"), p("case_dangling_weakref_many", "dwn_call")] + MAIN,
                  False),
        "what": "a victim_borrow.Leaky was freed while weakrefs still point at it", "repeats": 1999,
        "weaklisted": 2000},
    # 3.12+: the list in the pre-header (Py_TPFLAGS_MANAGED_WEAKREF); the dealloc frees through
    # PyObject_GC_Del, which tail-calls the allocator (no frame of its own).
    "dangling_weakref_managed": {
        "kind": "dangling-weakref", "type": "victim_borrow.LeakyManaged",
        "labels": ["where", "weakref created", CREATED],
        "where": ([c("py_object_free_hook"), c("leaky_managed_dealloc")],
                  [p("weakly_referenced", "dwp_ref"), p("case_dangling_weakref_managed", "dwm_call")] + MAIN, False),
        "weakref created": ([c("py_object_malloc_hook"), PY], [p("weakly_referenced", "dwp_ref"),
                            p("case_dangling_weakref_managed", "dwm_call")] + MAIN, False),
        CREATED: (CREATED_C, [p("weakly_referenced", "dwp_ref"), p("case_dangling_weakref_managed", "dwm_call")] +
                  MAIN, False),
        "what": "a victim_borrow.LeakyManaged was freed while weakrefs still point at it"},
    # Weakref callbacks registered from C. The callback-error and callback-suppressed reports
    # are made where the referent is being destroyed; callback-never-ran at exit (no "where").
    "callback_error": {
        "kind": "callback-error", "type": "Victim", "labels": ["where", REGISTERED],
        "where": ([c("cb_call"), PY], [p("case_callback_error", "ce_free")] + MAIN, False),
        REGISTERED: ([c("PyWeakref_NewProxy"), c("subscribe_proxy", "sub_proxy")],
                     [p("case_callback_error", "ce_reg")] + MAIN, False),
        "what": "the weakref callback <function failing at 0x",
        "what_has": "registered from C with PyWeakref_NewProxy, raised ValueError: cache index is corrupt while its "
                    "referent (a Victim) was being destroyed",
        # CPython's own report of the ignored exception is still printed (3.13 words it differently)
        "stderr": r"Exception ignored (in:|while calling weakref callback) <function failing at 0x"},
    "never_ran": {
        "kind": "callback-never-ran", "type": "Victim", "labels": ["where", REGISTERED],
        "where": ([], [], False),
        REGISTERED: ([c("PyWeakref_NewRef"), c("subscribe", "sub_reg")], [p("case_never_ran", "nr_reg")] + MAIN, False),
        "what": "a weakref callback registered from C with PyWeakref_NewRef never ran: its referent, a Victim, is "
                "still alive at exit; it leaked: at Python exit 1 reference(s)"},
    "use_after_clear": {   # reported at the free; names the callback that took the reference
        "kind": "use-after-clear", "type": "Victim", "labels": ["where", REGISTERED, CREATED],
        "where": ([c("py_object_free_hook"), PY], [p("case_use_after_clear", "uac_free")] + MAIN, False),
        REGISTERED: ([c("PyWeakref_NewRef"), c("cache_raw", "uac_reg")], [p("case_use_after_clear", "uac_reg")] + MAIN,
                     False),
        CREATED: (CREATED_C, [p("case_use_after_clear", "uac_new")] + MAIN, False),
        "what": "a Victim was freed while 1 reference(s) to it were still held: the weakref callback <built-in "
                "function on_death>, registered from C with PyWeakref_NewRef, took them while the object was being "
                "destroyed", "reference_error": True},
    "weakref_dying": {   # reported at the PyWeakref_NewRef call in the dying window
        "kind": "use-after-clear", "type": "Victim", "labels": ["where", "weakref created", CREATED],
        "where": ([c("PyWeakref_NewRef"), c("on_death_weakref", "uac_wr"), PY],
                  [p("case_weakref_dying", "uacw_free")] + MAIN, False),
        "weakref created": ([c("PyWeakref_NewRef"), c("cache_raw", "uac_reg")],
                            [p("case_weakref_dying", "uacw_reg")] + MAIN, False),
        CREATED: (CREATED_C, [p("case_weakref_dying", "uacw_new")] + MAIN, False),
        "what": "PyWeakref_NewRef made a weakref to a Victim whose count is 0: it is being destroyed"},
    "suppressed": {   # 3.13+ only (PyUnstable_Object_ClearWeakRefsNoCallbacks)
        "kind": "callback-suppressed", "type": "victim_borrow.Fast", "labels": ["where", REGISTERED],
        "where": ([c("PyUnstable_Object_ClearWeakRefsNoCallbacks"), c("fast_dealloc", "sup_clear")],
                  [p("case_suppressed", "sup_free")] + MAIN, False),
        REGISTERED: ([c("PyWeakref_NewRef"), c("subscribe", "sub_reg")], [p("case_suppressed", "sup_reg")] + MAIN, False),
        "what": "PyUnstable_Object_ClearWeakRefsNoCallbacks cleared a weakref to a victim_borrow.Fast whose callback "
                "was registered from C with PyWeakref_NewRef: the callback never runs"},
    # The default mode's use-after-free: watched through a weakref made from C, used through a
    # plain pointer (no borrow: use-after-free, not dangling-borrow).
    "uaf_weakref": {
        "kind": "use-after-free", "type": "Victim", "labels": ["where", "weakref created", DESTROYED, CREATED],
        "where": ([c("freed_object_repr"), PY, c("use_observed", "obs_use")],
                  [p("run", "run"), p("case_uaf_weakref", "uafw_use")] + MAIN, False),
        "weakref created": ([c("PyWeakref_NewRef"), c("observe", "obs_ref")],
                            [p("case_uaf_weakref", "uafw_ref")] + MAIN, False),
        DESTROYED: ([c("py_object_free_hook"), PY], [p("case_uaf_weakref", "uafw_free")] + MAIN, False),
        CREATED: (CREATED_C, [p("case_uaf_weakref", "uafw_new")] + MAIN, False),
        "what": "repr() of a Victim that was freed (a weakref to it was made with PyWeakref_NewRef)",
        "reference_error": True},
    "uaf_proxy": {   # the same through a proxy: the message names PyWeakref_NewProxy
        "kind": "use-after-free", "type": "Victim", "labels": ["where", "weakref created", DESTROYED, CREATED],
        "where": ([c("freed_object_repr"), PY, c("use_observed", "obs_use")],
                  [p("run", "run"), p("case_uaf_proxy", "uafp_use")] + MAIN, False),
        "weakref created": ([c("PyWeakref_NewProxy"), c("observe_proxy", "obsp_ref")],
                            [p("case_uaf_proxy", "uafp_ref")] + MAIN, False),
        DESTROYED: ([c("py_object_free_hook"), PY], [p("case_uaf_proxy", "uafp_free")] + MAIN, False),
        CREATED: (CREATED_C, [p("case_uaf_proxy", "uafp_new")] + MAIN, False),
        "what": "repr() of a Victim that was freed (a weakref to it was made with PyWeakref_NewProxy)",
        "reference_error": True},
    "uaf_weakref_incref": {   # reported at exit: no "where"
        "kind": "use-after-free", "type": "Victim", "labels": ["where", "weakref created", DESTROYED, CREATED],
        "where": ([], [], False),
        "weakref created": ([c("PyWeakref_NewRef"), c("observe", "obs_ref")],
                            [p("case_uaf_weakref_incref", "uafwi_ref")] + MAIN, False),
        DESTROYED: ([c("py_object_free_hook"), PY], [p("case_uaf_weakref_incref", "uafwi_free")] + MAIN, False),
        CREATED: (CREATED_C, [p("case_uaf_weakref_incref", "uafwi_new")] + MAIN, False),
        "what": "1 reference(s) to a Victim were taken after it was freed (a Py_INCREF that came too late)",
        "stdout": "after the late Py_INCREF"},
    "weakref_dealloc": {   # reported at the PyWeakref_NewRef call in the dealloc; nothing watched it before
        "kind": "use-after-clear", "type": "victim_borrow.Notifier", "labels": ["where", CREATED],
        "where": ([c("PyWeakref_NewRef"), c("notify_closed", "wd_ref"), c("notifier_dealloc", "wd_notify"), PY],
                  [p("case_weakref_dealloc", "wdd_free")] + MAIN, False),
        CREATED: (CREATED_C, [p("case_weakref_dealloc", "wdd_new")] + MAIN, False),
        "what": "PyWeakref_NewRef made a weakref to a victim_borrow.Notifier whose count is 0: it is being destroyed",
        "stdout": "survived"},
    "borrow_finalizer": {
        "kind": "dangling-borrow", "type": "Finalized", "labels": ["where", "borrowed", DESTROYED, CREATED],
        "where": ([c("freed_object_repr"), PY, c("use_kept", "rb_use")],
                  [p("run", "run"), p("case_borrow_finalizer", "finb_use")] + MAIN, False),
        "borrowed": ([c("PyWeakref_GetObject"), c("borrow_keep", "rb_borrow")],
                     [p("__del__", "finb_borrow"), p("case_borrow_finalizer", "finb_free")] + MAIN, False),
        DESTROYED: ([c("py_object_free_hook"), PY], [p("case_borrow_finalizer", "finb_free")] + MAIN, False),
        CREATED: (CREATED_C, [p("case_borrow_finalizer", "finb_new")] + MAIN, False),
        "what": "repr() of a Finalized that was freed"},
}
# The callback victim in case_tracemalloc_stop, whose callback calls tracemalloc.stop() (which
# drops the checker's allocator hook) before it drops the object.
CASES["tracemalloc_stop"] = victim(
    [c("freed_object_repr"), PY, c("use_after_callback", "cb_use")],
    [p("run", "run"), p("case_tracemalloc_stop", "tms")] + MAIN,
    [c("PyWeakref_GetObject"), c("use_after_callback", "cb_borrow")],
    [p("run", "run"), p("case_tracemalloc_stop", "tms")] + MAIN,
    [c("py_object_free_hook"), PY, c("use_after_callback", "cb_call")],
    [p("drop_all", "drop"), p("stop_then_drop", "tms_drop"), p("<lambda>", "tms"), p("run", "run"),
     p("case_tracemalloc_stop", "tms")] + MAIN,
    made("case_tracemalloc_stop", "tms_make"), what="repr() of a Victim that was freed")

# The ReferenceError's words for how the freed object was reached (tombstone.c use_kind).
REFERROR = {"dangling-borrow": "dangling borrowed reference", "use-after-clear": "use after free",
            "use-after-free": "use after free",
            "dangling-weakref": "dangling weakref: its dealloc never cleared it"}

# Expected SUMMARY lines: the extension's function, not the interpreter's (nor libc's): the first
# of the stack where it happened ("where", else the first); without one there, the innermost Python
# frame of that stack, "function (file)".
SUMMARIES = {"callback": "dangling-borrow in use_after_callback", "eq": "dangling-borrow in use_after_eq",
             "thread": "dangling-borrow in use_after_gil_release",
             # no extension frame where it happened: its innermost Python frame, as wref-check report names it
             "late_incref": "dangling-borrow in run (cases.py)",
             "rebound": "dangling-borrow in use_kept", "tracemalloc_stop": "dangling-borrow in use_after_callback",
             "dangling_weakref": "dangling-weakref in leaky_dealloc",
             "dangling_weakref_py": "dangling-weakref in leaky_dealloc",
             "dangling_weakref_many": "dangling-weakref in leaky_dealloc",
             "dangling_weakref_managed": "dangling-weakref in leaky_managed_dealloc", "callback_error": "callback-error in case_callback_error (cases.py)",
             "never_ran": "callback-never-ran in subscribe", "use_after_clear": "use-after-clear in case_use_after_clear (cases.py)",
             "weakref_dying": "use-after-clear in on_death_weakref",
             "suppressed": "callback-suppressed in fast_dealloc", "uaf_weakref": "use-after-free in use_observed",
             "uaf_proxy": "use-after-free in use_observed",
             "uaf_weakref_incref": "use-after-free in observe", "weakref_dealloc": "use-after-clear in notify_closed",
             "borrow_finalizer": "dangling-borrow in use_kept"}
CLEAN = {"callback_ok", "eq_ok", "thread_ok", "late_incref_ok", "get_ref_ok", "tracemalloc_ok", "dangling_weakref_ok",
         "dangling_weakref_py_ok", "dangling_weakref_managed_ok", "callbacks_ok", "uaf_weakref_ok"}
# Cases where nothing is borrowed or weakly referenced from C: the frontend's weakref-list line
# must show the free of a weakly referenced object checked (and for the victim, found) instead.
UNWATCHED = {"dangling_weakref_py", "dangling_weakref_py_ok", "dangling_weakref_managed",
             "dangling_weakref_managed_ok", "dangling_weakref_many"}

FRAME = re.compile(r"^    #(\d+) 0x[0-9a-f]+ in (\S+)(?: (\S+):(\d+))? \((.+)\+0x[0-9a-f]+\)$")
PYFRAME = re.compile(r"^    #(\d+) (.+):(\d+) in (.+)$")


def parse(text):
    """Findings as {"kind", "header", "what", "stacks": {label: {"c": [...], "py": [...], "thread"}}}."""
    findings = []
    cur = stack = None
    mode = "c"
    for line in text.splitlines():
        m = re.match(r"^==\d+==ERROR: wref-check: (\S+)(.*)$", line)
        if m:
            cur = {"kind": m.group(1), "header": m.group(2), "what": None, "stacks": {}}
            findings.append(cur)
            stack = cur["stacks"].setdefault("where", {"c": [], "py": [], "thread": 0})
            mode = "c"
            continue
        if cur is None:
            continue
        if cur["what"] is None:
            cur["what"] = line
            continue
        m = re.match(r"^(\S.*) by thread T(\d+) here:$", line) or re.match(r"^(\S.*) here:$", line)
        if m:
            stack = cur["stacks"].setdefault(m.group(1), {"c": [], "py": [],
                                                          "thread": int(m.group(2)) if m.lastindex > 1 else None})
            mode = "c"
            continue
        if line == "  Python frames:":
            mode = "py"
            continue
        if line.startswith("SUMMARY:"):
            cur["summary"] = line[len("SUMMARY: wref-check: "):]
            cur = None
            continue
        if mode == "c":
            m = FRAME.match(line)
            if m:
                stack["c"].append((m.group(2), m.group(3), int(m.group(4)) if m.group(4) else None,
                                   os.path.basename(m.group(5))))
        else:
            m = PYFRAME.match(line)
            if m:
                stack["py"].append((m.group(4), m.group(2), int(m.group(3))))
    return findings


def is_interp(module):
    return module.startswith("python") or module.startswith("libpython")


def check_c(label, frames, expect, errors):
    i = 0
    for e in expect:
        if e == PY:
            n = 0
            while i < len(frames) and is_interp(frames[i][3]):
                i += 1
                n += 1
            if n == 0:
                errors.append(f"{label}: expected interpreter frames at #{i}, got {frames[i:i+1]}")
                return
            continue
        fn, line = e
        if i >= len(frames):
            errors.append(f"{label}: expected {fn} at #{i}, the stack has only {len(frames)} frames")
            return
        got = frames[i]
        if got[0] != fn or (line is not None and (os.path.basename(got[1] or "") != "victim_borrow.c" or got[2] != line)):
            errors.append(f"{label}: #{i} expected {fn}" + (f" victim_borrow.c:{line}" if line else "") +
                          f", got {got[0]} {got[1]}:{got[2]} ({got[3]})")
            return
        i += 1


def same_function(actual, expected):
    return actual.split(".")[-1] == expected.split(".")[-1]   # co_qualname (3.11+) or co_name


def check_py(label, frames, expect, prefix, errors):
    if expect is None:
        if not frames:
            errors.append(f"{label}: no Python frames")
        return
    if (len(frames) < len(expect)) if prefix else (len(frames) != len(expect)):
        errors.append(f"{label}: expected {'at least ' if prefix else ''}{len(expect)} Python frames, got {frames}")
        return
    for i, (fn, line) in enumerate(expect):
        gfn, gfile, gline = frames[i]
        if not same_function(gfn, fn) or os.path.basename(gfile) != "cases.py" or gline != line:
            errors.append(f"{label}: Python #{i} expected cases.py:{line} in {fn}, got {gfile}:{gline} in {gfn}")


def check_json(prefix, schema, finding, errors, repeats=0):
    """The run's one JSON report (<prefix>.<pid>.json): valid against the schema, and its first
    finding's Python frames (function, line) per stack equal to those of `finding`, the text
    report's first finding as parse() gives it (None: no finding), with `repeats` folded into it
    (its "repeats", and the summary's findings and repeats)."""
    docs = glob.glob(prefix + ".*.json")
    if len(docs) != 1:
        errors.append(f"expected one JSON report, got {docs}")
        return
    doc = json.load(open(docs[0]))
    try:
        import jsonschema
        jsonschema.validate(doc, json.load(open(schema)))
    except ImportError:
        print("run_python: jsonschema not installed: schema not checked")
    except jsonschema.ValidationError as e:
        errors.append(f"JSON report does not match the schema: {e.message}")
    js = doc["findings"][0]["stacks"] if doc.get("findings") else []
    text_py = [[(fr[0], fr[2]) for fr in st["py"]] for st in finding["stacks"].values()
               if st["c"] or st["py"]] if finding else []   # a finding made at exit has no "where"
    json_py = [[(fr["function"], fr["line"]) for fr in st.get("python_frames", [])] for st in js]
    if text_py != json_py:
        errors.append(f"JSON python_frames differ from the text report: {json_py} vs {text_py}")
    if doc.get("findings") and doc["findings"][0].get("repeats", 0) != repeats:
        errors.append(f"JSON: the finding's repeats is {doc['findings'][0].get('repeats')}, expected {repeats}")
    if doc["summary"]["findings"] != len(doc["findings"]) + repeats or doc["summary"].get("repeats", 0) != repeats:
        errors.append(f"JSON: summary {doc['summary']}, expected {len(doc['findings']) + repeats} findings and "
                      f"{repeats} repeats")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--modules", required=True)
    ap.add_argument("--case", required=True)
    ap.add_argument("--schema")
    ap.add_argument("--env", action="append", default=[], help="VAR=VALUE for the program (PYTHONMALLOC=debug...)")
    ap.add_argument("--pyopt", action="append", default=[], help="an interpreter option (--pyopt=-X ...)")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="wref-python-")
    prefix = os.path.join(tmp, "r")
    cmd = [a.tool, "--option", "verbosity=1", "--option", "log_path=" + prefix, "--option", "report=text,json",
           "--", a.python] + a.pyopt + [os.path.join(HERE, "cases.py"), a.case, a.modules]
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    for e in a.env:
        k, _, v = e.partition("=")
        env[k] = v
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    texts = [t for t in glob.glob(prefix + ".*") if not t.endswith(".json")]
    report = "".join(open(t).read() for t in texts)
    sys.stdout.write(proc.stdout)
    sys.stdout.write(proc.stderr)
    sys.stdout.write(report)
    findings = parse(report)
    errors = []
    stats = re.search(r"python frontend: CPython \S+: (\d+) borrows from PyWeakref_GetObject, (\d+) objects watched, "
                      r"(\d+) freed while watched", proc.stderr)
    lists = re.search(r"python frontend: weakref lists: (\d+) checked at the free of an unwatched object, (\d+) found "
                      r"not empty", proc.stderr)
    if a.case in UNWATCHED:
        found = 0 if a.case in CLEAN else CASES[a.case].get("weaklisted", 1)
        if not lists or int(lists.group(1)) < 1 or int(lists.group(2)) != found:
            errors.append("the weakref-list statistics line is missing or shows no check (or a wrong count found)")
    elif not stats or int(stats.group(2)) < 1 or (int(stats.group(3)) < 1 and a.case != "never_ran"):
        errors.append("the frontend's statistics line is missing or shows no watched object or no watched free")

    if a.case in CLEAN:
        if findings:
            errors.append(f"clean case: {len(findings)} finding(s)")
        if proc.returncode != 0:
            errors.append(f"clean case: exit status {proc.returncode}, expected 0")
        if a.case == "callbacks_ok":
            cb = re.search(r"(\d+) callbacks registered from C \((\d+) raised", proc.stderr)
            if not cb or int(cb.group(1)) < 6 or proc.stdout.count("callback ran") < 1:
                errors.append("callbacks_ok: the callbacks registered from C were not watched, or did not run")
    else:
        exp = CASES[a.case]
        if proc.returncode != 23:
            errors.append(f"exit status {proc.returncode}, expected 23")
        if len(findings) != 1 or findings[0]["kind"] != exp["kind"]:
            got = {}
            for f in findings:
                got[f["kind"]] = got.get(f["kind"], 0) + 1
            errors.append(f"expected one {exp['kind']} finding, got {got}")
        elif (exp["kind"] in ("dangling-borrow", "dangling-weakref") or exp.get("reference_error")) and \
                not re.search(r"^ReferenceError: wref-check: .* of a freed %s \(%s\)$" %
                              (re.escape(exp["type"]), re.escape(REFERROR[exp["kind"]])), proc.stdout, re.M):
            errors.append(f"the tombstone's ReferenceError ('({REFERROR[exp['kind']]})') did not reach the program")
        else:
            f = findings[0]
            if f" on {exp['type']}#" not in f["header"]:
                errors.append(f"header does not name the {exp['type']} object: {f['header']}")
            if not f["what"].startswith(exp["what"]):
                errors.append(f"message: {f['what']!r}, expected it to start with {exp['what']!r}")
            if exp.get("what_has") and exp["what_has"] not in f["what"]:
                errors.append(f"message: {f['what']!r}, expected it to contain {exp['what_has']!r}")
            if exp.get("stdout") and exp["stdout"] not in proc.stdout:
                errors.append(f"the program's stdout lacks {exp['stdout']!r}: it did not go on")
            if exp.get("stderr") and not re.search(exp["stderr"], proc.stderr):
                errors.append(f"the program's stderr lacks {exp['stderr']!r}")
            if a.case in SUMMARIES and f.get("summary") != SUMMARIES[a.case]:
                errors.append(f"SUMMARY: {f.get('summary')!r}, expected {SUMMARIES[a.case]!r}")
            labels = exp["labels"]
            if list(f["stacks"]) != labels:
                errors.append(f"stacks: {list(f['stacks'])}, expected {exp['labels']}")
            if a.case.startswith("dangling_weakref") and "survived" not in proc.stdout:
                errors.append("the process did not survive touching the dangling weakref")
            for label in labels:
                st = f["stacks"].get(label)
                if not st:
                    continue
                ce, pe, pre = exp[label]
                check_c(label, st["c"], ce, errors)
                check_py(label, st["py"], pe, pre, errors)
            # The folded repeats: one line naming the finding and its count, and the SUMMARY's.
            reps = exp.get("repeats", 0)
            fold = re.findall(r"^  %s on %s#\d+ in .*: and (\d+) more like it: same kind and stacks, other objects "
                              r"\(the last: %s#\d+ at 0x[0-9a-f]+\)$" % (re.escape(exp["kind"]), re.escape(exp["type"]),
                                                                        re.escape(exp["type"])), report, re.M)
            if reps and fold != [str(reps)]:
                errors.append(f"expected one line saying '... and {reps} more like it', got {fold}")
            if not reps and "more like it" in report:
                errors.append("repeats were folded, none expected")
            summary = re.search(r"^SUMMARY: wref-check: (\d+) finding\(s\) in process \d+: .*$", report, re.M)
            want = (f": {1 + reps} {exp['kind']} (1 printed, {reps} repeat(s) folded)" if reps else
                    f": 1 {exp['kind']}")
            if not summary or int(summary.group(1)) != 1 + reps or not summary.group(0).endswith(want):
                errors.append(f"process SUMMARY {summary.group(0) if summary else None!r}, expected {1 + reps} "
                              f"finding(s) ending {want!r}")
            if a.case == "thread" and f["stacks"]["destroyed (the last reference dropped)"]["thread"] == 0:
                errors.append("thread case: destroyed by T0, expected the other thread")
            if a.case == "rebound" and f["stacks"]["borrowed"]["thread"] != 0:
                errors.append("rebound case: borrowed by T%s, expected T0 (the newest borrow)"
                              % f["stacks"]["borrowed"]["thread"])
        if a.schema:
            check_json(prefix, a.schema, findings[0] if findings else None, errors,
                       CASES[a.case].get("repeats", 0) if a.case in CASES else 0)
    for e in errors:
        print("run_python: FAIL:", e)
    if not errors:
        print(f"run_python: ok: {a.case} under {a.python}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
