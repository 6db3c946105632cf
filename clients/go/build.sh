#!/usr/bin/env bash
# Generates Go stubs from protos/ and builds build/clients/go/bin/lumen-client.
#
# GOPATH mode with Debian's packages only (clients/install-toolchains.sh): no
# module proxy is reachable here. The generated packages live at their
# go_package paths (lumen/gen/go/...) under a GOPATH in build/; grpc-go,
# protobuf-go and genproto (google.rpc.Status) come from /usr/share/gocode.
# Does nothing when the binary is newer than its inputs.
set -euo pipefail
source "$(dirname "$0")/../protos.sh"
OUT="$ROOT/build/clients/go"
if up_to_date "$OUT/bin/lumen-client" "$ROOT/protos" "$PROTO_DEPS" "$ROOT/clients/go" "$ROOT/clients/protos.sh"; then
  echo "go client: $OUT/bin/lumen-client (up to date)"
  exit 0
fi

rm -rf "$OUT/src/lumen/gen" && mkdir -p "$OUT/src" "$OUT/bin"
(cd "$ROOT/protos" && protoc -I. -I"$PROTO_DEPS" \
  --go_out="$OUT/src" --go-grpc_out="$OUT/src" "${PROTO_FILES[@]}")
export GO111MODULE=off GOPROXY=off GOFLAGS='' GOPATH="$OUT:/usr/share/gocode" GOCACHE="$OUT/cache"
go vet "$ROOT/clients/go/main.go"
go build -o "$OUT/bin/lumen-client" "$ROOT/clients/go/main.go"
echo "go client: $OUT/bin/lumen-client"
