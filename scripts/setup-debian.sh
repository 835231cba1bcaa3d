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
    libunwind-dev     # the checker's backtraces
    libcmocka-dev     # unit tests
    libdw-dev         # elfutils: the checker's symbolizer
    binutils          # nm, used by the exports test
    # bench/ (built in the release tree by test.sh and bench.sh):
    g++               # the std::shared_ptr/weak_ptr peer (bench/peer_std.cpp)
    libpython3.11-dev # the CPython 3.11 peer, embedded (pkg-config python-3.11-embed)
    libglib2.0-dev    # the GLib 2.74 GWeakRef / g_object_weak_ref peer
    valgrind          # callgrind instruction counts (scripts/callgrind-gate.sh) and valgrind/callgrind.h
    python3           # bench/report.py (table, chart, docs/performance.md) and the gate's comparison
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
