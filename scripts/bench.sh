#!/usr/bin/env bash
# bench.sh: the whole performance table in one command.
#
#   scripts/bench.sh [--quick]
#
# Set-up (scripts/setup-debian.sh), the release build with the bench (build/release, the same
# tree scripts/test.sh uses), one wrbench run (every implementation side by side, 15 interleaved
# rounds, medians), the callgrind counts, then:
#   bench/results.json     the run's records {"op", "impl", "ns", "threads", ...}
#   bench/results.txt      the printed table
#   bench/results.svg      the chart
#   docs/performance.md    the table, machine, targets (bench/report.py; notes from bench/notes.md)
# --quick: 1 ms batches and 5 rounds (a smoke test; do not commit its results).
# Environment: JOBS (default 2), ROUNDS (default 15).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
JOBS=${JOBS:-2}
ROUNDS=${ROUNDS:-15}
extra=()
if [ "${1:-}" = --quick ]; then
    extra=(--quick)
    ROUNDS=5
fi
start=$SECONDS

scripts/setup-debian.sh bench
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DWREF_WERROR=ON -DWREF_BUILD_BENCH=ON
cmake --build build/release -j "$JOBS"

echo "bench.sh: running wrbench ($ROUNDS rounds; checker reports go to build/release/wrbench.stderr)"
build/release/bench/wrbench --rounds "$ROUNDS" --json bench/results.json "${extra[@]}" \
    2>build/release/wrbench.stderr | tee bench/results.txt
run_s=$((SECONDS - start))

scripts/callgrind-gate.sh build/release || echo "bench.sh: warning: the callgrind gate failed (see above)"

python3 bench/report.py bench/results.json bench/results.svg docs/performance.md \
    build/release/callgrind/ir-per-op.json
echo "bench.sh: wrote bench/results.json bench/results.txt bench/results.svg docs/performance.md"
echo "bench.sh: ${run_s}s to the end of the run, $((SECONDS - start))s in all"
