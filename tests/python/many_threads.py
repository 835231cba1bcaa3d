"""many_threads.py: a dangling borrow made by thread number 4100 or so (the checker numbers
threads as they first allocate), whose create stack therefore lives in the create stacks'
table for threads numbered 4095 and up, not in the radix map (src/check/python/origins.c).

    python many_threads.py MODULE_DIR

4100 threads are started one after another; each allocates a few objects. The last one makes
the victim object (@mt_make), and victim_borrow.use_after_callback uses the pointer
PyWeakref_GetObject returned after the callback dropped the object: the report must say where
the object was created, by which thread, with its Python frame.
"""
import sys
import threading
import weakref

sys.path.insert(0, sys.argv[1])
import victim_borrow as vb  # noqa: E402

THREADS = 4100


class Victim:
    pass


def allocate():
    return [Victim() for _ in range(4)]


def bug():
    holder = [Victim()]  # @mt_make
    ref = weakref.ref(holder[0])
    try:
        vb.use_after_callback(ref, holder.clear)
    except ReferenceError as e:  # the checker's tombstone refused the use
        print("ReferenceError:", e)


for i in range(THREADS):
    t = threading.Thread(target=allocate)
    t.start()
    t.join()
t = threading.Thread(target=bug)
t.start()
t.join()
print("threads", THREADS + 1)
