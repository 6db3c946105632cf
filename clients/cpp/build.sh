#!/usr/bin/env bash
# Generates C++ stubs from protos/ and builds build/clients/cpp/lumen-client
# against Debian's gRPC 1.51 and protobuf 3.21 (clients/install-toolchains.sh).
# Debian's protoc is used, not the venv's: generated C++ must match the
# libprotobuf it links. Does nothing when the binary is newer than its inputs.
set -euo pipefail
source "$(dirname "$0")/../protos.sh"
OUT="$ROOT/build/clients/cpp"
SRC="$ROOT/clients/cpp"
if up_to_date "$OUT/lumen-client" "$ROOT/protos" "$PROTO_DEPS" "$SRC" "$ROOT/clients/protos.sh"; then
  echo "cpp client: $OUT/lumen-client (up to date)"
  exit 0
fi

rm -rf "$OUT/gen" "$OUT/obj" && mkdir -p "$OUT/gen" "$OUT/obj"
(cd "$ROOT/protos" && protoc -I. -I"$PROTO_DEPS" \
  --cpp_out="$OUT/gen" --grpc_out="$OUT/gen" --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" \
  "${PROTO_FILES[@]}")
# google.rpc.Status is not in Debian's gRPC libraries: compile it with the rest.
(cd "$PROTO_DEPS" && protoc -I. --cpp_out="$OUT/gen" google/rpc/status.proto)

read -r -a FLAGS <<<"$(pkg-config --cflags grpc++ protobuf)"
read -r -a LIBS <<<"$(pkg-config --libs grpc++ protobuf)"
# One object per source, two at a time (the generated files dominate the ~20 s).
find "$OUT/gen" "$SRC" -name '*.cc' -print0 |
  xargs -0 -P 2 -I{} sh -c 'g++ -std=c++17 -O1 -c "$1" -o "$2/obj/$(echo "$1" | md5sum | cut -c1-12).o" -I"$2/gen" $3' \
    _ {} "$OUT" "${FLAGS[*]}"
g++ -o "$OUT/lumen-client" "$OUT"/obj/*.o "${LIBS[@]}"
echo "cpp client: $OUT/lumen-client"
