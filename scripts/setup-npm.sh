#!/usr/bin/env bash
# setup-npm.sh: install the npm tools the tests use, at the versions pinned in
# tests/report/sarif/package-lock.json (Microsoft's SARIF Multitool, which validates
# `wref-check report --format=sarif`; test report.sarif_validate).
#
# Idempotent: does nothing when the pinned version is already installed. Without npm it says
# so and exits 0 (the validation test then skips with that reason).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$root/tests/report/sarif

if ! command -v npm >/dev/null 2>&1; then
    echo "setup-npm: npm not found: the SARIF Multitool validation test will be skipped"
    exit 0
fi
want=$(sed -n 's/.*"@microsoft\/sarif-multitool": *"\([^"]*\)".*/\1/p' "$dir/package.json")
have=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' \
    "$dir/node_modules/@microsoft/sarif-multitool/package.json" 2>/dev/null | head -n 1 || true)
if [ "$have" != "$want" ] || [ ! -e "$dir/node_modules/.bin/sarif-multitool" ]; then
    echo "setup-npm: npm ci in tests/report/sarif (@microsoft/sarif-multitool $want)"
    (cd "$dir" && npm ci --no-audit --no-fund)
fi
# The native package makes its binary executable in a postinstall script, which npm may be
# configured not to run.
chmod u+x "$dir"/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool 2>/dev/null || true
echo "setup-npm: @microsoft/sarif-multitool $want installed in tests/report/sarif"
