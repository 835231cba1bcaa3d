#!/usr/bin/env bash
# setup-debian.sh [GROUP...]: install the Debian 12 packages wref needs, by group.
#
#   demo    what scripts/demo.sh needs: build the libraries, the tool and the examples, run the
#           C demo and the Python extension demo
#   test    what scripts/test.sh needs: the test trees (release, ASan, TSan, fuzz, aarch64) and
#           every tool the tests run (valgrind, the SARIF Multitool's npm, ...); the bench is
#           built in the release tree, so its peers too
#   bench   what scripts/bench.sh needs: the release tree with the bench and its peers
# No group: all of them.
#
# Idempotent: packages already installed are left alone, and when nothing is missing the script
# touches neither apt nor the network. Installing needs root; without root it only reports
# what is missing. Add a package to the group that needs it, with a comment saying why.
set -euo pipefail

# Building libwref, libwref-check and wref-check (every group).
BUILD=(
    build-essential   # gcc, g++ (the project() declares CXX), make, libc headers
    cmake
    ninja-build
    pkg-config
    libunwind-dev     # the checker's backtraces
    libdw-dev         # elfutils: the checker's symbolizer
    libelf-dev        # wref-check reads the program's DT_NEEDED (an ASan runtime to preload first, libwref.so.0)
    libjansson-dev    # wref-check report: a mature, fuzzed JSON parser for untrusted input (the checker only writes JSON)
)
# scripts/demo.sh only.
DEMO=(
    python3           # the Python demo runs python3.11 examples/python/demo.py
    libpython3.11-dev # ... and builds examples/python/locks.c against it (python3.11-config)
)
# A tree configured with the tests (WREF_BUILD_TESTS=ON, the default): test.sh and bench.sh.
TREE=(
    libcmocka-dev     # unit tests
    python3           # test drivers (tests/victims, tests/clean, tests/memcheck), bench/report.py
)
# Running the tests.
TEST=(
    clang
    libclang-rt-14-dev   # libFuzzer and the sanitizer runtimes for clang-14 (-fsanitize=fuzzer, scripts/fuzz.sh):
                         # only a Recommends of clang-14's libclang-common-14-dev, so --no-install-recommends skips it
    man-db            # man -l / man wref-check: tests/tools checks that the generated man page renders
    binutils          # nm, used by the exports test; nm/readelf in tests/report/gen_big_report.py; addr2line in tests/faults
    graphviz          # wref-check report --format=svg runs `dot -Tsvg`; tests/report checks it
    python3-jsonschema  # tests/report: fixtures are validated against docs/report-schema.json
    libicu72          # the SARIF Multitool (npm, a .NET app) aborts at start without ICU
    valgrind          # tests/valgrind (the checker inside memcheck); callgrind counts (scripts/callgrind-gate.sh)
    # tests/python: real CPython code run under the checker
    libpython3.11-dev        # the victim extension modules are built against Debian's python3.11
    libpython3.11-testsuite  # CPython's own test_weakref and test_weakset, run clean under the checker
    python3-pygame           # a real extension that borrows through PyWeakref_GetObject (surface locks)
    python3-dbus             # another (_dbus_bindings borrows its connection for every message)
    python3-gi               # the GLib main loop that dispatches dbus-python's messages
    dbus-daemon              # the private bus of tests/python/dbus_workload.py
    python3-pytest           # the pytest plugin (python/wref_pytest.py) and its --junitxml test
    # the aarch64 cross build of scripts/test.sh (cmake/toolchain-aarch64.cmake): Debian's cross
    # compilers, the arm64 -dev packages of the dependencies through multiarch (the script adds
    # the arm64 architecture first), and qemu-user to run the runtime's unit tests
    gcc-aarch64-linux-gnu
    g++-aarch64-linux-gnu   # the project() declares CXX, so the toolchain needs it too
    qemu-user-static
    libc6:arm64             # the arm64 loader (/lib/ld-linux-aarch64.so.1) qemu runs the tests with
    libunwind-dev:arm64
    libdw-dev:arm64
    libcmocka-dev:arm64
    libjansson-dev:arm64    # tools/ (wref-check report) is configured in every tree
)
# bench/ (built in the release tree by test.sh and bench.sh).
BENCH=(
    g++               # the std::shared_ptr/weak_ptr peer (bench/peer_std.cpp)
    libpython3.11-dev # the CPython 3.11 peer, embedded (pkg-config python-3.11-embed)
    libglib2.0-dev    # the GLib 2.74 GWeakRef / g_object_weak_ref peer
    valgrind          # valgrind/callgrind.h: the bench's instruction counts
    libpython3.11-testsuite  # bench/python/pybench.py times CPython's test_weakref (plain, checker, memcheck, PYTHONMALLOC=debug)
)

groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(demo test bench)
PACKAGES=("${BUILD[@]}")
want_npm=0
for g in "${groups[@]}"; do
    case $g in
        demo)  PACKAGES+=("${DEMO[@]}") ;;
        test)  PACKAGES+=("${TREE[@]}" "${TEST[@]}" "${BENCH[@]}"); want_npm=1 ;;
        bench) PACKAGES+=("${TREE[@]}" "${BENCH[@]}") ;;
        *) echo "setup-debian: unknown group '$g' (demo, test or bench)" >&2; exit 2 ;;
    esac
done
# each package once, in order
mapfile -t PACKAGES < <(printf '%s\n' "${PACKAGES[@]}" | awk '!seen[$0]++')

# Installed for the architecture asked for: <name>:<arch>, or <name> for the native one (or
# "all"). With multiarch, `dpkg-query -W <name>` lists one line per installed architecture.
installed() {
    local arch=${native_arch:-} name=$1
    case $1 in *:*) arch=${1##*:} ;; esac
    dpkg-query -W -f='${Architecture} ${db:Status-Status}\n' "$name" 2>/dev/null |
        awk -v a="$arch" '$2 == "installed" && ($1 == a || $1 == "all" || a == "") { ok = 1 } END { exit !ok }'
}

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "setup-debian: dpkg-query not found: this script is for Debian (12) and its derivatives" >&2
    exit 1
fi

native_arch=$(dpkg --print-architecture)
missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! installed "$pkg"; then
        missing+=("$pkg")
    fi
done

# npm: scripts/setup-npm.sh installs the pinned SARIF Multitool for tests/report with it. Only
# when there is no npm at all: a Node.js from elsewhere (e.g. NodeSource) brings its own npm and
# conflicts with Debian's package.
if [ "$want_npm" = 1 ] && ! command -v npm >/dev/null 2>&1 && ! installed npm; then
    missing+=(npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup-debian (${groups[*]}): all ${#PACKAGES[@]} packages already installed: ${PACKAGES[*]}"
    exit 0
fi

echo "setup-debian: missing packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "setup-debian: error: installing them needs root. Run as root (e.g. sudo $0), or install them yourself:" >&2
    echo "  apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Packages named <name>:arm64 need the arm64 architecture known to dpkg (multiarch).
if printf '%s\n' "${missing[@]}" | grep -q ':arm64$' && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "setup-debian: dpkg --add-architecture arm64"
    dpkg --add-architecture arm64
fi
echo "setup-debian: apt-get update"
apt-get update
echo "setup-debian: apt-get install -y --no-install-recommends ${missing[*]}"
apt-get install -y --no-install-recommends "${missing[@]}"
echo "setup-debian: done"
