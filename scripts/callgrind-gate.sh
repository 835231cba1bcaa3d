#!/usr/bin/env bash
# callgrind-gate.sh: instructions per operation of the key operations, for wref, wref-check and
# each peer, under callgrind; fails when a wref count grew by more than 10%, or a wref-check
# (checker) count by more than 15%, over bench/callgrind-baseline.json (bench/callgrind_gate.py).
#
#   scripts/callgrind-gate.sh [BUILD_DIR] [--update]
#
# BUILD_DIR (default build/release) must be configured with -DWREF_BUILD_BENCH=ON. The run is
# deterministic: same binary, fixed batch size (10000), ASLR off (setarch -R), a fixed
# PYTHONHASHSEED. --update rewrites the baseline (after an intended change; commit it).
#
# The CPython frontend's PyWeakref_GetObject call (bench/python/get_child.py and pyget.c, in
# Debian's /usr/bin/python3.11) is counted too, plain ("cpython", not gated) and under the
# checker ("wref-check", gated: py_get_same, py_get_many), each in its own callgrind process in
# a subdirectory of the dump directory. Those two run one after the other while wrbench's own
# run goes on, so on 2 CPUs they add little to the gate's time.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build/release
update=()
for a in "$@"; do
    case $a in
        --update) update=(--update) ;;
        *) build=$(cd "$a" && pwd) ;;
    esac
done
bin=$build/bench/wrbench
if [ ! -x "$bin" ]; then
    echo "callgrind-gate: $bin not found (configure $build with -DWREF_BUILD_BENCH=ON)" >&2
    exit 2
fi

out=$build/callgrind
rm -rf "$out"
mkdir -p "$out"
start=$SECONDS

# The CPython frontend's cases, in the background (python-plain/, python-check/).
py_tag=debian-3.11
py_python=/usr/bin/python3.11
py_mod=$build/bench/python/$py_tag
py_pid=
if [ -f "$py_mod/wref_pybench.so" ] && [ -x "$py_python" ]; then
    # the environment wref-check gives a CPython program (LD_PRELOAD, LD_AUDIT, GLIBC_TUNABLES),
    # set by env inside valgrind so that neither valgrind nor setarch loads the checker;
    # verbosity=1: its statistics line at exit proves the frontend recorded the borrows
    mapfile -t py_env < <("$build/tools/wref-check" --verbosity=1 --print-env -- "$py_python" | sed "s/='\(.*\)'\$/=\1/")
    cg=(valgrind --tool=callgrind --instr-atstart=no --dump-line=no --dump-instr=no --separate-threads=no)
    (
        mkdir -p "$out/python-plain" "$out/python-check"
        cd "$out/python-plain" && setarch "$(uname -m)" -R env PYTHONHASHSEED=0 "${cg[@]}" \
            "$py_python" -S "$root/bench/python/get_child.py" "$py_mod" --callgrind cpython 10000 \
            >out.txt 2>valgrind.log &&
        cd "$out/python-check" && setarch "$(uname -m)" -R env PYTHONHASHSEED=0 "${cg[@]}" --trace-children=yes \
            env "${py_env[@]}" "$py_python" -S "$root/bench/python/get_child.py" "$py_mod" --callgrind wref-check 10000 \
            >out.txt 2>valgrind.log
    ) &
    py_pid=$!
else
    echo "callgrind-gate: $py_mod/wref_pybench.so or $py_python missing: no py_get_* cases (their gated counts will be missing)" >&2
fi

# GLIBC_TUNABLES: room for libwref-check's static TLS when dlopen'ed (wrbench.c would re-exec
# itself to set it, which valgrind would not follow).
(cd "$out" && setarch "$(uname -m)" -R env PYTHONHASHSEED=0 \
    GLIBC_TUNABLES=glibc.rtld.optional_static_tls=65536 \
    valgrind --tool=callgrind --instr-atstart=no --dump-line=no --dump-instr=no \
    --separate-threads=no "$bin" --callgrind >wrbench.out 2>valgrind.log) || {
    echo "callgrind-gate: valgrind run failed (see $out/valgrind.log)" >&2
    tail -n 20 "$out/valgrind.log" >&2
    [ -z "$py_pid" ] || wait "$py_pid" || true
    exit 2
}
if [ -n "$py_pid" ] && ! wait "$py_pid"; then
    echo "callgrind-gate: the CPython frontend's valgrind run failed (see $out/python-*/valgrind.log)" >&2
    tail -n 20 "$out"/python-*/valgrind.log >&2
    exit 2
fi
if [ -n "$py_pid" ] && ! grep -Eq "python frontend: CPython [^:]+: [1-9][0-9]* borrows from PyWeakref_GetObject" \
        "$out/python-check/valgrind.log"; then
    echo "callgrind-gate: the checked CPython run shows no borrows recorded by the checker (see $out/python-check/valgrind.log)" >&2
    exit 2
fi
status=0
python3 "$root/bench/callgrind_gate.py" "$out" "$root/bench/callgrind-baseline.json" \
    --json "$out/ir-per-op.json" "${update[@]}" || status=$?
echo "callgrind-gate: $((SECONDS - start))s"
exit $status
