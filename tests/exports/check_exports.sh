#!/bin/sh
# check_exports.sh: a shared library exports exactly the functions listed in a file.
#
# usage: check_exports.sh [--update] LIBRARY EXPECTED_LIST [NM]
#
# Compares the sorted names of the functions LIBRARY defines in its dynamic symbol table
# (nm -D --defined-only: types T, W and i) with EXPECTED_LIST (one name a line; blank lines and
# lines starting with '#' are ignored). On a difference it prints a unified diff
# (- expected, + actual) and exits 1. --update rewrites EXPECTED_LIST from LIBRARY instead.
# NM defaults to $NM, then nm.
set -eu

update=0
if [ "${1:-}" = "--update" ]; then
    update=1
    shift
fi
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 [--update] LIBRARY EXPECTED_LIST [NM]" >&2
    exit 2
fi
lib=$1
list=$2
nm_tool=${3:-${NM:-nm}}

if [ ! -f "$lib" ]; then
    echo "check_exports: no such library: $lib" >&2
    exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Function symbols only; strip symbol versions (name@VER / name@@VER).
"$nm_tool" -D --defined-only "$lib" |
    awk '$2 == "T" || $2 == "W" || $2 == "i" { sub(/@.*/, "", $3); print $3 }' |
    LC_ALL=C sort -u >"$tmp/actual"

if [ "$update" -eq 1 ]; then
    {
        echo "# Functions libwref.so and libwref-check.so export, one a line, sorted (LC_ALL=C)."
        echo "# Checked by tests/exports; regenerate with: tests/exports/check_exports.sh --update build/src/libwref.so tests/exports/exports.txt"
        cat "$tmp/actual"
    } >"$list"
    echo "check_exports: wrote $(wc -l <"$tmp/actual") names to $list"
    exit 0
fi

# EXTRA_LIST (environment): a second list of names this library exports on top of LIST.
cat "$list" ${EXTRA_LIST:+"$EXTRA_LIST"} | grep -v -e '^#' -e '^[[:space:]]*$' | LC_ALL=C sort -u >"$tmp/expected"

name=$(basename "$lib")
if diff -u --label "expected ($list)" --label "actual ($name)" "$tmp/expected" "$tmp/actual" >"$tmp/diff"; then
    echo "check_exports: $name exports the $(wc -l <"$tmp/actual" | tr -d ' ') expected functions"
    exit 0
fi

missing=$(grep -c '^-[^-]' "$tmp/diff" || true)
extra=$(grep -c '^+[^+]' "$tmp/diff" || true)
echo "check_exports: FAIL: $name: $missing expected function(s) missing, $extra unexpected function(s) exported" >&2
echo "  (- expected but not exported, + exported but not expected)" >&2
cat "$tmp/diff" >&2
echo "If the change is intended, add the name to $list (every export is deliberate, and" >&2
echo "libwref.so and libwref-check.so must export the same list)." >&2
exit 1
