#!/bin/sh
# run_tool_test.sh <case>: one test of the wref-check tool. CTest sets (tests/tools/CMakeLists.txt):
#   WREF_TOOL              the tool (build/tools/wref-check)
#   WREF_TOOL_LIB_DIR      the directory of the build tree's libwref-check.so
#   WREF_TOOL_RELEASE_LIB  libwref.so (a harmless library to put in LD_PRELOAD)
#   WREF_TOOL_EXIT_WITH    clean wref program: exit_with N [--print-args args...]
#   WREF_TOOL_LEAK_ONE     wref program that leaks one object
#   WREF_TOOL_OPTIONS_DEF  src/check/engine/options.def (the checker's option table)
#   WREF_TOOL_VERSION      the project version
#   WREF_TOOL_WORK         a scratch directory
#   WREF_TOOL_ASAN_PROG    an ASan-built wref program (asan_leak.c); empty in the TSan tree
#   WREF_TOOL_ASAN_NONEED  the same, its ASan runtime not among its DT_NEEDED
#   WREF_TOOL_NORPATH      exit_with built without rpath
#   WREF_TOOL_MAN          the generated man page; WREF_TOOL_BUILD_DIR, _SOURCE_DIR, _CMAKE,
#                          _CC, _SANITIZE_FLAGS: for the install-prefix test
# Prints what it checks; exits non-zero at the first failed check.
set -u
case_name=${1:?usage: run_tool_test.sh <case>}
tool=$WREF_TOOL
lib=$WREF_TOOL_LIB_DIR/libwref-check.so
work=$WREF_TOOL_WORK/$case_name
rm -rf "$work" && mkdir -p "$work" || exit 1
out=$work/stdout
err=$work/stderr
# The caller's own checker settings must not leak into the expectations.
unset LD_PRELOAD WREF_CHECK_OPTIONS WREF_CHECK_LIBRARY

fail() {
    echo "FAIL: $*"
    echo "--- stdout:"; cat "$out" 2>/dev/null
    echo "--- stderr:"; cat "$err" 2>/dev/null
    exit 1
}
ok() { echo "ok: $*"; }

# run <command...>: runs it with stdout/stderr captured; sets $status.
run() {
    "$@" >"$out" 2>"$err"
    status=$?
}
expect_status() {
    [ "$status" -eq "$1" ] || fail "$2: exit status $status, expected $1"
    ok "$2: exit status $1"
}
expect_out() {   # expect_out <file> <fixed string> <what>
    grep -qF -- "$2" "$1" || fail "$3: '$2' not in $(basename "$1")"
    ok "$3"
}
expect_not() {   # expect_not <file> <fixed string> <what>
    if grep -qF -- "$2" "$1"; then fail "$3: '$2' unexpectedly in $(basename "$1")"; fi
    ok "$3"
}
expect_empty() {
    [ ! -s "$1" ] || fail "$2: $(basename "$1") is not empty"
    ok "$2"
}
# env_value <NAME>: the value of NAME=... in --print-env output, with the shell's single
# quotes removed (values here never contain a quote themselves).
env_value() {
    sed -n "s/^$1=//p" "$out" | sed "s/^'\\(.*\\)'\$/\\1/"
}
# preload_value: env_value LD_PRELOAD without the sanitizer runtime that an ASan or TSan tree's
# checker library needs first (the tool puts it there for every program; see the asan case).
no_runtime() { sed -E 's/^lib[at]san\.so\.[0-9]+://'; }
preload_value() {
    env_value LD_PRELOAD | no_runtime
}
# The build tree's library, symlinks resolved (the tool reports the directory of its own
# resolved executable, so compare real paths).
real() { (cd "$(dirname "$1")" && echo "$(pwd -P)/$(basename "$1")"); }

case $case_name in
help)
    run "$tool" --help
    expect_status 0 "--help"
    # Every option of the checker's table is reachable: a flag of its own (--name-with-dashes)
    # or named in the --option paragraph.
    names=$(sed -n 's/^WREF__OPTION(\([a-z]*\), *\([a-z_]*\),.*/\2/p' "$WREF_TOOL_OPTIONS_DEF")
    [ -n "$names" ] || fail "no options parsed from $WREF_TOOL_OPTIONS_DEF"
    for name in $names; do
        flag=--$(echo "$name" | tr _ -)
        if grep -qE -- "(^|[ ,])$flag([=[ ,]|\$)" "$out"; then
            ok "--help documents $flag"
        else
            expect_out "$out" "$name" "--help names checker option $name (via --option)"
        fi
    done
    # ...and every checker flag of the tool still names an option of the table.
    flags=$(sed -n '/^Checker options/,/^  --option/s/^  --\([a-z-]*\).*/\1/p' "$out" | grep -vx option)
    [ -n "$flags" ] || fail "no checker flags found in --help"
    for flag in $flags; do
        name=$(echo "$flag" | tr - _)
        echo "$names" | grep -qx "$name" || fail "--$flag sets '$name', which options.def does not have"
        ok "--$flag sets checker option $name"
    done
    for flag in --no-leak-check --no-halt-on-error --option --library --print-env --help --version; do
        expect_out "$out" "$flag" "--help documents $flag"
    done
    expect_out "$out" "Exit status" "--help documents exit statuses"
    run "$tool" -h
    expect_status 0 "-h"
    ;;

