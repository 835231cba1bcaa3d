"""fork_load.py MODDIR [K]: a process forks K times (default 200) with the GIL released while
another thread keeps borrowing through the checker's CPython frontend (victim_fork.c). Every
child must exit 0 at once; prints "fork: K children, K exited 0, 0 hung, 0 other" and exits 0
when they all did, 1 otherwise."""
import sys
import threading


class Obj:
    pass


def main():
    sys.path.insert(0, sys.argv[1])
    import victim_fork as m

    k = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    result = []
    t = threading.Thread(target=lambda: result.append(m.hammer(Obj)))
    t.start()
    ok, hung, other = m.fork_children(k, 5000)
    t.join()
    print(f"fork: {k} children, {ok} exited 0, {hung} hung, {other} other; hammer: {result[0]} borrows",
          flush=True)
    return 0 if ok == k and result[0] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
