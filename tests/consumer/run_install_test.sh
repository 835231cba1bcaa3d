#!/usr/bin/env bash
# run_install_test.sh: install the wref build into a temporary prefix and use it from outside,
# as a user would (CTest install.consumer, tests/consumer/CMakeLists.txt sets the environment):
#
#   1. cmake --install <build> --prefix <work>/prefix; the expected files are there
#      (libraries with their SONAME links, headers, tool, CMake package, pkg-config files);
#   2. tests/consumer/project configured with find_package(wref CONFIG) against that prefix,
#      built (wref::wref, wref::check, wref::wref_static), run, and its own CTest run
#      (tests added with WrefCheck.cmake's wref_check_add_test, one expected to fail);
#   3. the same program built with pkg-config only (tests/consumer/project/Makefile), run;
#   4. the installed bin/wref-check finds <prefix>/<libdir>/libwref-check.so by itself and
#      runs the consumer: clean run exit 0, leaking run exit 23 with a leak report; then the
#      whole prefix is moved and the tool still finds its library.
#
# Environment: WREF_BUILD_DIR, WREF_SOURCE_DIR, WREF_WORK (scratch directory, emptied),
# WREF_LIBDIR (CMAKE_INSTALL_LIBDIR), WREF_CMAKE, WREF_CTEST, WREF_GENERATOR, CC,
# WREF_SAN_FLAGS (the build's -fsanitize flags, given to the consumer too), WREF_RUN_ENV
# (NAME=value;... set when running consumer programs, e.g. ASAN_OPTIONS).
set -euo pipefail

: "${WREF_BUILD_DIR:?}" "${WREF_SOURCE_DIR:?}" "${WREF_WORK:?}" "${WREF_LIBDIR:?}"
: "${WREF_CMAKE:=cmake}" "${WREF_CTEST:=ctest}" "${WREF_GENERATOR:=Ninja}" "${CC:=cc}"
: "${WREF_SAN_FLAGS:=}" "${WREF_RUN_ENV:=}"

fail() { echo "install test: FAIL: $*" >&2; exit 1; }
step() { printf '\n---- %s\n' "$*"; }

# The tool must find the installed library by itself, not through these.
unset WREF_CHECK_LIBRARY LD_PRELOAD WREF_CHECK_OPTIONS
# Run-time environment for the consumer programs (sanitizer options of this build).
IFS=';' read -r -a run_env <<<"$WREF_RUN_ENV"
for kv in "${run_env[@]}"; do [ -n "$kv" ] && export "${kv?}"; done

rm -rf "$WREF_WORK"
mkdir -p "$WREF_WORK"
prefix=$WREF_WORK/prefix
project=$WREF_SOURCE_DIR/tests/consumer/project

step "cmake --install $WREF_BUILD_DIR --prefix $prefix"
"$WREF_CMAKE" --install "$WREF_BUILD_DIR" --prefix "$prefix" >"$WREF_WORK/install.log" ||
    { cat "$WREF_WORK/install.log"; fail "cmake --install failed"; }
lib=$prefix/$WREF_LIBDIR
expect_files=(
    "$lib/libwref.so" "$lib/libwref.so.0" "$lib/libwref.so.0.1.0" "$lib/libwref.a"
    "$lib/libwref-check.so" "$lib/libwref-check.so.0" "$lib/libwref-check.so.0.1.0"
    "$prefix/include/wref.h" "$prefix/include/wref/check.h" "$prefix/bin/wref-check"
    "$lib/cmake/wref/wrefConfig.cmake" "$lib/cmake/wref/wrefConfigVersion.cmake"
    "$lib/cmake/wref/wrefTargets.cmake" "$lib/cmake/wref/WrefCheck.cmake"
    "$lib/pkgconfig/wref.pc" "$lib/pkgconfig/wref-check.pc")
for f in "${expect_files[@]}"; do
    [ -e "$f" ] || fail "not installed: ${f#"$prefix"/}"
done
for so in libwref libwref-check; do
    [ -L "$lib/$so.so" ] && [ "$(readlink "$lib/$so.so")" = "$so.so.0" ] ||
        fail "$so.so is not a symlink to $so.so.0"
    [ "$(readlink "$lib/$so.so.0")" = "$so.so.0.1.0" ] || fail "$so.so.0 is not a symlink to $so.so.0.1.0"
    soname=$(objdump -p "$lib/$so.so.0.1.0" | awk '$1 == "SONAME" { print $2 }')
    [ "$soname" = "$so.so.0" ] || fail "$so SONAME is '$soname', expected $so.so.0"
done
[ -x "$prefix/bin/wref-check" ] || fail "bin/wref-check is not executable"
echo "installed: ${#expect_files[@]} files present, SONAME links ok"

# expect_output PROGRAM ACTIVE: the consumer's three lines, with "checker active: ACTIVE".
expect_output() {
    local out
    out=$("$1") || fail "$1 exited with status $?"
    [ "$out" = "$(printf 'checker active: %s\ncallback ran: 1\nalive after: 0' "$2")" ] ||
        fail "$1 printed unexpected output:"$'\n'"$out"
    echo "$1: ok (checker active: $2)"
}

step "find_package(wref CONFIG): configure, build, run, ctest"
cfg=$WREF_WORK/cmake-consumer
"$WREF_CMAKE" -S "$project" -B "$cfg" -G "$WREF_GENERATOR" -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_COMPILER="$CC" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS="$WREF_SAN_FLAGS" -DCMAKE_EXE_LINKER_FLAGS="$WREF_SAN_FLAGS" \
    -DWREF_CONSUMER_TEST_ENV="$WREF_RUN_ENV" >"$WREF_WORK/cmake-consumer.log" 2>&1 ||
    { cat "$WREF_WORK/cmake-consumer.log"; fail "consumer configure failed"; }
