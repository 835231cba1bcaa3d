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
# The CPython frontend's PyWeakref_GetObject call and an object's allocation and free
# (bench/python/get_child.py and pyget.c) are counted too, in Debian's /usr/bin/python3.11 and
# in every pyenv build the tree made the module for: plain ("cpython", not gated) and under the
# checker ("wref-check", gated: py_get_same, py_get_many, py_alloc_free; OP.TAG for pyenv's,
# which callgrind_gate.py skips on a machine without that interpreter), each in its own callgrind process in a subdirectory of the
# dump directory. They run one after the other while wrbench's own run goes on (2 CPUs).
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

# The CPython frontend's cases, in the background: Debian's python3.11 (python-plain/,
# python-check/: py_get_same, py_get_many, py_alloc_free) and each other interpreter the build made the module
# for (bench/python/interps.txt: every pyenv build of 3.9-3.13 with a shared libpython found;
# python-plain.TAG/, python-check.TAG/: py_get_same.TAG, py_get_many.TAG).
py_list=()
if [ -f "$build/bench/python/interps.txt" ]; then
    mapfile -t py_list < "$build/bench/python/interps.txt"
else
    py_list=("debian-3.11|/usr/bin/python3.11|$build/bench/python/debian-3.11")
fi
cg=(valgrind --tool=callgrind --instr-atstart=no --dump-line=no --dump-instr=no --separate-threads=no)
py_runs=()   # "tag|python|module dir|dump suffix"
for entry in "${py_list[@]}"; do
    IFS='|' read -r py_tag py_python py_mod <<< "$entry"
    if [ ! -f "$py_mod/wref_pybench.so" ] || [ ! -x "$py_python" ]; then
        echo "callgrind-gate: $py_mod/wref_pybench.so or $py_python missing: no py_* cases for $py_tag" >&2
        continue
    fi
    suffix=.$py_tag
    [ "$py_tag" = debian-3.11 ] && suffix=
    py_runs+=("$py_tag|$py_python|$py_mod|$suffix")
done
# the environment wref-check gives a CPython program (LD_PRELOAD, LD_AUDIT, GLIBC_TUNABLES), set
# by env inside valgrind so that neither valgrind nor setarch loads the checker; verbosity=1: its
# statistics line at exit proves the frontend recorded the borrows
py_one() {   # tag python moddir suffix: the plain and the checked process of one interpreter
    local env_lines
    mapfile -t env_lines < <("$build/tools/wref-check" --verbosity=1 --print-env -- "$2" | sed "s/='\(.*\)'\$/=\1/")
    mkdir -p "$out/python-plain$4" "$out/python-check$4"
    (cd "$out/python-plain$4" && setarch "$(uname -m)" -R env PYTHONHASHSEED=0 "${cg[@]}" \
        "$2" -S "$root/bench/python/get_child.py" "$3" --callgrind cpython 10000 >out.txt 2>valgrind.log) &&
    (cd "$out/python-check$4" && setarch "$(uname -m)" -R env PYTHONHASHSEED=0 "${cg[@]}" --trace-children=yes \
        env "${env_lines[@]}" "$2" -S "$root/bench/python/get_child.py" "$3" --callgrind wref-check 10000 \
        >out.txt 2>valgrind.log)
}
py_pid=
if [ ${#py_runs[@]} -gt 0 ]; then
    (
        for r in "${py_runs[@]}"; do
            IFS='|' read -r t p m x <<< "$r"
            py_one "$t" "$p" "$m" "$x" || exit 1
        done
    ) &
    py_pid=$!
else
    echo "callgrind-gate: no CPython module built: no py_* cases (their gated counts will be missing)" >&2
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
for r in "${py_runs[@]}"; do
    IFS='|' read -r t p m x <<< "$r"
    if ! grep -Eq "python frontend: CPython [^:]+: [1-9][0-9]* borrows from PyWeakref_GetObject" \
            "$out/python-check$x/valgrind.log"; then
        echo "callgrind-gate: the checked CPython run ($t) shows no borrows recorded by the checker (see $out/python-check$x/valgrind.log)" >&2
        exit 2
    fi
done
status=0
python3 "$root/bench/callgrind_gate.py" "$out" "$root/bench/callgrind-baseline.json" \
    --json "$out/ir-per-op.json" "${update[@]}" || status=$?
echo "callgrind-gate: $((SECONDS - start))s"
exit $status
