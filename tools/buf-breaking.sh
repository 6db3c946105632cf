#!/usr/bin/env bash
# buf breaking against the last release of the protos (a git commit), with the
# google.rpc deps that `make protos` copies into build/proto-deps (not in git).
set -euo pipefail
BUF=${BUF:-build/tools/node_modules/.bin/buf}
BASE=${1:?usage: buf-breaking.sh <git revision of the last release of protos/>}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
git archive "$BASE" protos buf.yaml | tar -x -C "$dir"
mkdir -p "$dir/build"
cp -r build/proto-deps "$dir/build/proto-deps"
"$BUF" breaking --against "$dir"