version)
    run "$tool" --version
    expect_status 0 "--version"
    [ "$(cat "$out")" = "wref-check $WREF_TOOL_VERSION" ] || fail "--version printed '$(cat "$out")'"
    ok "--version prints 'wref-check $WREF_TOOL_VERSION'"
    ;;

print_env)
    run "$tool" --print-env
    expect_status 0 "--print-env without a program"
    preload=$(preload_value)
    case $preload in
    */src/libwref-check.so) ok "LD_PRELOAD is the build tree's src/libwref-check.so" ;;
    *) fail "LD_PRELOAD='$preload' is not <build>/src/libwref-check.so" ;;
    esac
    [ "$(real "$preload")" = "$(real "$lib")" ] || fail "LD_PRELOAD='$preload', expected $lib"
    ok "LD_PRELOAD names $lib"
    expect_not "$out" "WREF_CHECK_OPTIONS" "no WREF_CHECK_OPTIONS when there are no options"

    # Merging: the library goes first, the user's preloads stay (minus duplicates of it); the
    # user's other checker options stay, the command line wins for the names it sets.
    run env LD_PRELOAD="$WREF_TOOL_RELEASE_LIB" \
        WREF_CHECK_OPTIONS="verbosity=0,exitcode=5 color=never:log_path='/a b'" \
        "$tool" --print-env --exitcode=42 --halt-on-error --log-path=/tmp/x \
        --option print-summary=0 --guard sample
    expect_status 0 "--print-env with options"
    preload=$(preload_value)
    [ "$preload" = "${preload%%:*}:$WREF_TOOL_RELEASE_LIB" ] ||
        fail "LD_PRELOAD='$preload', expected <lib>:$WREF_TOOL_RELEASE_LIB"
    [ "$(real "${preload%%:*}")" = "$(real "$lib")" ] || fail "LD_PRELOAD='$preload' does not start with $lib"
    ok "LD_PRELOAD prepends the library to the existing LD_PRELOAD"
    opts=$(env_value WREF_CHECK_OPTIONS)
    expected="verbosity=0:color=never:exitcode=42:halt_on_error=1:log_path=/tmp/x:print_summary=0:guard=sample"
    [ "$opts" = "$expected" ] || fail "WREF_CHECK_OPTIONS='$opts', expected '$expected'"
    ok "WREF_CHECK_OPTIONS merged: $opts"

    # The library already in LD_PRELOAD is not preloaded twice.
    run env LD_PRELOAD="$lib" "$tool" --print-env
    [ "$(preload_value)" = "$(preload_value | cut -d: -f1)" ] ||
        fail "library preloaded twice: $(env_value LD_PRELOAD)"
    ok "no duplicate LD_PRELOAD entry"

    # Values with separators are quoted for the checker; relative paths become absolute.
    (cd "$work" && "$tool" --print-env --log-path="rel/a b" --option report=text,json \
        --no-leak-check --leak-check=1 --no-fast-unwind) >"$out" 2>"$err"
    opts=$(sed -n 's/^WREF_CHECK_OPTIONS=//p' "$out")
    expected="'log_path=\"$(cd "$work" && pwd)/rel/a b\":report=\"text,json\":leak_check=1:fast_unwind=0'"
    [ "$opts" = "$expected" ] || fail "WREF_CHECK_OPTIONS=$opts, expected $expected"
    ok "quoting, absolute log path, last setting wins: $opts"

    # A program named python* that is not an ELF file (a wrapper script) may be either kind of
    # CPython: it gets the rtld-audit module and the static TLS (tools/python_env.c), printed.
    printf '#!/bin/sh\nexit 0\n' >"$work/python3" && chmod +x "$work/python3"
    run "$tool" --print-env -- "$work/python3"
    expect_status 0 "--print-env for a CPython wrapper"
    case $(env_value LD_AUDIT) in
    */libwref-audit.so) ok "LD_AUDIT names libwref-audit.so" ;;
    *) fail "LD_AUDIT='$(env_value LD_AUDIT)' for a CPython wrapper" ;;
    esac
    expect_out "$out" "GLIBC_TUNABLES='glibc.rtld.optional_static_tls=" "GLIBC_TUNABLES for a CPython wrapper"
    ;;

