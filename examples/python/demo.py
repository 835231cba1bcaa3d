"""demo.py: a tiny program using the locks extension (locks.c). A view releases its lock and
closes itself, which drops the last reference to it, while locks.release_all() still holds a
borrowed pointer to it.

usage: python3 demo.py DIR_WITH_locks.so"""
import sys

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else ".")
import locks  # noqa: E402

open_views = {}


class View:
    def __init__(self, name):
        self.name = name
        self.locked = True
        open_views[name] = self
        locks.lock(self)

    def on_release(self):
        del open_views[self.name]  # the view closes: its last strong reference goes away


def redraw():
    View("main")
    View("sidebar")
    locks.release_all()


redraw()
print("views still open:", sorted(open_views))
