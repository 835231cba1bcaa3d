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
# GLIBC_TUNABLES: room for libwref-check's static TLS when dlopen'ed (wrbench.c would re-exec
# itself to set it, which valgrind would not follow).
(cd "$out" && setarch "$(uname -m)" -R env PYTHONHASHSEED=0 \
    GLIBC_TUNABLES=glibc.rtld.optional_static_tls=65536 \
    valgrind --tool=callgrind --instr-atstart=no --dump-line=no --dump-instr=no \
    --separate-threads=no "$bin" --callgrind >wrbench.out 2>valgrind.log) || {
    echo "callgrind-gate: valgrind run failed (see $out/valgrind.log)" >&2
    tail -n 20 "$out/valgrind.log" >&2
    exit 2
}
status=0
python3 "$root/bench/callgrind_gate.py" "$out" "$root/bench/callgrind-baseline.json" \
    --json "$out/ir-per-op.json" "${update[@]}" || status=$?
echo "callgrind-gate: $((SECONDS - start))s"
exit $status