env_reaches_program)
    run env WREF_CHECK_OPTIONS=verbosity=0 "$tool" --exitcode=42 --no-leak-check -- \
        sh -c 'printf "%s\n" "$WREF_CHECK_OPTIONS" "$LD_PRELOAD"'
    expect_status 0 "sh under the tool"
    [ "$(sed -n 1p "$out")" = "verbosity=0:exitcode=42:leak_check=0" ] ||
        fail "the program saw WREF_CHECK_OPTIONS='$(sed -n 1p "$out")'"
    ok "the program sees the merged WREF_CHECK_OPTIONS"
    [ "$(real "$(sed -n 2p "$out" | no_runtime)")" = "$(real "$lib")" ] ||
        fail "the program saw LD_PRELOAD='$(sed -n 2p "$out")'"
    ok "the program sees LD_PRELOAD"
    # Without '--', options stop at the program; the program's own arguments are its own.
    run "$tool" --exitcode=42 "$WREF_TOOL_EXIT_WITH" 0 --print-args --exitcode=1 -- x
    expect_status 0 "program given without --"
    [ "$(cat "$out" | tr '\n' ' ')" = "--exitcode=1 -- x " ] ||
        fail "program arguments were '$(cat "$out" | tr '\n' ' ')'"
    ok "arguments after the program are passed through untouched"
    ;;

library)
    run "$tool" --library "$WREF_TOOL_RELEASE_LIB" --print-env
    expect_status 0 "--library PATH"
    [ "$(preload_value)" = "$WREF_TOOL_RELEASE_LIB" ] || fail "--library ignored: $(env_value LD_PRELOAD)"
    ok "--library PATH is preloaded"
    run env WREF_CHECK_LIBRARY="$WREF_TOOL_RELEASE_LIB" "$tool" --print-env
    [ "$(preload_value)" = "$WREF_TOOL_RELEASE_LIB" ] || fail "WREF_CHECK_LIBRARY ignored"
    ok "WREF_CHECK_LIBRARY is preloaded"
    run "$tool" --library "$work/none.so" --print-env
    expect_status 1 "--library to a missing file"
    expect_out "$err" "$work/none.so" "the error names the missing --library"
    run env WREF_CHECK_LIBRARY="$work/none.so" "$tool" --print-env
    expect_status 1 "WREF_CHECK_LIBRARY to a missing file"
    # A copy of the tool outside the build tree does not find the library and says where it looked.
    if [ -e "/usr/local/lib/libwref-check.so" ] || [ -e "/usr/lib/libwref-check.so" ]; then
        echo "skip: an installed libwref-check.so exists"
    else
        mkdir -p "$work/bin" && cp "$tool" "$work/bin/wref-check"
        run "$work/bin/wref-check" --print-env
        expect_status 1 "no library found"
        expect_out "$err" "cannot find libwref-check.so" "not-found message"
        expect_out "$err" "$work/src/libwref-check.so" "not-found message lists the build-tree place"
        expect_out "$err" "WREF_CHECK_LIBRARY" "not-found message lists WREF_CHECK_LIBRARY"
    fi
    ;;

usage_errors)
    for args in "--bogus" "-x" "--exitcode=abc" "--guard=some" "--halt-on-error=2" \
                "--option nokey" "--no-exitcode" "--exitcode" ""; do
        # shellcheck disable=SC2086
        run "$tool" $args
        expect_status 2 "wref-check $args"
        [ "$(wc -l <"$err")" -eq 1 ] || fail "wref-check $args: more than one line on stderr"
        expect_out "$err" "see wref-check --help" "wref-check $args: one line pointing at --help"
        expect_empty "$out" "wref-check $args: nothing on stdout"
    done
    ;;

missing_program)
    run "$tool" -- "$work/no-such-program"
    expect_status 127 "missing program"
    expect_out "$err" "wref-check: cannot run '$work/no-such-program': No such file or directory" "message"
    run "$tool" no-such-program-in-path-wref
    expect_status 127 "missing program in PATH"
    printf 'not a program\n' >"$work/notexec" && chmod -x "$work/notexec"
    run "$tool" -- "$work/notexec"
    expect_status 126 "program not executable"
    expect_out "$err" "cannot run '$work/notexec': Permission denied" "message"
    ;;

exit_status)
    for n in 7 0 1; do
        run "$tool" -- "$WREF_TOOL_EXIT_WITH" $n
        expect_status $n "clean program exiting $n"
        expect_not "$err" "ERROR" "clean program: no finding"
    done
    ;;

leak)
    run "$tool" -- "$WREF_TOOL_LEAK_ONE"
    expect_status 23 "leaking program (default exitcode)"
    expect_out "$err" "ERROR: wref-check: leak" "leak reported on stderr"
    expect_out "$err" "SUMMARY: wref-check: leak in main" "SUMMARY line"
    run "$tool" --halt-on-error -- "$WREF_TOOL_LEAK_ONE"
    expect_status 23 "leaking program with --halt-on-error"
    ;;

