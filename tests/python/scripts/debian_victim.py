#!/usr/bin/python3.11
"""A dangling borrowed reference in a script run by its "#!" line, as `wref-check -- ./script`
runs it (python.shebang.victim): Debian's python3.11 defines the C API itself, so the checker
only sees the call when wref-check recognises the script as CPython and adds LD_AUDIT.
PyWeakref_GetObject is called through ctypes, whose lookup finds the executable's definition
unless the audit module redirects it."""
import ctypes
import weakref

get = ctypes.pythonapi.PyWeakref_GetObject
get.restype = ctypes.c_void_p   # borrowed: a plain address
get.argtypes = [ctypes.py_object]


class Victim:
    pass


obj = Victim()
ref = weakref.ref(obj)
kept = get(ref)
del obj
print(repr(ctypes.cast(kept, ctypes.py_object).value))
