#!/usr/bin/env bash
# bench.sh: the whole performance table in one command.
#
#   scripts/bench.sh [--quick] [--python-only]
#
# Set-up (scripts/setup-debian.sh), the release build with the bench (build/release, the same
# tree scripts/test.sh uses), one wrbench run (every implementation side by side, 15 interleaved
# rounds, medians), the callgrind counts, the CPython frontend's run (bench/python/pybench.py:
# PyWeakref_GetObject from an extension module and CPython's test_weakref, plain, under
# wref-check, with PYTHONMALLOC=debug and under valgrind memcheck, interleaved), the whole
# programs' run (bench/programs.py: a program that only exits and tests/clean's programs, plain,
# under the checker, under wref-check and under memcheck, interleaved), then:
#   bench/results.json     the run's records {"op", "impl", "ns", "threads", ...}
#   bench/results.txt      the printed table
#   bench/results.svg      the chart
#   bench/python-results.json, bench/python-results.txt   the CPython frontend's run
#   bench/programs-results.json, bench/programs-results.txt   the whole programs' run
#   docs/performance.md    the table, machine, targets (bench/report.py; notes from bench/notes.md
#                          and bench/python/notes.md)
# --quick: 1 ms batches and 5 rounds, one Python round without test_weakref (a smoke test; do
# not commit its results). --python-only: no wrbench run (the page keeps bench/results.json's).
# Environment: JOBS (default 2), ROUNDS (default 15; also the whole programs' rounds), PY_ROUNDS
# (default 5), PY_SUITE_ROUNDS (default 3), PY_SUITE_INTERPS (default debian-3.11,pyenv-3.12,pyenv-3.13; 'all').
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
JOBS=${JOBS:-2}
ROUNDS=${ROUNDS:-15}
extra=()
py_extra=(--rounds "${PY_ROUNDS:-5}" --suite-rounds "${PY_SUITE_ROUNDS:-3}"
          --suite-interps "${PY_SUITE_INTERPS:-debian-3.11,pyenv-3.12,pyenv-3.13}")
python_only=0
for a in "$@"; do
    case $a in
        --quick) extra=(--quick); py_extra=(--quick); ROUNDS=5 ;;
        --python-only) python_only=1 ;;
        *) echo "bench.sh: unknown argument $a (--quick, --python-only)" >&2; exit 2 ;;
    esac
done
start=$SECONDS

scripts/setup-debian.sh bench
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DWREF_WERROR=ON -DWREF_BUILD_BENCH=ON
cmake --build build/release -j "$JOBS"

if [ "$python_only" = 0 ]; then
    echo "bench.sh: running wrbench ($ROUNDS rounds; checker reports go to build/release/wrbench.stderr)"
    build/release/bench/wrbench --rounds "$ROUNDS" --json bench/results.json "${extra[@]}" \
        2>build/release/wrbench.stderr | tee bench/results.txt
fi

if [ "$python_only" = 0 ]; then
    echo "bench.sh: running bench/programs.py ($ROUNDS rounds)"
    prog_extra=(--rounds "$ROUNDS")
    [ "${#extra[@]}" = 0 ] || prog_extra=(--quick)
    python3 bench/programs.py --build build/release --json bench/programs-results.json \
        "${prog_extra[@]}" | tee bench/programs-results.txt
fi
run_s=$((SECONDS - start))

scripts/callgrind-gate.sh build/release || echo "bench.sh: warning: the callgrind gate failed (see above)"

echo "bench.sh: running bench/python/pybench.py (logs in build/release/python-logs)"
python3 bench/python/pybench.py --tool build/release/tools/wref-check \
    --interps build/release/bench/python/interps.txt --json bench/python-results.json \
    --logdir build/release/python-logs "${py_extra[@]}" | tee bench/python-results.txt

python3 bench/report.py bench/results.json bench/results.svg docs/performance.md \
    build/release/callgrind/ir-per-op.json --python bench/python-results.json \
    --programs bench/programs-results.json
echo "bench.sh: wrote bench/results.json bench/results.txt bench/results.svg bench/programs-results.json bench/python-results.json docs/performance.md"
echo "bench.sh: ${run_s}s to the end of the run, $((SECONDS - start))s in all"