exitcode)
    run "$tool" --exitcode=42 -- "$WREF_TOOL_LEAK_ONE"
    expect_status 42 "--exitcode=42"
    expect_out "$err" "ERROR: wref-check: leak" "leak reported"
    run env WREF_CHECK_OPTIONS=exitcode=5 "$tool" --exitcode 43 "$WREF_TOOL_LEAK_ONE"
    expect_status 43 "--exitcode 43 over WREF_CHECK_OPTIONS=exitcode=5"
    run env WREF_CHECK_OPTIONS=exitcode=5 "$tool" "$WREF_TOOL_LEAK_ONE"
    expect_status 5 "the user's WREF_CHECK_OPTIONS kept"
    ;;

no_leak_check)
    run "$tool" --no-leak-check -- "$WREF_TOOL_LEAK_ONE"
    expect_status 0 "--no-leak-check"
    expect_empty "$err" "--no-leak-check: nothing reported"
    run "$tool" --leak-check=0 -- "$WREF_TOOL_LEAK_ONE"
    expect_status 0 "--leak-check=0"
    ;;

log_path)
    # exec keeps the pid: the shell's $$ is the tool's and the program's pid.
    mkdir -p "$work/logs"
    sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$work/pid" \
        "$tool" --log-path="$work/logs/x" -- "$WREF_TOOL_LEAK_ONE" >"$out" 2>"$err"
    status=$?
    expect_status 23 "--log-path: exit status still the checker's"
    expect_empty "$err" "--log-path: stderr stays clean"
    pid=$(cat "$work/pid")
    [ -f "$work/logs/x.$pid" ] || fail "no $work/logs/x.$pid (have: $(ls "$work/logs"))"
    ok "report written to x.<pid of the tool> = x.$pid"
    expect_out "$work/logs/x.$pid" "ERROR: wref-check: leak" "the log holds the leak report"
    # A relative prefix is taken relative to where the tool was started.
    (cd "$work" && "$tool" --log-path=logs/rel -- "$WREF_TOOL_LEAK_ONE") >"$out" 2>"$err"
    status=$?
    expect_status 23 "relative --log-path"
    ls "$work/logs" | grep -q '^rel\.[0-9]*$' || fail "no logs/rel.<pid> (have: $(ls "$work/logs"))"
    ok "relative --log-path writes logs/rel.<pid>"
    ;;

flag_values)
    # Values are judged as WREF_CHECK_OPTIONS judges them: what the checker would refuse (a
    # warning and its default) the tool refuses before running anything, with one clear line.
    for bad in "--exitcode=300:expected an integer from 0 to 255" "--exitcode=-1:expected an integer from 0 to 255" \
               "--stack-depth=65:expected an integer from 1 to 64" "--verbosity=4:expected an integer from 0 to 3" \
               "--quarantine-mb=lots:expected an integer from 0 to 1048576" "--guard=some:expected one of none|sample|all" \
               "--halt-on-error=2:expected 0 or 1 (also true/false, yes/no)" "--report=xml:expected a comma-separated list of text and json" \
               "--exitcode=1:halt_on_error=1:expected an integer from 0 to 255"; do
        arg=${bad%:expected*}
        want=${bad#"$arg:"}
        run "$tool" --print-env "$arg"
        expect_status 2 "wref-check $arg"
        [ "$(wc -l <"$err")" -eq 1 ] || fail "wref-check $arg: more than one line on stderr"
        expect_out "$err" "wref-check: bad value '${arg#*=}' for ${arg%%=*}: $want; see wref-check --help" \
            "wref-check $arg: refused with '$want'"
        # ...and the checker itself does not accept it either (it warns and keeps its default).
        name=$(echo "${arg%%=*}" | sed 's/^--//' | tr - _)
        run env WREF_CHECK_OPTIONS="$name='${arg#*=}'" LD_PRELOAD="$lib" "$WREF_TOOL_EXIT_WITH" 0
        grep "WARNING" "$err" | grep -qF "'${arg#*=}'" || fail "the checker accepted $name='${arg#*=}'"
        ok "the checker refuses $name='${arg#*=}' too (it warns)"
    done
    run "$tool" --print-env --option exitcode=300
    expect_status 2 "--option exitcode=300 is checked like --exitcode"
    expect_out "$err" "bad value '300' for --option exitcode: expected an integer from 0 to 255" "--option message"
    # Both spellings of a name; the checker's other boolean spellings; the extremes of a range.
    run "$tool" --print-env --halt_on_error --log_path=/tmp/x --exitcode=255 --stack-depth=64 --fast-unwind=false
    expect_status 0 "--halt_on_error, --log_path, --exitcode=255, --stack-depth=64, --fast-unwind=false"
    [ "$(env_value WREF_CHECK_OPTIONS)" = "halt_on_error=1:log_path=/tmp/x:exitcode=255:stack_depth=64:fast_unwind=false" ] ||
        fail "WREF_CHECK_OPTIONS=$(env_value WREF_CHECK_OPTIONS)"
    ok "underscore spellings set the same options"
    run "$tool" --print-env --halt-on-error --no-halt_on_error
    [ "$(env_value WREF_CHECK_OPTIONS)" = "halt_on_error=0" ] || fail "--no-halt_on_error: $(env_value WREF_CHECK_OPTIONS)"
    ok "--no-halt_on_error"
    run "$tool" --halt_on_error -- "$WREF_TOOL_LEAK_ONE"
    expect_status 23 "--halt_on_error runs the program with halt_on_error=1"
    # Every option of options.def except help has a flag that the tool accepts with its default.
    for row in $(sed -n 's/^WREF__OPTION(\([a-z]*\), *\([a-z_]*\), *\([^,]*\),.*/\2=\3/p' "$WREF_TOOL_OPTIONS_DEF"); do
        name=${row%%=*}
        [ "$name" = help ] && continue
        flag=--$(echo "$name" | tr _ -)
        def=$(printf '%s' "${row#*=}" | tr -d '"')
        case $def in   # an enum's default is a constant: its value is in the WREF__OPTION_ENUM row
        WREF__*) def=$(sed -n "s/^WREF__OPTION_ENUM($name, *${def#WREF__}, *\"\(.*\)\")/\1/p" "$WREF_TOOL_OPTIONS_DEF") ;;
        esac
        run "$tool" --print-env "$flag" "$def"
        case $name in report) : ;; *) expect_status 0 "$flag accepts its default" ;; esac
    done
    ;;

