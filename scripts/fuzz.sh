#!/usr/bin/env bash
# fuzz.sh: build the libFuzzer targets with clang and run each for a bounded time.
#
#   scripts/fuzz.sh                      every target, FUZZ_SECONDS (default 45) each, JOBS at a
#                                        time (4 targets on 2 cores: 90 s of wall time)
#   FUZZ_SECONDS=3600 scripts/fuzz.sh    a long run
#   FUZZ_TARGETS=options scripts/fuzz.sh a subset ("api options")
#
# Builds in build/fuzz (clang, RelWithDebInfo, -DWREF_FUZZ=ON; only the fuzz targets). Each
# target starts from its seeds (tests/fuzz/corpus/<target>/, read-only) plus the units earlier
# runs found (build/fuzz/corpus/<target>/, where new units go). A crash, leak, timeout or model
# divergence leaves its input in build/fuzz/artifacts/<target>/ and fails the script; the log is
# build/fuzz/<target>.log. Prints one line per target: executions, exec/s, cov and ft.
#
# Environment: FUZZ_SECONDS, FUZZ_TARGETS, JOBS (default 2: the build, and
# the targets fuzzed at once), FUZZ_ARGS (extra
# libFuzzer flags, e.g. "-jobs=2 -workers=2" or "-only_ascii=1"), CC (default clang).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

FUZZ_SECONDS=${FUZZ_SECONDS:-45}
FUZZ_TARGETS=${FUZZ_TARGETS:-api options report checker}
JOBS=${JOBS:-2}
CC=${CC:-clang}
dir=build/fuzz

if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz.sh: $CC not found (scripts/setup-debian.sh installs clang and libclang-rt-14-dev)" >&2
    exit 1
fi
cxx=${CC/clang/clang++}
command -v "$cxx" >/dev/null 2>&1 || cxx=$CC

mkdir -p "$dir"
echo "==== fuzz: configure and build in $dir ===="
cmake -S . -B "$dir" -G Ninja -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWREF_FUZZ=ON -DWREF_BUILD_EXAMPLES=OFF >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log" >&2; echo "fuzz.sh: configure failed" >&2; exit 1; }
targets=()
for t in $FUZZ_TARGETS; do targets+=("fuzz_$t"); done
cmake --build "$dir" -j "$JOBS" --target "${targets[@]}"

# ASan: report leaks (the API target checks its own allocator too); UBSan: stop at the first.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# One target: its run and its summary line in $dir/<target>.result ("ok"/"FAILED" last).
fuzz_one() {
    local t=$1 seeds=tests/fuzz/corpus/$1 work=$dir/corpus/$1 artifacts=$dir/artifacts/$1/
    local log=$dir/$1.log status=0 last cov ft corp runs rate line args
    mkdir -p "$work" "$artifacts"
    args=(-max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
          -artifact_prefix="$artifacts")
    [ -f "tests/fuzz/$t.dict" ] && args+=(-dict="tests/fuzz/$t.dict")
    # shellcheck disable=SC2206  # FUZZ_ARGS is a list of flags
    [ -n "${FUZZ_ARGS:-}" ] && args+=($FUZZ_ARGS)
    echo "==== fuzz: $t for ${FUZZ_SECONDS}s (log: $log, crashes: $artifacts) ===="
    "$dir/tests/fuzz/fuzz_$t" "${args[@]}" "$work" "$seeds" >"$log" 2>&1 || status=$?
    # the last status line ("#N DONE cov: C ft: F corp: ...") and the final stats
    last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1 || true)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.* corp: ([0-9]+)\/.*/\1/p' <<<"$last")
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    line=$(printf '%-8s %10s execs %6s exec/s  cov %5s  ft %6s  corpus %5s' "$t" "${runs:-?}" \
        "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")
    if [ "$status" -ne 0 ]; then
        grep -E 'DIVERGENCE|fuzz_options:|ERROR:|SUMMARY:|Test unit written' "$log" | head -n 20 >&2 || true
        echo "fuzz.sh: $t FAILED (exit $status); input in $artifacts, log $log" >&2
        line+="  FAILED"
    else
        line+="  ok"
    fi
    echo "$line" >"$dir/$t.result"
    echo "$line"
}

# JOBS targets at a time (each libFuzzer process uses one core), so 4 targets of FUZZ_SECONDS
# take 2 x FUZZ_SECONDS of wall time on 2 cores, with no target's fuzzing time cut.
running=0
for t in $FUZZ_TARGETS; do
    rm -f "$dir/$t.result"
    fuzz_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true

failed=0
summary=()
for t in $FUZZ_TARGETS; do
    if [ -f "$dir/$t.result" ]; then
        summary+=("$(cat "$dir/$t.result")")
    else
        summary+=("$t: no result (the run did not finish)  FAILED")
    fi
    case ${summary[-1]} in *FAILED) failed=1 ;; esac
done

echo
echo "==== fuzz summary (${FUZZ_SECONDS}s per target) ===="
printf '%s\n' "${summary[@]}"
exit "$failed"
