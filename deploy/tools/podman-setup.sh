#!/usr/bin/env bash
# podman-setup.sh: makes this machine able to build and run lumen's images with
# podman (idempotent; needs root for apt-get and /etc/containers).
#
#   - podman, runc, mmdebstrap, catatonit and CNI's dnsname from Debian when missing;
#   - /etc/containers/containers.conf with `default_ulimits = []`: sandboxes that
#     forbid raising rlimits otherwise fail every container start;
#   - the Dockerfile's base image (python:3.11-slim-bookworm): pulled when a
#     registry is reachable, else made from Debian packages with mmdebstrap
#     (Debian 12's python3.11 is the version python:3.11 carries) and tagged
#     $LUMEN_BASE_IMAGE. Prints the base to build from on its last line.
#
# Every podman call of the project runs as `podman --runtime runc
# --cgroup-manager=cgroupfs` (deploy/tools/podman.sh): hybrid cgroups here.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=deploy/tools/podman.sh
. "$ROOT/deploy/tools/podman.sh"
UPSTREAM_BASE="${UPSTREAM_BASE:-docker.io/library/python:3.11-slim-bookworm}"
LUMEN_BASE_IMAGE="${LUMEN_BASE_IMAGE:-localhost/lumen/python:3.11-bookworm}"

# catatonit: the pause process of `podman kube play`'s pods; dnsname: container
# names resolve on a compose network (podman 4.3 on CNI has no DNS without it).
missing=()
for tool in podman runc mmdebstrap catatonit; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[ -x /usr/lib/cni/dnsname ] || missing+=(golang-github-containernetworking-plugin-dnsname)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]} from Debian" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
fi

conf=/etc/containers/containers.conf
if ! grep -qs '^default_ulimits *= *\[\]' "$conf"; then
  mkdir -p /etc/containers
  if grep -qs '^\[containers\]' "$conf"; then
    sed -i '/^\[containers\]/a default_ulimits = []' "$conf"
  else
    printf '[containers]\ndefault_ulimits = []\n' >>"$conf"
  fi
fi

if lpodman image exists "$LUMEN_BASE_IMAGE"; then
  :
elif timeout 20 lpodman pull -q "$UPSTREAM_BASE" >/dev/null 2>&1; then
  lpodman tag "$UPSTREAM_BASE" "$LUMEN_BASE_IMAGE"
else
  # python-is-python3: `python` on PATH as in python:3.11; passwd: useradd.
  echo "$UPSTREAM_BASE cannot be pulled: making $LUMEN_BASE_IMAGE from Debian packages (mmdebstrap)" >&2
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' EXIT
  mmdebstrap --quiet --variant=minbase \
    --include=python3.11,python3.11-venv,python-is-python3,ca-certificates,passwd,make \
    --aptopt='APT::Install-Recommends "false"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/usr/share/doc "$1"/usr/share/man' \
    bookworm "$scratch/base.tar"
  lpodman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$scratch/base.tar" "$LUMEN_BASE_IMAGE" >/dev/null
fi
echo "$LUMEN_BASE_IMAGE"
