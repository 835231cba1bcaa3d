"""never_ran_cases.py: callback-never-ran with many referents and with running threads at exit
(run_never_ran.py drives it; docs/python.md, callback-never-ran).

usage: python never_ran_cases.py CASE MODULE_DIR

many_ok:    2,000 referents get a callback registered from C (victim_borrow.subscribe); 1,500
            of them are still alive at exit, each held by something the garbage collector sees
            (a module global list, a dict, another referent's attribute); the others (self
            cycles, collected, and 500 that die at once) have their callbacks run. No finding.
many_leak:  the same, and the first referent registered (the oldest, which a scan of the newest
            registrations only would miss) leaks: a reference taken in C and never released
            (victim_borrow.keep_forever). Exactly one callback-never-ran, on that referent.
thread_ok:  a daemon thread still running at exit holds a referent in its local variables only
            (an argument and a local), while the main thread returns. No finding.
Lines marked "# @name" are where run_never_ran.py expects Python frames."""
import sys
import threading

sys.path.insert(0, sys.argv[2])
import victim_borrow as vb  # noqa: E402

N = 2000
KEPT = []
BY_NAME = {}


class Victim:
    def __init__(self, name):
        self.name = name
        self.peer = None


def subscribe(obj):
    vb.subscribe(obj, lambda r: print("callback ran"))  # @subscribe


def case_many(leak):
    if leak:
        lost = Victim("lost")
        vb.subscribe(lost, lambda r: print("callback ran"))  # @leak_reg
        vb.keep_forever(lost)
        del lost
    for i in range(N):
        obj = Victim(i)
        subscribe(obj)
        if i % 4 == 0:
            KEPT.append(obj)
        elif i % 4 == 1:
            BY_NAME[i] = obj
        elif i % 4 == 2:
            obj.peer = obj  # a cycle: alive until a collection, or at exit
            KEPT.append(obj.name)
        else:
            KEPT[-1 if isinstance(KEPT[-1], Victim) else -2].peer = obj
    for i in range(500):
        subscribe(Victim(-i))  # dies at once: its callback runs
    print("registered", N + 500 + int(leak))


def worker(obj, started):
    mine = Victim("thread local")
    subscribe(mine)  # @thread_reg
    started.set()
    threading.Event().wait()  # never returns: the thread is still running at exit
    print(obj, mine)


def case_thread_ok():
    started = threading.Event()
    obj = Victim("thread argument")
    subscribe(obj)
    threading.Thread(target=worker, args=(obj, started), daemon=True).start()
    del obj
    started.wait()
    print("thread running")


def main():
    case = sys.argv[1]
    if case == "thread_ok":
        case_thread_ok()
    else:
        case_many(case == "many_leak")  # @main


main()  # @module
