#!/usr/bin/env bash
# check_self_contained.sh SOURCE_DIR: the product never refers to files outside its repository.
# Fails when a file of the source tree (code, tests, docs, scripts) names the design notes that
# lived next to the repository during development (a "shared" directory one level up): they do
# not ship, so such a reference is a dead link for every user. The semantics and the API
# contract are docs/semantics.md and docs/api.md.
set -euo pipefail
src=${1:?usage: check_self_contained.sh SOURCE_DIR}
cd "$src"
pattern='(\.\./|/work/)shared/|shared/(design|reference)/'
hits=$(grep -rnE "$pattern" --exclude-dir=.git --exclude-dir=build --exclude-dir=node_modules \
           --exclude=check_self_contained.sh . || true)
if [ -n "$hits" ]; then
    echo "FAILED: references to files outside the repository:"
    echo "$hits"
    exit 1
fi
echo "ok: no reference to files outside the repository"
