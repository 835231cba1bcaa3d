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
)

installed() {
    local status
    status=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) || return 1
    [ "$status" = "installed" ]
}

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "setup-debian: dpkg-query not found: this script is for Debian (12) and its derivatives" >&2
    exit 1
fi

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
echo "setup-debian: apt-get update"
apt-get update
echo "setup-debian: apt-get install -y --no-install-recommends ${missing[*]}"
apt-get install -y --no-install-recommends "${missing[@]}"
echo "setup-debian: done"
