#!/bin/sh
# run_valgrind.sh: the checker inside valgrind memcheck (issue 6, coexistence).
#
# usage: run_valgrind.sh LIBWREF_CHECK SUPPRESSIONS VICTIM
#
# Runs VICTIM (a dangling-borrow victim built against libwref) with the checker preloaded,
# under memcheck. Both tools must work: the checker reports its one finding (exit 23, the
# checker's), and memcheck reports no error of its own (it would exit 99) given our
# suppressions file, so the checker's memory handling is clean in memcheck's eyes.
set -u
lib=$1 supp=$2 victim=$3
if ! command -v valgrind >/dev/null 2>&1; then
    echo "run_valgrind: valgrind not installed (scripts/setup-debian.sh installs it)" >&2
    exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
LD_PRELOAD=$lib valgrind -q --error-exitcode=99 --suppressions="$supp" "$victim" >"$log" 2>&1
status=$?
fail=0
[ "$status" -eq 23 ] || { echo "FAIL: exit status $status, expected 23 (the checker's; 99: a memcheck error)"; fail=1; }
grep -q '==ERROR: wref-check: dangling-borrow' "$log" || { echo "FAIL: no dangling-borrow finding"; fail=1; }
if grep -qE '^==[0-9]+== [A-Z][a-z]' "$log"; then
    echo "FAIL: memcheck reported errors:"; grep -E '^==[0-9]+== ' "$log" | head -20; fail=1
fi
[ "$fail" -eq 0 ] && echo "ok: the checker found its bug and memcheck found none" || cat "$log"
exit "$fail"
