#!/usr/bin/env bash
# Builds the Node, Go and C++ clients (each script skips what is up to date).
set -euo pipefail
here="$(dirname "$0")"
for client in node go cpp; do
  "$here/$client/build.sh"
done
