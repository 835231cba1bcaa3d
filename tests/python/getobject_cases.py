"""getobject_cases.py MODDIR: what PyWeakref_GetObject, called from an extension module
(victim_fork.get), answers for each kind of argument: the checker's interposer reads an exact
weakref.ref itself and hands anything else to the real function, so under wref-check the
answers must be CPython's own. Prints "getobject: N cases as CPython answers them, M
referents returned" and exits 0, or names the first case that differs and exits 1."""
import sys
import weakref


class Obj:
    pass


class Ref(weakref.ref):
    pass


def main():
    sys.path.insert(0, sys.argv[1])
    import victim_fork as m

    live = Obj()
    dead = Obj()
    cases = [
        ("live ref", weakref.ref(live), live),
        ("live ref with callback", weakref.ref(live, lambda r: None), live),
        ("dead ref", weakref.ref(dead), None),
        ("live subclass ref", Ref(live), live),
        ("dead subclass ref", Ref(dead), None),
        ("live proxy", weakref.proxy(live), live),
        ("live callable proxy", weakref.proxy(len), len),
        ("dead proxy", weakref.proxy(dead), None),
        ("not a weakref", 42, SystemError),
        ("a type", weakref.ref, SystemError),
    ]
    del dead   # the referent dies: its refs and proxy are cleared
    returned = 0
    for name, arg, want in cases:
        try:
            got = m.get(arg)
        except Exception as e:   # noqa: BLE001 (the C API's error is the answer)
            got = type(e)
        if got is not want:
            print(f"getobject: FAIL: {name}: got {got!r}, expected {want!r}")
            return 1
        returned += got is not None and got is not SystemError
    print(f"getobject: {len(cases)} cases as CPython answers them, {returned} referents returned", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
