#!/usr/bin/env bash
# test.sh: build wref three ways and run the whole CTest suite in each.
#
#   build/release  Release, warnings are errors, with bench/; then scripts/callgrind-gate.sh
#   build/asan     Debug, AddressSanitizer + UndefinedBehaviorSanitizer (asserts on)
#   build/tsan     RelWithDebInfo, ThreadSanitizer
#                  (both also run the CPython tests, tests/python: uninstrumented interpreters
#                  with the instrumented checker, its sanitizer runtime preloaded first by
#                  wref-check; docs/python.md, "In the ASan and TSan trees")
#   build/aarch64  Release, cross-compiled for 64-bit Arm (cmake/toolchain-aarch64.cmake): builds
#                  libwref, libwref-check and the runtime's unit tests, and runs those tests
#                  (ctest -L runtime) under qemu-user; a portability check, kept to ~2 minutes
#
# Runs scripts/setup-debian.sh first (a no-op when the packages are installed). Every tree is
# built and tested even when an earlier one fails; the script prints one summary line per tree
# and exits non-zero when any configure, build or test failed. Works from any directory.
#
# Then runs the fuzz targets for a bounded time (scripts/fuzz.sh, clang, build/fuzz).
#
# Environment: JOBS (default 2) for the build and ctest; WREF_TEST_BUILDS to run a subset
# ("release asan tsan aarch64"); WREF_TSAN_SETARCH=1 forces ctest under `setarch -R` for the tsan tree;
# FUZZ_SECONDS (default 45) per fuzz target (4 targets), WREF_TEST_FUZZ=0 to skip fuzzing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

JOBS=${JOBS:-2}
BUILDS=${WREF_TEST_BUILDS:-release asan tsan aarch64}

# Sanitizer defaults; anything already in the environment wins.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-second_deadlock_stack=1}

scripts/setup-debian.sh test
scripts/setup-npm.sh

# Sanitizer trees do not use -Werror: -O0/-O1 and sanitizer instrumentation produce their own
# warnings (e.g. GCC's -Wtsan), and the release tree already enforces a warning-free build.
cmake_args_for() {
    case $1 in
        release) echo "-DCMAKE_BUILD_TYPE=Release -DWREF_WERROR=ON -DWREF_BUILD_BENCH=ON" ;;
        asan) echo "-DCMAKE_BUILD_TYPE=Debug -DWREF_SANITIZE=address -DWREF_WERROR=ON" ;;
        tsan) echo "-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWREF_SANITIZE=thread -DWREF_WERROR=ON" ;;
        aarch64) echo "--toolchain cmake/toolchain-aarch64.cmake -DCMAKE_BUILD_TYPE=Release -DWREF_WERROR=ON" ;;
        *) echo "test.sh: unknown build '$1'" >&2; return 1 ;;
    esac
}

# Prints the command prefix ctest needs under TSan: nothing, or `setarch <arch> -R` when a
# trivial TSan program only runs with ASLR off (some kernels: "unexpected memory mapping").
tsan_prefix() {
    local dir=$1 cc probe
    if [ "${WREF_TSAN_SETARCH:-0}" = 1 ]; then
        echo "setarch $(uname -m) -R"
        return
    fi
    cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$dir/CMakeCache.txt")
    probe="$dir/tsan-probe"
    printf '%s\n' '#include <pthread.h>' \
        'static int n;' \
        'static void *run(void *a) { (void)a; __atomic_fetch_add(&n, 1, __ATOMIC_SEQ_CST); return 0; }' \
        'int main(void) { pthread_t t; pthread_create(&t, 0, run, 0); pthread_join(t, 0); return n != 1; }' \
        >"$probe.c"
    if ! "${cc:-cc}" -fsanitize=thread -pthread -o "$probe" "$probe.c" >"$probe.log" 2>&1; then
        echo "test.sh: warning: cannot compile a TSan probe (see $probe.log)" >&2
        return
    fi
    if "$probe" >>"$probe.log" 2>&1; then
        return   # TSan works as is
    fi
    if setarch "$(uname -m)" -R "$probe" >>"$probe.log" 2>&1; then
        echo "test.sh: TSan needs ASLR off on this kernel: running ctest under setarch -R" >&2
        echo "setarch $(uname -m) -R"
        return
    fi
    echo "test.sh: warning: a trivial TSan program fails even with ASLR off (see $probe.log)" >&2
}

summary=()
failed=0

