"""deploy/docker and the compose file: what can be checked without a container engine."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
import yaml

from tests.deploy.test_manifests import MODEL_SERVICES, settings_fields

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
DOCKERFILE = DOCKER / "Dockerfile"


def stages() -> dict[str, list[str]]:
    """Instructions of each stage, by stage name, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            current = result.setdefault(match.group(1), [])
        current.append(line)
    return result


def ignored(path: str) -> bool:
    """Whether the Dockerfile's .dockerignore leaves `path` out of the build context."""
    rules = [r for r in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines() if r and not r.startswith("#")]
    verdict = False
    for rule in rules:
        negate, pattern = rule.startswith("!"), rule.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if pattern == "**" or any(fnmatch.fnmatch(p, pattern) for p in prefixes):
            verdict = not negate
    return verdict


@pytest.mark.parametrize("target", ["service", "gateway"])
def test_final_images_are_multi_stage_and_non_root(target: str) -> None:
    all_stages = stages()
    assert len(all_stages) >= 4
    instructions = all_stages[target]
    # The final stage copies from build stages instead of building in place.
    assert any(i.startswith("COPY --from=") for i in instructions)
    users = [i.split()[1] for i in instructions if i.startswith("USER")]
    assert users, f"{target} runs as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root uid lets runAsNonRoot verify it"
    assert uid == "10001", "deploy/k8s/base/hardening.yaml runs pods as 10001"
    assert not any(re.match(r"USER\s+(root|0)\b", i) for s in all_stages.values() for i in s)


def test_stubs_are_generated_by_make_protos() -> None:
    assert any("make protos" in i for i in stages()["stubs"])


def test_every_copied_path_exists_and_reaches_the_build_context() -> None:
    for instructions in stages().values():
        for instruction in instructions:
            if not instruction.startswith("COPY") or "--from=" in instruction:
                continue
            sources = instruction.split()[1:-1]
            for service in MODEL_SERVICES:
                for source in sources:
                    path = source.replace("${SERVICE}", service).rstrip("/")
                    assert (ROOT / path).exists(), path
                    assert not ignored(path), f".dockerignore leaves out {path}"
    assert ignored(".venv") and ignored("build") and ignored("lumen/embeddings")


def test_gpu_variant_swaps_tensorflow_and_torch() -> None:
    script = (DOCKER / "install-requirements.sh").read_text()
    assert "tensorflow[and-cuda]" in script
    lock = (ROOT / "requirements" / "lock.txt").read_text()
    assert re.search(r"^tensorflow[-_]cpu==", lock, re.MULTILINE | re.IGNORECASE), "the script reads its version"
    assert re.search(r"^torch==", lock, re.MULTILINE)


def compose(name: str = "compose.yaml") -> dict:
    return yaml.safe_load((ROOT / "deploy" / name).read_text())


def test_compose_services_run_hardened_and_drain() -> None:
    for name, service in compose()["services"].items():
        assert service["user"].split(":")[0] not in ("0", "root"), name
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        grace = float(service["environment"][f"LUMEN_{name.upper()}_GRACE_PERIOD_S"])
        assert float(service["stop_grace_period"].rstrip("s")) > grace, name
        for variable in service["environment"]:
            assert variable.removeprefix(f"LUMEN_{name.upper()}_").lower() in settings_fields(name), variable


def test_compose_gateway_targets_each_backend_port() -> None:
    import importlib

    services = compose()["services"]
    gateway = services["gateway"]["environment"]
    for backend in MODEL_SERVICES:
        module = importlib.import_module(f"services.{backend}.settings")
        (cls,) = [c for n, c in vars(module).items() if n.endswith("Settings") and c.__module__ == module.__name__]
        port = cls().port
        assert gateway[f"LUMEN_GATEWAY_{backend.upper()}_ADDRESS"] == f"dns:///{backend}:{port}"
        assert services[backend]["healthcheck"]["test"][-1] == str(port)
        assert "ports" not in services[backend], f"{backend} must be reachable through the gateway only"
        assert services[backend]["build"]["args"]["SERVICE"] == backend


def test_compose_gpu_override_asks_for_a_gpu_per_model_service() -> None:
    for backend, service in compose("compose.gpu.yaml")["services"].items():
        assert backend in MODEL_SERVICES
        assert service["build"]["args"]["DEVICE"] == "gpu"
        assert service["environment"][f"LUMEN_{backend.upper()}_DEVICE"] == "cuda:0"
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device["capabilities"] == ["gpu"]
