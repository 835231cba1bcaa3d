"""ctypes_get.py: calls PyWeakref_GetObject through ctypes (which finds the checker's
definition first when it is preloaded before a shared libpython) and prints the result.
Runs on any CPython with ctypes, so it also drives interpreters the frontend does not support."""
import ctypes
import weakref


class C(object):
    pass


obj = C()
get = ctypes.pythonapi.PyWeakref_GetObject
get.restype = ctypes.c_void_p   # a borrowed reference: never ctypes.py_object (that steals one)
get.argtypes = [ctypes.py_object]
ref = weakref.ref(obj)
print("referent is obj: %s" % (get(ref) == id(obj)))
