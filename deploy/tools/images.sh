#!/usr/bin/env bash
# images.sh [COMPONENT...]: builds lumen's CPU images with podman from
# deploy/docker/Dockerfile (the file Docker users build, unchanged):
#   lumen/gateway:0.1.0, lumen/{nlp,vision,embeddings}:0.1.0-cpu
# DEVICE=gpu builds the GPU variants of the model services instead.
#
# The base comes from deploy/tools/podman-setup.sh (pulled, or made from Debian
# packages). Wheels and package indexes this machine's pip is configured with
# (find-links, file:// extra indexes: here the CPU torch build in /opt/wheels)
# are bind-mounted read-only into the build's RUN steps and named in the pip
# build args, so pip installs from them without their files entering a layer.
# podman caches every layer: a second run with no change rebuilds nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=deploy/tools/podman.sh
. deploy/tools/podman.sh
VERSION="${VERSION:-0.1.0}"
DEVICE="${DEVICE:-cpu}"
components=("$@")
[ "${#components[@]}" -gt 0 ] || components=(gateway embeddings nlp vision)
[ "$DEVICE" = cpu ] || components=("${components[@]/gateway/}")

base="$(bash deploy/tools/podman-setup.sh | tail -1)"

# The host pip's local sources, mounted at the same paths.
args=(--network host --build-arg "PYTHON_IMAGE=$base")
pip_conf() { python3 -m pip config get "global.$1" 2>/dev/null || true; }
find_links="${PIP_FIND_LINKS:-$(pip_conf find-links)}"
extra_index="${PIP_EXTRA_INDEX_URL:-$(pip_conf extra-index-url)}"
mounts=()
for dir in $find_links; do
  [ -d "$dir" ] && mounts+=("$dir")
done
for url in $extra_index; do
  case "$url" in file://*) [ -d "${url#file://}" ] && mounts+=("$(dirname "${url#file://}")") ;; esac
done
for dir in "${mounts[@]}"; do
  args+=(--volume "$dir:$dir:ro")
done
# The CA bundle pip trusts here (a TLS proxy may stand before the index).
cert="${PIP_CERT:-$(pip_conf cert)}"
if [ -f "$cert" ]; then
  args+=(--volume "$cert:/run/lumen-build/ca.crt:ro" --build-arg PIP_CERT=/run/lumen-build/ca.crt)
fi
[ -z "$find_links" ] || args+=(--build-arg "PIP_FIND_LINKS=$find_links")
[ -z "$extra_index" ] || args+=(--build-arg "PIP_EXTRA_INDEX_URL=$extra_index")
# A local CPU torch wheel beats PyTorch's CPU index (not reachable everywhere).
if ls $find_links 2>/dev/null | grep -q '^torch-.*+cpu-.*\.whl$'; then
  args+=(--build-arg TORCH_CPU_INDEX=)
fi

mkdir -p build/images
build() { # TAG TARGET [BUILD-ARG...]
  local tag="$1" target="$2" start log
  shift 2
  start=$(date +%s)
  log="build/images/$(echo "$tag" | tr '/:' '__').log"
  if ! lpodman build -f deploy/docker/Dockerfile --ignorefile deploy/docker/Dockerfile.dockerignore \
    "${args[@]}" --target "$target" "$@" -t "$tag" . >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "building $tag failed: $log" >&2
    return 1
  fi
  echo "built $tag in $(($(date +%s) - start)) s ($(grep -c -- '--> Using cache' "$log") steps from cache)"
}

for component in "${components[@]}"; do
  case "$component" in
    "") ;;
    gateway) build "lumen/gateway:$VERSION" gateway ;;
    nlp | vision | embeddings | training)
      build "lumen/$component:$VERSION-$DEVICE" service --build-arg "SERVICE=$component" --build-arg "DEVICE=$DEVICE" ;;
    *) echo "unknown component '$component'" >&2; exit 2 ;;
  esac
done
lpodman images --filter reference='lumen/*' --format '{{.Repository}}:{{.Tag}} {{.Size}}'