warnings)
    # The tool's warnings have the checker's prefix, with the pid of the process (the tool's
    # pid is the program's: exec keeps it).
    sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$work/pid" \
        "$tool" --option no_such_option=1 -- "$WREF_TOOL_EXIT_WITH" 0 >"$out" 2>"$err"
    status=$?
    pid=$(cat "$work/pid")
    expect_status 0 "--option with an unknown name runs the program"
    expect_out "$err" "==$pid==WARNING: wref-check: --option no_such_option=1: 'no_such_option' is not an option" \
        "the tool's warning: ==$pid==WARNING: wref-check:"
    # The tool alone (no program: only its own output).
    run "$tool" --print-env --option no_such_option=1 --option other-unknown=2
    expect_status 0 "--print-env with unknown --option names"
    [ "$(wc -l <"$err")" -eq 2 ] || fail "expected two warnings"
    if grep -vE "^==[0-9]+==WARNING: wref-check: " "$err"; then fail "a warning without the prefix"; fi
    ok "every warning of the tool starts with ==PID==WARNING: wref-check:"
    run "$tool" report "$work"
    expect_status 2 "report of an empty directory"
    grep -qE "^==[0-9]+==WARNING: wref-check: $work: no \*\.json report in this directory\$" "$err" ||
        fail "report's warning lacks the prefix"
    ok "wref-check report's warnings have the same prefix"
    ;;

