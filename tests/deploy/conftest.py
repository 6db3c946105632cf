"""Rendering deploy/k8s offline: kubectl kustomize, then kubernetes-validate --strict.

Both tools are installed by deploy/tools/install.sh (idempotent) into
build/tools/bin; a test skips only when that script fails.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BIN = ROOT / "build" / "tools" / "bin"
KUBERNETES_VERSION = "1.30.0"
# Every kustomization a user may apply.
TARGETS = {
    "base": K8S / "base",
    "cpu": K8S / "overlays" / "cpu",
    "gpu": K8S / "overlays" / "gpu",
    "shared": K8S / "overlays" / "shared",
    "training": K8S / "overlays" / "training",
}


@dataclasses.dataclass
class Rendered:
    """One kustomization rendered to a file, and its documents."""

    name: str
    path: Path
    docs: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.name}: expected one {kind}/{name}, found {len(found)}"
        return found[0]

    def deployments(self, component: str | None = None) -> Iterator[dict[str, Any]]:
        for deployment in self.of_kind("Deployment"):
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            if component is None or labels.get("app.kubernetes.io/component") == component:
                yield deployment


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (server,) = deployment["spec"]["template"]["spec"]["containers"]
    return server


def env(deployment: dict[str, Any]) -> dict[str, str]:
    """Plain values; a variable from a Secret shows as ``secret:<name>/<key>``."""
    out = {}
    for e in container(deployment).get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        out[e["name"]] = f"secret:{ref['name']}/{ref['key']}" if ref else e["value"]
    return out


@pytest.fixture(scope="session")
def deploy_tools() -> Path:
    result = subprocess.run(
        ["bash", str(ROOT / "deploy" / "tools" / "install.sh")], capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        pytest.skip(f"deploy/tools/install.sh could not install kubectl/kubernetes-validate:\n{result.stderr[-2000:]}")
    return BIN


@pytest.fixture(scope="session")
def render(deploy_tools: Path, tmp_path_factory: pytest.TempPathFactory):
    rendered: dict[str, Rendered] = {}
    out = tmp_path_factory.mktemp("rendered")

    def _render(name: str) -> Rendered:
        if name not in rendered:
            result = subprocess.run(
                [str(deploy_tools / "kubectl"), "kustomize", str(TARGETS[name])], capture_output=True, text=True
            )
            assert result.returncode == 0, f"kubectl kustomize {TARGETS[name]} failed:\n{result.stderr}"
            path = out / f"{name}.yaml"
            path.write_text(result.stdout)
            rendered[name] = Rendered(name, path, [d for d in yaml.safe_load_all(result.stdout) if d])
        return rendered[name]

    return _render


@pytest.fixture(params=sorted(TARGETS))
def rendered(request: pytest.FixtureRequest, render) -> Rendered:
    """Each kustomization in turn."""
    return render(request.param)
