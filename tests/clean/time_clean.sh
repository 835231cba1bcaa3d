#!/usr/bin/env bash
# time_clean.sh BUILD_DIR [RUNS]: time each clean program with and without the checker
# (LD_PRELOAD=libwref-check.so) and print the slowdown. Best of RUNS (default 3) wall-clock
# runs each way. Information for humans, not a test: nothing is asserted. Scale the work
# with CLEAN_ROUNDS (default per program: 20,000 to 200,000) and CLEAN_DEPTH (deep_chain,
# default 100,000), e.g. CLEAN_ROUNDS=2000000 CLEAN_DEPTH=1000000 time_clean.sh build 1.
set -euo pipefail
build=${1:?usage: time_clean.sh BUILD_DIR [RUNS]}
runs=${2:-3}
lib=$(ls "$build"/src/libwref-check.so 2>/dev/null || true)
[ -n "$lib" ] || { echo "no $build/src/libwref-check.so: build first" >&2; exit 1; }
asan=""
if grep -q '^WREF_SANITIZE:STRING=address' "$build/CMakeCache.txt" 2>/dev/null; then
    asan="verify_asan_link_order=0"
fi

best() {   # best PRELOAD EXE: the best wall time of $runs runs, in seconds
    local preload=$1 exe=$2 b="" t s e
    for _ in $(seq "$runs"); do
        s=$(date +%s.%N)
        env ASAN_OPTIONS="$asan" LD_PRELOAD="$preload" "$exe" >/dev/null 2>&1 || { echo "FAILED: $exe" >&2; return 1; }
        e=$(date +%s.%N)
        t=$(echo "$e - $s" | bc)
        if [ -z "$b" ] || [ "$(echo "$t < $b" | bc)" = 1 ]; then b=$t; fi
    done
    echo "$b"
}

printf '%-20s %10s %12s %9s\n' program "plain (s)" "checker (s)" slowdown
for exe in "$build"/tests/clean/clean_*; do
    [ -x "$exe" ] || continue
    name=$(basename "$exe"); name=${name#clean_}
    plain=$(best "" "$exe")
    checked=$(best "$lib" "$exe")
    printf '%-20s %10.3f %12.3f %8.1fx\n' "$name" "$plain" "$checked" "$(echo "$checked / $plain" | bc -l)"
done