asan)
    if [ -z "$WREF_TOOL_ASAN_PROG" ]; then
        echo "SKIP: no ASan program in a ThreadSanitizer build"
        exit 77
    fi
    export ASAN_OPTIONS=detect_leaks=0   # not verify_asan_link_order=0: the point of the test
    # By hand, with the checker preloaded first, ASan refuses to start.
    run env LD_PRELOAD="$lib" "$WREF_TOOL_ASAN_PROG"
    expect_status 1 "by hand (LD_PRELOAD=libwref-check.so): ASan's own exit"
    expect_out "$err" "ASan runtime does not come first" "by hand: ASan's link-order check fails"
    run "$tool" --print-env -- "$WREF_TOOL_ASAN_PROG"
    preload=$(env_value LD_PRELOAD)
    case $preload in
    libasan.so.*:*/libwref-check.so*) ok "LD_PRELOAD puts the program's ASan runtime first: $preload" ;;
    *) fail "LD_PRELOAD=$preload" ;;
    esac
    run "$tool" -- "$WREF_TOOL_ASAN_PROG"
    expect_status 23 "under wref-check: the checker's exit status for the leak"
    expect_not "$err" "does not come first" "no ASan link-order error"
    expect_out "$err" "ERROR: wref-check: leak" "the checker reports the leak"
    run "$tool" -- "$WREF_TOOL_ASAN_PROG" overflow
    expect_out "$err" "ERROR: AddressSanitizer: heap-buffer-overflow" "ASan is active too"
    expect_status 1 "ASan's exit status for the overflow"
    # A runtime the user preloaded already stays first, spelled as they spelled it, once.
    asan_path=$(ldd "$WREF_TOOL_ASAN_PROG" | sed -n 's/.*libasan\.so\.[0-9]* => \([^ ]*\).*/\1/p')
    run env LD_PRELOAD="$asan_path:$WREF_TOOL_RELEASE_LIB" "$tool" --print-env -- "$WREF_TOOL_ASAN_PROG"
    preload=$(env_value LD_PRELOAD)
    [ "${preload%%:*}" = "$asan_path" ] && [ "$(echo "$preload" | tr : '\n' | grep -c '/libasan\.so')" -eq 1 ] ||
        fail "LD_PRELOAD=$preload with the user's $asan_path"
    ok "the user's ASan runtime first, once: $preload"
    # ASan code whose runtime is not among the program's DT_NEEDED: a warning that says
    # exactly what to do, and doing it works.
    if readelf -d "$WREF_TOOL_ASAN_NONEED" | grep -q 'NEEDED.*libasan'; then
        echo "skip: tool_asan_noneed needs libasan here (the ASan tree links it into everything)"
    else
        run "$tool" -- "$WREF_TOOL_ASAN_NONEED"
        expect_out "$err" "WARNING: wref-check: $WREF_TOOL_ASAN_NONEED is built with AddressSanitizer but does not itself need the ASan runtime" \
            "runtime not needed by the program itself: a warning"
        expect_out "$err" 'Preload it yourself: LD_PRELOAD=$(gcc -print-file-name=libasan.so) wref-check ...' "the warning says what to do"
        run env LD_PRELOAD="$(gcc -print-file-name=libasan.so)" "$tool" -- "$WREF_TOOL_ASAN_NONEED"
        expect_status 23 "doing what it says: the checker runs and reports the leak"
        expect_not "$err" "WARNING: wref-check: $WREF_TOOL_ASAN_NONEED is built" "no warning then"
    fi
    # A program without ASan gets no ASan runtime, unless the checker library itself is built
    # with ASan (the ASan tree): then its runtime comes first in any program, and LeakSanitizer
    # is off for the uninstrumented program unless ASAN_OPTIONS says otherwise.
    run env -u ASAN_OPTIONS "$tool" --print-env -- /bin/sh
    if [ -z "$WREF_TOOL_SANITIZE_FLAGS" ]; then
        expect_not "$out" "libasan" "no libasan for a program without ASan (/bin/sh)"
    else
        case $(env_value LD_PRELOAD) in
        libasan.so.*:*/libwref-check.so) ok "the ASan-built checker's runtime first for /bin/sh: $(env_value LD_PRELOAD)" ;;
        *) fail "/bin/sh under the ASan-built checker: LD_PRELOAD=$(env_value LD_PRELOAD)" ;;
        esac
        [ "$(env_value ASAN_OPTIONS)" = detect_leaks=0 ] || fail "ASAN_OPTIONS=$(env_value ASAN_OPTIONS)"
        ok "LeakSanitizer off for the uninstrumented /bin/sh"
        run env ASAN_OPTIONS=detect_leaks=1 "$tool" --print-env -- /bin/sh
        expect_not "$out" "ASAN_OPTIONS" "ASAN_OPTIONS that set detect_leaks stay as they are"
    fi
    ;;

no_rpath)
    # A program linked against libwref.so.0 without rpath or LD_LIBRARY_PATH.
    unset LD_LIBRARY_PATH
    run "$WREF_TOOL_NORPATH" 0
    expect_status 127 "by itself it cannot start"
    expect_out "$err" "libwref.so.0: cannot open shared object file" "ld.so cannot find libwref.so.0"
    run "$tool" --print-env -- "$WREF_TOOL_NORPATH"
    preload=$(preload_value)   # the sanitizer trees' programs get their runtime first
    [ "$(real "$(echo "$preload" | cut -d: -f1)")" = "$(real "$lib")" ] &&
        [ "$(real "$(echo "$preload" | cut -d: -f2)")" = "$(real "$WREF_TOOL_LIB_DIR/libwref.so.0")" ] &&
        [ "$(echo "$preload" | tr : '\n' | wc -l)" -eq 2 ] || fail "LD_PRELOAD=$(env_value LD_PRELOAD)"
    ok "the libwref.so.0 next to the checker is preloaded right after it: $(env_value LD_PRELOAD)"
    run "$tool" --print-env -- "$WREF_TOOL_LEAK_ONE"
    case $(env_value LD_PRELOAD) in
    *libwref.so.0*) ok "(leak_one needs libwref.so.0 too: preloaded)" ;;
    *) fail "leak_one (linked against libwref.so.0) got LD_PRELOAD=$(env_value LD_PRELOAD)" ;;
    esac
    run "$tool" --print-env -- /bin/sh
    expect_not "$out" "libwref.so" "a program that does not need libwref.so.0 does not get it"
    run "$tool" --option help=1 -- "$WREF_TOOL_NORPATH" 7
    expect_status 7 "under wref-check it runs (its own exit status 7)"
    expect_out "$err" "wref-check options:" "the checker is active (help=1 printed its table)"
    ;;