# the package found is the one just installed, not another copy on the system
grep -q "^wref_DIR:PATH=$lib/cmake/wref\$" "$cfg/CMakeCache.txt" ||
    fail "find_package(wref) did not use $lib/cmake/wref: $(grep '^wref_DIR' "$cfg/CMakeCache.txt")"
"$WREF_CMAKE" --build "$cfg" >>"$WREF_WORK/cmake-consumer.log" 2>&1 ||
    { cat "$WREF_WORK/cmake-consumer.log"; fail "consumer build failed"; }
expect_output "$cfg/consumer" 0
expect_output "$cfg/consumer_checked" 1
expect_output "$cfg/consumer_static" 0
# grep reads all of ldd's output (no -q): with pipefail, grep -q exiting at the first match
# can kill ldd with SIGPIPE and fail the pipeline although the line was there.
ldd "$cfg/consumer" | grep "libwref.so.0 => $lib/libwref.so.0" >/dev/null ||
    fail "consumer does not load the installed libwref: $(ldd "$cfg/consumer" | grep wref)"
(cd "$cfg" && "$WREF_CTEST" --output-on-failure) || fail "the consumer's own tests (WrefCheck.cmake) failed"
ntests=$(cd "$cfg" && "$WREF_CTEST" -N | sed -n 's/^Total Tests: //p')
[ "$ntests" = 3 ] || fail "expected 3 consumer tests, ctest -N says ${ntests:-nothing}"

step "pkg-config: make -f $project/Makefile"
pc=$WREF_WORK/pkgconfig-consumer
mkdir -p "$pc"
echo "pkg-config --cflags --libs wref: $(PKG_CONFIG_PATH=$lib/pkgconfig pkg-config --cflags --libs wref)"
[ "$(PKG_CONFIG_PATH=$lib/pkgconfig pkg-config --modversion wref)" = 0.1.0 ] || fail "pkg-config --modversion wref"
PKG_CONFIG_PATH=$lib/pkgconfig make -s -C "$pc" -f "$project/Makefile" SRCDIR="$project" \
    CC="$CC" CFLAGS="-O1 -g $WREF_SAN_FLAGS" LDFLAGS="$WREF_SAN_FLAGS" ||
    fail "the pkg-config build failed"
expect_output "$pc/consumer" 0
expect_output "$pc/consumer_checked" 1

step "the installed wref-check"
# preload_line <--print-env output>: its LD_PRELOAD line without the sanitizer runtime that an
# ASan or TSan tree's checker needs first (the tool puts it there for every program).
preload_line() { head -n 1 <<<"$1" | sed -E 's/^LD_PRELOAD=lib[at]san\.so\.[0-9]+:/LD_PRELOAD=/'; }
tool=$prefix/bin/wref-check
env_out=$("$tool" --print-env) || fail "wref-check --print-env failed"
[ "$(preload_line "$env_out")" = "LD_PRELOAD=$lib/libwref-check.so" ] ||
    fail "the installed tool did not pick <prefix>/$WREF_LIBDIR/libwref-check.so: $env_out"
"$tool" -- "$pc/consumer" >"$WREF_WORK/tool-clean.out" 2>"$WREF_WORK/tool-clean.err" ||
    fail "wref-check -- consumer: exit $? (expected 0); stderr: $(cat "$WREF_WORK/tool-clean.err")"
grep -q '^checker active: 1$' "$WREF_WORK/tool-clean.out" || fail "the checker was not preloaded"
[ ! -s "$WREF_WORK/tool-clean.err" ] || fail "a clean run printed on stderr: $(cat "$WREF_WORK/tool-clean.err")"
echo "wref-check -- consumer: exit 0, checker active, no report"
status=0
"$tool" --color=never -- "$pc/consumer" leak >/dev/null 2>"$WREF_WORK/tool-leak.err" || status=$?
[ "$status" = 23 ] || fail "wref-check -- consumer leak: exit $status, expected 23; stderr: $(cat "$WREF_WORK/tool-leak.err")"
grep -q '^==[0-9]*==ERROR: wref-check: leak on point#' "$WREF_WORK/tool-leak.err" ||
    fail "no leak report: $(cat "$WREF_WORK/tool-leak.err")"
grep -q '^SUMMARY: wref-check: 1 finding(s) in process [0-9]*: 1 leak$' "$WREF_WORK/tool-leak.err" ||
    fail "no one-leak SUMMARY line: $(cat "$WREF_WORK/tool-leak.err")"
echo "wref-check -- consumer leak: exit 23, one leak reported"

step "the prefix moved as a whole"
mv "$prefix" "$WREF_WORK/moved"
env_out=$("$WREF_WORK/moved/bin/wref-check" --print-env) || fail "moved wref-check --print-env failed"
[ "$(preload_line "$env_out")" = "LD_PRELOAD=$WREF_WORK/moved/$WREF_LIBDIR/libwref-check.so" ] ||
    fail "the moved tool did not find the moved library: $env_out"
[ "$(PKG_CONFIG_PATH=$WREF_WORK/moved/$WREF_LIBDIR/pkgconfig pkg-config --variable=libdir wref)" -ef \
  "$WREF_WORK/moved/$WREF_LIBDIR" ] || fail "wref.pc is not relocatable"
echo "moved prefix: tool and wref.pc follow"

echo
echo "install test: PASS"
