#!/usr/bin/env bash
# Installs what the Node, Go and C++ clients need to generate stubs and build.
# Idempotent: a package already installed is skipped by apt-get, and npm
# installs only when clients/node/node_modules is missing or older than the lock.
#
# Everything comes from the registries reachable here: Debian packages (Go in
# GOPATH mode, gRPC C++) and npm (ts-proto, @grpc/grpc-js). No binary download.
set -euo pipefail
cd "$(dirname "$0")"

# Go: Debian's grpc-go 1.33 and protobuf-go 1.28 plus their protoc plugins,
# built in GOPATH mode (no module proxy). Not golang-goprotobuf-dev: its old
# generator's code panics on the first call.
GO_PACKAGES="golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev
  protoc-gen-go protoc-gen-go-grpc protobuf-compiler"
# C++: gRPC 1.51 with its protoc plugin.
CPP_PACKAGES="g++ make pkg-config libgrpc++-dev protobuf-compiler-grpc"
# Node: Debian's, unless a node with npm is installed already (any version >= 18).
NODE_PACKAGES="nodejs npm"
if command -v node >/dev/null && command -v npm >/dev/null; then NODE_PACKAGES=""; fi

missing=()
for package in $GO_PACKAGES $CPP_PACKAGES $NODE_PACKAGES; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
fi

# Node: ts-proto (generator), @grpc/grpc-js (runtime) and TypeScript, pinned by package-lock.json.
if [ ! -d node/node_modules ] || [ node/package-lock.json -nt node/node_modules ]; then
  (cd node && npm ci --silent --no-audit --no-fund)
  touch node/node_modules
fi
echo "client toolchains ready: $(go version 2>/dev/null | cut -d' ' -f3), protoc $(protoc --version | cut -d' ' -f2), node $(node --version)"