installed)
    # From an install prefix: the installed tool, a program built against the installed
    # headers and library with no rpath, and the installed man page.
    prefix=$work/prefix
    "$WREF_TOOL_CMAKE" --install "$WREF_TOOL_BUILD_DIR" --prefix "$prefix" >"$work/install.log" 2>&1 ||
        { cat "$work/install.log"; fail "cmake --install"; }
    libwref=$(find "$prefix" -name libwref.so | head -n 1)
    [ -n "$libwref" ] || fail "no libwref.so installed under $prefix"
    # shellcheck disable=SC2086
    "$WREF_TOOL_CC" -g $WREF_TOOL_SANITIZE_FLAGS -I"$prefix/include" "$WREF_TOOL_SOURCE_DIR/tests/tools/exit_with.c" \
        -L"$(dirname "$libwref")" -lwref -o "$work/prog" 2>"$err" || fail "cannot build against $prefix"
    unset LD_LIBRARY_PATH
    run "$work/prog" 0
    expect_status 127 "the installed-against program alone cannot find libwref.so.0"
    run "$prefix/bin/wref-check" --option help=1 -- "$work/prog" 5
    expect_status 5 "$prefix/bin/wref-check runs it (its own exit status 5)"
    expect_out "$err" "wref-check options:" "the installed checker is active"
    run "$prefix/bin/wref-check" --print-env -- "$work/prog"
    case $(preload_value) in
    "$prefix"/*/libwref-check.so:"$prefix"/*/libwref.so.0) ok "installed LD_PRELOAD: $(env_value LD_PRELOAD)" ;;
    *) fail "installed LD_PRELOAD=$(env_value LD_PRELOAD)" ;;
    esac
    page=$prefix/share/man/man1/wref-check.1
    [ -f "$page" ] || fail "no $page"
    ok "man page installed: $page"
    MANPATH=$prefix/share/man LC_ALL=C MANWIDTH=1000 man wref-check >"$out" 2>"$err"
    status=$?
    expect_status 0 "MANPATH=$prefix/share/man man wref-check"
    expect_out "$out" "wref-check - run a program under the wref checker" "man wref-check shows the page"
    for doc in reports.md wref-check.md; do
        [ -f "$prefix/share/doc/wref/$doc" ] || fail "no $prefix/share/doc/wref/$doc"
    done
    ok "docs installed"
    "$prefix/bin/wref-check" report --format=sarif "$WREF_TOOL_SOURCE_DIR/tests/report/fixtures/clean.json" >"$out" 2>"$err"
    expect_out "$out" "\"helpUri\": \"file://$prefix/share/doc/wref/reports.md#leak\"" "installed SARIF links the installed reports.md"
    ;;

man)
    page=$WREF_TOOL_MAN
    [ -f "$page" ] || fail "no generated man page $page"
    LC_ALL=C MANWIDTH=1000 man -l "$page" >"$out" 2>"$err"
    status=$?
    expect_status 0 "man -l $page"
    expect_empty "$err" "man -l: no warning"
    expect_out "$out" "WREF-CHECK(1)" "rendered page header"
    # Every option of options.def is in it, with its flag, its help sentence and its default.
    sed -n 's/^WREF__OPTION(\([a-z]*\), *\([a-z_]*\),.*/\2/p' "$WREF_TOOL_OPTIONS_DEF" >"$work/names"
    [ -s "$work/names" ] || fail "no options parsed from $WREF_TOOL_OPTIONS_DEF"
    while read -r name; do
        if [ "$name" = help ]; then
            expect_out "$out" "--option help=1" "man: help (via --option help=1)"
            continue
        fi
        flag=--$(echo "$name" | tr _ -)
        grep -qE -- "^ +$flag(\[|=| |,|\$)" "$out" || fail "man: no entry for $flag"
        expect_out "$out" "(checker option $name)" "man: $flag sets $name"
    done <"$work/names"
    # The help sentences come from the table, word for word (the first 40 characters).
    grep -v '^ *[/*]' "$WREF_TOOL_OPTIONS_DEF" | grep -o '"[^"]*")$' | sed 's/^"//; s/")$//' | cut -c1-40 | while read -r sentence; do
        grep -qF -- "$sentence" "$out" || { echo "FAIL: man lacks '$sentence'"; exit 1; }
    done || fail "a help sentence of options.def is missing from the man page"
    ok "every help sentence of options.def is in the page"
    for section in SYNOPSIS DESCRIPTION "CHECKER OPTIONS" "TOOL OPTIONS" ENVIRONMENT "EXIT STATUS"; do
        expect_out "$out" "$section" "man: section $section"
    done
    # The tool prints the same page.
    "$tool" --help-man | cmp -s - "$page" || fail "wref-check --help-man differs from $page"
    ok "wref-check --help-man is the generated page"
    ;;

