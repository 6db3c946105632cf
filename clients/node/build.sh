#!/usr/bin/env bash
# Generates TypeScript stubs from protos/ with ts-proto (grpc-js services) and
# compiles the client into dist/. Needs `make protos` and clients/install-toolchains.sh.
# Does nothing when dist/ is newer than its inputs.
set -euo pipefail
source "$(dirname "$0")/../protos.sh"
NODE_DIR="$ROOT/clients/node"
PY="${PY:-$ROOT/.venv/bin/python}"
if up_to_date "$NODE_DIR/dist/src/client.js" "$ROOT/protos" "$PROTO_DEPS" "$NODE_DIR/src" "$NODE_DIR/build.sh" \
  "$NODE_DIR/tsconfig.json" "$NODE_DIR/package-lock.json" "$ROOT/clients/protos.sh"; then
  echo "node client: $NODE_DIR/dist/src/client.js (up to date)"
  exit 0
fi

rm -rf "$NODE_DIR/gen" "$NODE_DIR/dist"
mkdir -p "$NODE_DIR/gen"
# grpc_tools' protoc (already in the venv) brings the well-known types; npm's
# grpc-tools cannot be used here (its install downloads a binary).
# importSuffix=.js: the output is ES modules resolved with "nodenext".
(cd "$ROOT/protos" && "$PY" -m grpc_tools.protoc -I. -I"$PROTO_DEPS" \
  --plugin=protoc-gen-ts_proto="$NODE_DIR/node_modules/.bin/protoc-gen-ts_proto" \
  --ts_proto_out="$NODE_DIR/gen" \
  --ts_proto_opt=outputServices=grpc-js,env=node,esModuleInterop=true,importSuffix=.js,forceLong=string \
  "${PROTO_FILES[@]}")
(cd "$NODE_DIR" && node_modules/.bin/tsc -p .)
echo "node client: $NODE_DIR/dist/src/client.js"
