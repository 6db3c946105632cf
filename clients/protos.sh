# Sourced by each client's build.sh: where the contracts are and what protoc needs.
#
# The clients are generated from the same protos/ as the Python stubs. Their one
# external import, google/rpc/status.proto, is the copy `make protos` puts in
# build/proto-deps (from googleapis-common-protos), so every language compiles
# the very file the servers were built with.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROTO_DEPS="$ROOT/build/proto-deps"
mapfile -t PROTO_FILES < <(cd "$ROOT/protos" && find lumen -name '*.proto' | sort)
if [ ! -f "$PROTO_DEPS/google/rpc/status.proto" ]; then
  echo "missing $PROTO_DEPS/google/rpc/status.proto: run 'make protos' first" >&2
  exit 1
fi

# True when OUTPUT exists and no file among INPUTS (files or folders, searched
# recursively) is newer: a build script then has nothing to do.
up_to_date() {
  local output="$1"
  shift
  [ -e "$output" ] && [ -z "$(find "$@" -newer "$output" -type f -print -quit)" ]
}