python_isolated)
    # python -I / -E ignores PYTHONPATH: the tool must not name a plugin pytest cannot import
    # (pytest stops on it: "Error importing plugin"), and says once why it is not loaded.
    py=/usr/bin/python3.11
    if [ ! -x "$py" ] || ! "$py" -c "import pytest" 2>/dev/null; then
        echo "skipped: $py with pytest needed (scripts/setup-debian.sh installs python3-pytest)"
        exit 77
    fi
    for opts in "-m pytest" "-X dev -m pytest" "-W error -m pytest"; do
        # shellcheck disable=SC2086
        run "$tool" --print-env -- "$py" $opts
        expect_out "$out" "PYTEST_PLUGINS=" "python $opts: the plugin is loaded"
    done
    for opts in "-I -m pytest" "-E -m pytest" "-sIB -m pytest" "-X dev -E -mpytest"; do
        # shellcheck disable=SC2086
        run "$tool" --print-env -- "$py" $opts
        expect_not "$out" "PYTEST_PLUGINS" "python $opts: no plugin named"
    done
    mkdir -p "$work/t"
    printf 'def test_ok():\n    assert True\n' > "$work/t/test_ok.py"
    run "$tool" -- "$py" -I -m pytest -q -p no:cacheprovider "$work/t"
    expect_status 0 "python -I -m pytest under the tool"
    expect_out "$out" "1 passed" "pytest ran the test"
    expect_out "$err" "python -I/-E ignores PYTHONPATH, so the wref_pytest plugin is not loaded" \
        "the tool says why the plugin is not loaded"
    run "$tool" -- "$py" -I -c "pass"
    expect_status 0 "python -I -c under the tool"
    expect_empty "$err" "no note when pytest does not run"
    # The same options on a script's "#!" line are the interpreter's too.
    printf '#!%s -I\nprint(1)\n' "$py" > "$work/isolated.py"
    printf '#!/usr/bin/env -S %s -E\nprint(1)\n' "$py" > "$work/env_e.py"
    printf '#!%s\nprint(1)\n' "$py" > "$work/plain.py"
    printf '#!%s -I\nimport sys, pytest\nsys.exit(pytest.console_main())\n' "$py" > "$work/pytest-isolated"
    chmod +x "$work/isolated.py" "$work/env_e.py" "$work/plain.py" "$work/pytest-isolated"
    for script in isolated.py env_e.py pytest-isolated; do
        run "$tool" --print-env -- "$work/$script"
        expect_not "$out" "PYTEST_PLUGINS" "#! script $script: no plugin named"
    done
    run "$tool" --print-env -- "$work/plain.py"
    expect_out "$out" "PYTEST_PLUGINS=" "#! script without options: the plugin is loaded"
    run "$tool" -- "$work/pytest-isolated" -q -p no:cacheprovider "$work/t"
    expect_status 0 "a pytest script with #!python -I under the tool"
    expect_out "$out" "1 passed" "pytest ran the test"
    expect_out "$err" "python -I/-E ignores PYTHONPATH, so the wref_pytest plugin is not loaded" \
        "the tool says why the plugin is not loaded"
    ;;

python_wrapper)
    # Debian's python3.11 defines the C API itself: run by a wrapper the tool does not
    # recognise (or with LD_PRELOAD alone), its extensions' calls never reach the checker, and
    # the checker says so in one line instead of running silently unchecked.
    py=/usr/bin/python3.11
    [ -x "$py" ] || { echo "skipped: $py missing"; exit 77; }
    note="defines the CPython C API itself and libwref-audit.so is not in LD_AUDIT"
    run "$tool" -- sh -c "exec $py -c pass"
    expect_status 0 "python3.11 run by a shell wrapper"
    expect_out "$err" "$note" "the wrapper's python3.11 says it is not checked"
    [ "$(grep -cF -- "$note" "$err")" = 1 ] || fail "the note is not said exactly once"
    ok "said once"
    run env LD_PRELOAD="$lib" "$py" -c pass
    expect_out "$err" "$note" "LD_PRELOAD alone: said"
    run "$tool" -- "$py" -c pass
    expect_status 0 "python3.11 run by the tool itself"
    expect_not "$err" "$note" "the tool's own run (LD_AUDIT set): not said"
    run "$tool" -- sh -c "exit 0"
    expect_empty "$err" "a program that is not CPython: nothing said"
    ;;

*)
    echo "run_tool_test.sh: unknown case '$case_name'"
    exit 2
    ;;
esac
echo "PASS: $case_name"
