"""Static half of the read-only checks: every path a service writes is a setting,
and deploy/ points each one at a writable volume (test_read_only_tree.py and
test_containers.py run the services that way)."""

from __future__ import annotations

from pathlib import PurePosixPath

import yaml

from tests.deploy.conftest import ROOT, Rendered, container, env
from tests.deploy.test_images import stages
from tests.deploy.test_manifests import MODEL_SERVICES

# Settings naming a folder a service writes, by service.
WRITABLE_SETTINGS = {
    "nlp": ["CACHE_DIR"],
    "vision": ["CACHE_DIR", "GALLERIES_DIR"],
    "embeddings": ["CACHE_DIR", "COLLECTIONS_DIR"],
}


def under(path: str, mounts: list[str]) -> bool:
    return any(PurePosixPath(path).is_relative_to(m) for m in mounts)


def test_manifests_point_every_writable_setting_at_a_volume(rendered: Rendered) -> None:
    for name in MODEL_SERVICES:
        deployment = rendered.get("Deployment", name)
        server = container(deployment)
        assert server["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = [m["mountPath"] for m in server.get("volumeMounts", []) if not m.get("readOnly")]
        variables = env(deployment)
        for setting in WRITABLE_SETTINGS[name]:
            path = variables.get(f"LUMEN_{name.upper()}_{setting}")
            assert path, f"{name}: LUMEN_{name.upper()}_{setting} unset: its default lies in the read-only image"
            assert under(path, mounts), f"{name}: {path} is on no writable volume ({mounts})"
        assert variables[f"LUMEN_{name.upper()}_HOST"] == "0.0.0.0", f"{name} must listen beyond the pod's loopback"


def test_compose_points_every_writable_setting_at_a_volume_or_tmpfs() -> None:
    services = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]
    for name in MODEL_SERVICES:
        service = services[name]
        assert service["read_only"] is True
        mounts = [*service.get("tmpfs", []), *(v.split(":")[1] for v in service.get("volumes", []))]
        for setting in WRITABLE_SETTINGS[name]:
            path = service["environment"].get(f"LUMEN_{name.upper()}_{setting}")
            assert path and under(path, mounts), f"{name}: {setting}={path!r} is on no writable mount ({mounts})"
        assert service["environment"][f"LUMEN_{name.upper()}_HOST"] == "0.0.0.0"


def test_one_dependency_layer_holds_every_model_service_requirements() -> None:
    """The three service images share model-deps: a requirement file it leaves out is never installed."""
    steps = " ".join(stages()["model-deps"])
    for name in MODEL_SERVICES:
        assert f"services/{name}/requirements.txt" in steps.split("RUN", 1)[1], name
    assert "ARG SERVICE" not in steps, "a SERVICE argument would give each image its own copy of the layer"