add_summary() {   # name status what start-time
    summary+=("$(printf '%-8s %-7s %-40s %5ds' "$1" "$2" "$3" $((SECONDS - $4)))")
}

# The aarch64 tree: what is built and which tests run (under qemu-user, through CTest's
# CMAKE_CROSSCOMPILING_EMULATOR). The runtime's unit tests, with shorter stress and chain
# lengths than the native trees (qemu is ~10x slower); the checker is compiled, not run, but for
# its stack capture's unit tests (label stack: test_stack with the AArch64 prologue check,
# test_stack_learn with the portable fallback).
AARCH64_TARGETS=(wref wref_static wref-check test_conformance test_api_misc test_deep_chain
                 test_alloc_faults test_threads test_fork test_stack test_stack_learn)
AARCH64_ENV=(WREF_STRESS_OPS=100000 WREF_FORK_ROUNDS=50 WREF_CHAIN_LENGTH=200000)

run_build() {
    local name=$1 dir="build/$1" args prefix=() log start=$SECONDS status line nfail total
    local targets=() ctest_args=()
    if ! args=$(cmake_args_for "$name"); then
        add_summary "$name" FAILED "unknown build" "$start"
        return 1
    fi
    echo
    echo "==== $name: configure, build, test in $dir ===="
    # shellcheck disable=SC2086  # args is a list of -D options
    if ! cmake -S . -B "$dir" -G Ninja $args; then
        add_summary "$name" FAILED "configure failed" "$start"
        return 1
    fi
    if [ "$name" = aarch64 ]; then
        targets=(--target "${AARCH64_TARGETS[@]}")
        prefix=(env "${AARCH64_ENV[@]}")
        ctest_args=(-L 'runtime|stack')
    fi
    if ! cmake --build "$dir" -j "$JOBS" "${targets[@]}"; then
        add_summary "$name" FAILED "build failed" "$start"
        return 1
    fi
    if [ "$name" = tsan ]; then
        read -r -a prefix <<<"$(tsan_prefix "$dir")"
        [ ${#prefix[@]} -eq 0 ] || echo "test.sh: running ctest under: ${prefix[*]}"
    fi
    log="$dir/ctest.log"
    status=0
    (cd "$dir" && "${prefix[@]}" ctest --output-on-failure --no-tests=error -j "$JOBS" "${ctest_args[@]}") 2>&1 | tee "$log" ||
        status=$?
    # ctest ends with e.g. "100% tests passed, 0 tests failed out of 12".
    line=$(grep -Eo '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
    if [ -n "$line" ]; then
        read -r nfail total <<<"$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+)/\1 \2/' <<<"$line")"
        line="$((total - nfail))/$total tests passed, $nfail failed"
    else
        line="no test summary (ctest exit status $status)"
        [ "$status" -ne 0 ] || status=1
    fi
    if [ "$status" -eq 0 ]; then
        add_summary "$name" ok "$line" "$start"
    else
        add_summary "$name" FAILED "$line" "$start"
        return 1
    fi
    # The performance regression gate: release tree only (instruction counts, not wall time).
    if [ "$name" = release ]; then
        start=$SECONDS
        echo
        echo "==== release: callgrind gate (bench/callgrind-baseline.json) ===="
        if scripts/callgrind-gate.sh "$dir"; then
            add_summary gate ok "wref/wref-check Ir/op within 10%/15%" "$start"
        else
            add_summary gate FAILED "callgrind gate (scripts/callgrind-gate.sh)" "$start"
            return 1
        fi
    fi
}

total_start=$SECONDS
for name in $BUILDS; do
    run_build "$name" || failed=1
done

# libFuzzer targets: a clang build in build/fuzz, each target run FUZZ_SECONDS (default 45; 4 targets, 2 at a time: 90 s);
# WREF_TEST_FUZZ=0 skips it (tests/README.md, "Fuzzing").
if [ "${WREF_TEST_FUZZ:-1}" != 0 ]; then
    fuzz_start=$SECONDS
    if FUZZ_SECONDS=${FUZZ_SECONDS:-45} scripts/fuzz.sh; then
        add_summary fuzz ok "every target ran ${FUZZ_SECONDS:-45}s, no finding" "$fuzz_start"
    else
        add_summary fuzz FAILED "a finding or build error (build/fuzz/*.log)" "$fuzz_start"
        failed=1
    fi
fi

echo
echo "==== summary ($((SECONDS - total_start))s) ===="
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
    echo "test.sh: FAILED (logs: build/<tree>/ctest.log)"
    exit 1
fi
echo "test.sh: all builds passed"
