#!/usr/bin/env bash
# demo.sh: install what is needed, build wref (Release, Ninja) into build/, run the demo.
#
# The demo runs the examples (a weak-value cache and an observer list), then the checker on a
# program with a dangling borrowed reference, and on a CPython extension module with the same
# bug under Debian's python3.11. Works from any directory.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

JOBS=${JOBS:-2}
BUILD=build

banner() { printf '\n==== %s ====\n' "$*"; }

run_examples() {
    local ex
    for ex in weak_cache observer; do
        banner "examples/$ex.c"
        "$BUILD/examples/$ex"
    done
}

# ---- run_checker_demo ---------------------------------------------------------------------
# The main job: wref-check runs a program that keeps a borrowed pointer from wref_get_object()
# after the object died, and prints the report. The program is wrong on purpose: the demo
# succeeds when the checker finds the bug (exit status 23, its findings exit code) and fails
# when it does not.
run_checker_demo() {
    local tool="$BUILD/tools/wref-check" victim="$BUILD/examples/dangling_borrow_demo" status=0
    banner "wref-check -- $victim"
    "$tool" -- "$victim" || status=$?
    if [ "$status" -ne 23 ]; then
        echo "demo: expected the checker to report the dangling borrow (exit 23), got exit $status" >&2
        exit 1
    fi
    echo "(wref-check exit status: $status: the checker found the bug above)"
}
# -------------------------------------------------------------------------------------------

# ---- run_python_demo ----------------------------------------------------------------------
# The same bug in a CPython extension module (examples/python/locks.c, built here against
# Debian's python3.11): a borrowed pointer from PyWeakref_GetObject used after a Python
# callback dropped the last reference. Nothing is rebuilt but the module itself; the report
# shows the C frames and the Python frames of each stack. Expects exit status 23.
run_python_demo() {
    local tool="$BUILD/tools/wref-check" dir="$BUILD/examples/python" status=0
    banner "wref-check -- python3.11 examples/python/demo.py"
    mkdir -p "$dir"
    cc -shared -fPIC -g -O1 -fno-omit-frame-pointer -Wall -Wextra $(python3.11-config --includes) \
        examples/python/locks.c -o "$dir/locks.so"
    "$tool" -- /usr/bin/python3.11 examples/python/demo.py "$dir" || status=$?
    if [ "$status" -ne 23 ]; then
        echo "demo: expected the checker to report the dangling borrow in locks.c (exit 23), got exit $status" >&2
        exit 1
    fi
    echo "(wref-check exit status: $status: the checker found the bug in the extension module)"
}
# -------------------------------------------------------------------------------------------

banner "setup"
scripts/setup-debian.sh demo   # only what the demo needs; scripts/test.sh installs the test tool chains

banner "configure and build ($BUILD, Release)"
# The libraries, the tool and the examples; not the test suite (scripts/test.sh builds that in
# its own trees, with cmocka, the sanitizers and the rest).
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWREF_BUILD_TESTS=OFF
cmake --build "$BUILD" -j "$JOBS"

run_examples
run_checker_demo
run_python_demo

banner "done"
echo "Next: scripts/test.sh runs the whole test suite (release, ASan and TSan builds)."
