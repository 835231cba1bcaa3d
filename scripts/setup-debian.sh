#!/usr/bin/env bash
# setup-debian.sh: install the Debian 12 packages wref needs to build and test.
#
# Idempotent: packages already installed are left alone, and when nothing is missing the script
# touches neither apt nor the network. Installing needs root; without root it only reports
# what is missing.
set -euo pipefail

PACKAGES=(
    build-essential   # gcc, make, libc headers
    cmake
    ninja-build
    pkg-config
    clang
    libclang-rt-14-dev   # libFuzzer and the sanitizer runtimes for clang-14 (-fsanitize=fuzzer, scripts/fuzz.sh):
                         # only a Recommends of clang-14's libclang-common-14-dev, so --no-install-recommends skips it
    libunwind-dev     # the checker's backtraces
    libcmocka-dev     # unit tests
    libdw-dev         # elfutils: the checker's symbolizer
    libelf-dev        # wref-check reads the program's DT_NEEDED (an ASan runtime to preload first, libwref.so.0)
    man-db            # man -l / man wref-check: tests/tools checks that the generated man page renders
    binutils          # nm, used by the exports test; nm/readelf in tests/report/gen_big_report.py
    libjansson-dev    # wref-check report: a mature, fuzzed JSON parser for untrusted input (the checker only writes JSON)
    graphviz          # wref-check report --format=svg runs `dot -Tsvg`; tests/report checks it
    python3-jsonschema  # tests/report: fixtures are validated against docs/report-schema.json
    libicu72          # the SARIF Multitool (npm, a .NET app) aborts at start without ICU
    valgrind          # tests/valgrind (the checker inside memcheck); callgrind counts (scripts/callgrind-gate.sh)
    python3           # test drivers (tests/victims, tests/clean, tests/memcheck), bench/report.py
    # bench/ (built in the release tree by test.sh and bench.sh):
    g++               # the std::shared_ptr/weak_ptr peer (bench/peer_std.cpp)
    libpython3.11-dev # the CPython 3.11 peer, embedded (pkg-config python-3.11-embed)
    libglib2.0-dev    # the GLib 2.74 GWeakRef / g_object_weak_ref peer
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
if ! command -v npm >/dev/null 2>&1 && ! installed npm; then
    missing+=(npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup-debian: all ${#PACKAGES[@]} packages already installed: ${PACKAGES[*]}"
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
