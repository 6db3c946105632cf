"""deploy/k8s renders, validates offline against Kubernetes 1.30, and keeps its invariants."""

from __future__ import annotations

import dataclasses
import importlib
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from shared.settings import ServerSettings
from tests.deploy.conftest import K8S, KUBERNETES_VERSION, TARGETS, Rendered, container, env

COMPONENTS = ("gateway", "nlp", "vision", "embeddings")
MODEL_SERVICES = ("nlp", "vision", "embeddings")


def settings_fields(component: str) -> set[str]:
    """Field names of a component's settings class (what LUMEN_<COMPONENT>_* can set)."""
    module = importlib.import_module("gateway.settings" if component == "gateway" else f"services.{component}.settings")
    (cls,) = [
        c
        for c in vars(module).values()
        if isinstance(c, type) and issubclass(c, ServerSettings) and c.__module__ == module.__name__
    ]
    return {f.name for f in dataclasses.fields(cls)}


def grpc_port(deployment: dict) -> int:
    (port,) = [p["containerPort"] for p in container(deployment)["ports"] if p["name"] == "grpc"]
    return port


def validate(tools: Path, path: Path) -> subprocess.CompletedProcess[str]:
    command = [str(tools / "kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, "--quiet", str(path)]
    return subprocess.run(command, capture_output=True, text=True)


def test_renders_and_validates_strictly(rendered: Rendered, deploy_tools: Path) -> None:
    result = validate(deploy_tools, rendered.path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_validator_rejects_an_unknown_field(deploy_tools: Path, tmp_path: Path) -> None:
    """--strict really is strict here, so the test above can fail."""
    bad = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "x"},
        "automountServiceAccountTokens": False,  # typo
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    assert validate(deploy_tools, path).returncode != 0


def test_each_component_has_deployment_headless_service_and_account(rendered: Rendered) -> None:
    for name in COMPONENTS:
        deployment = rendered.get("Deployment", name)
        service = rendered.get("Service", name)
        account = rendered.get("ServiceAccount", name)
        pod = deployment["spec"]["template"]
        assert service["spec"]["clusterIP"] == "None", f"{name}: Service must be headless"
        assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        (grpc,) = [p for p in service["spec"]["ports"] if p["name"] == "grpc"]
        assert grpc["targetPort"] in ("grpc", grpc_port(deployment))
        assert pod["spec"]["serviceAccountName"] == account["metadata"]["name"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_probes_are_native_grpc_health_checks(rendered: Rendered) -> None:
    for deployment in rendered.deployments():
        name, server, port = deployment["metadata"]["name"], container(deployment), grpc_port(deployment)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert server[probe]["grpc"]["port"] == port, f"{name}: {probe} must check grpc.health.v1 on {port}"
        startup = server["startupProbe"]
        budget = startup["periodSeconds"] * startup["failureThreshold"]
        if name in MODEL_SERVICES:
            assert budget >= 300, f"{name}: {budget}s is too short to load models"


def test_requests_and_limits(rendered: Rendered) -> None:
    for deployment in rendered.deployments():
        resources = container(deployment)["resources"]
        name = deployment["metadata"]["name"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= resources[kind].keys(), (name, kind)
        threads = env(deployment).get(f"LUMEN_{name.upper()}_TORCH_THREADS")
        if threads is not None:  # torch would otherwise start a thread per node core
            assert int(threads) == int(resources["limits"]["cpu"]), name


def test_pods_run_without_privilege(rendered: Rendered) -> None:
    for deployment in rendered.deployments():
        name, pod = deployment["metadata"]["name"], deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        # Only the training service calls the Kubernetes API (its Jobs: test_training_* below).
        assert pod["automountServiceAccountToken"] is (name == "training"), name
        assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), name
        assert not any("hostPath" in v for v in pod.get("volumes", [])), name
        for c in pod["containers"] + pod.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc.get("privileged", False) is False, name
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), name
        assert any(m["mountPath"] == "/tmp" for m in container(deployment)["volumeMounts"]), name


def test_termination_grace_outlasts_the_drain(rendered: Rendered) -> None:
    for deployment in rendered.deployments():
        name = deployment["metadata"]["name"]
        drain = float(env(deployment)[f"LUMEN_{name.upper()}_GRACE_PERIOD_S"])
        pre_stop = container(deployment)["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > pre_stop + drain, name


def test_environment_names_real_settings(rendered: Rendered) -> None:
    """A misspelt LUMEN_ variable would be silently ignored by the service."""
    for deployment in rendered.deployments():
        name = deployment["metadata"]["name"]
        prefix = f"LUMEN_{name.upper()}_"
        fields = settings_fields(name)
        for variable, value in env(deployment).items():
            assert variable.startswith(prefix), f"{name}: {variable} is not one of its settings"
            assert variable.removeprefix(prefix).lower() in fields, f"{name}: no setting for {variable}"
            if variable == f"{prefix}PORT":
                assert int(value) == grpc_port(deployment)


def test_gateway_reaches_each_backend_through_its_headless_service(rendered: Rendered) -> None:
    settings = env(rendered.get("Deployment", "gateway"))
    for backend in MODEL_SERVICES:
        service = rendered.get("Service", backend)
        (port,) = [p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc"]
        namespace = service["metadata"]["namespace"]
        expected = f"dns:///{backend}.{namespace}.svc.cluster.local:{port}"
        assert settings[f"LUMEN_GATEWAY_{backend.upper()}_ADDRESS"] == expected


def test_api_keys_are_on_and_read_from_a_secret(rendered: Rendered) -> None:
    gateway = rendered.get("Deployment", "gateway")
    keys_file = Path(env(gateway)["LUMEN_GATEWAY_KEYS_FILE"])
    pod = gateway["spec"]["template"]["spec"]
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "keys"]
    assert keys_file.parent == Path(mount["mountPath"]) and mount["readOnly"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "keys"]
    secret = rendered.get("Secret", volume["secret"]["secretName"])
    assert keys_file.name in secret["data"]


def test_gpu_only_where_asked(rendered: Rendered) -> None:
    gpu = rendered.name == "gpu"
    for deployment in rendered.deployments():
        name, pod = deployment["metadata"]["name"], deployment["spec"]["template"]["spec"]
        server = container(deployment)
        on_gpu = gpu and name in MODEL_SERVICES
        limits = server["resources"]["limits"]
        if on_gpu:
            assert limits["nvidia.com/gpu"] == 1, name
            assert pod["nodeSelector"]["nvidia.com/gpu.present"] == "true", name
            assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"]), name
            assert env(deployment)[f"LUMEN_{name.upper()}_DEVICE"] == "cuda:0", name
            assert server["image"].endswith("-gpu"), name
        else:
            assert "nvidia.com/gpu" not in limits and "nodeSelector" not in pod, name
            assert env(deployment).get(f"LUMEN_{name.upper()}_DEVICE", "cpu") == "cpu", name
            assert not server["image"].endswith("-gpu"), name


@pytest.mark.parametrize("name", ["cpu", "gpu", "shared", "training"])
def test_autoscaling_owns_the_replica_count(render, name: str) -> None:
    rendered = render(name)
    scaled = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in rendered.of_kind("HorizontalPodAutoscaler")}
    # Embeddings and vision keep state per pod (SQLite) unless it is shared: only then may they scale.
    assert scaled == ({"gateway", "nlp", "embeddings", "vision"} if name == "shared" else {"gateway", "nlp"})
    for target in scaled:
        deployment = rendered.get("Deployment", target)
        assert "replicas" not in deployment["spec"], f"{target}: an apply would reset the HPA's replica count"
        assert "cpu" in container(deployment)["resources"]["requests"]


@pytest.mark.parametrize("name", ["cpu", "gpu", "shared", "training"])
def test_disruption_budget_per_component(render, name: str) -> None:
    rendered = render(name)
    for component in COMPONENTS:
        budget = rendered.get("PodDisruptionBudget", component)
        pod_labels = rendered.get("Deployment", component)["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        assert "maxUnavailable" in budget["spec"], "minAvailable would block drains of single replicas"


def _selects(selector: dict, labels: dict) -> bool:
    return selector.get("matchLabels", {}).items() <= labels.items()


# The training service's pods (components/training); the rule stays where that component is not used.
TRAINING_PEER = {"matchLabels": {"app.kubernetes.io/name": "training"}}


@pytest.mark.parametrize("name", ["cpu", "gpu", "shared", "training"])
def test_only_the_gateway_reaches_the_model_services(render, name: str) -> None:
    """...and the training service, for LoadModel of what it trained."""
    rendered = render(name)
    policies = rendered.of_kind("NetworkPolicy")
    assert any(p["spec"]["podSelector"] == {} and not p["spec"].get("ingress") for p in policies), "no default deny"
    gateway_labels = rendered.get("Deployment", "gateway")["spec"]["template"]["metadata"]["labels"]
    for service in MODEL_SERVICES:
        labels = rendered.get("Deployment", service)["spec"]["template"]["metadata"]["labels"]
        selecting = [p["spec"] for p in policies if _selects(p["spec"]["podSelector"], labels)]
        rules = [rule for spec in selecting for rule in spec.get("ingress", [])]
        grpc_rules = [r for r in rules if any(port["port"] == "grpc" for port in r.get("ports", []))]
        assert grpc_rules, f"{service}: nothing may call it"
        for rule in rules:
            assert rule.get("from"), f"{service}: an ingress rule open to every source"
            for peer in rule["from"]:
                from_gateway = "podSelector" in peer and _selects(peer["podSelector"], gateway_labels)
                from_training = peer.get("podSelector") == TRAINING_PEER
                from_monitoring = "namespaceSelector" in peer and "podSelector" not in peer
                allowed = from_gateway or (from_training and rule in grpc_rules)
                assert allowed or (from_monitoring and rule not in grpc_rules), f"{service}: {peer}"


STATE_URLS = {
    "embeddings": ("LUMEN_EMBEDDINGS_DATABASE_URL", "postgres-url"),
    "vision": ("LUMEN_VISION_DATABASE_URL", "postgres-url"),
    "gateway": ("LUMEN_GATEWAY_REDIS_URL", "redis-url"),
}


def _egress_ports(rendered: Rendered, policy: str) -> set[int]:
    spec = rendered.get("NetworkPolicy", policy)["spec"]
    return {p["port"] for rule in spec.get("egress", []) for p in rule.get("ports", []) if isinstance(p["port"], int)}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_shared_state_urls_from_a_secret_only_in_the_shared_overlay(render, name: str) -> None:
    rendered = render(name)
    for component, (variable, key) in STATE_URLS.items():
        value = env(rendered.get("Deployment", component)).get(variable)
        # Credentials never as plain values in a manifest; without the overlay, the embedded stores.
        assert value == (f"secret:lumen-state/{key}" if name == "shared" else None), (component, value)
    if name in ("cpu", "gpu", "shared"):
        shared = name == "shared"
        assert (5432 in _egress_ports(rendered, "model-services")) is shared
        assert (53 in _egress_ports(rendered, "model-services")) is shared  # to resolve the database's name
        assert (6379 in _egress_ports(rendered, "gateway")) is shared


def test_model_volume_mounted_read_only_over_the_repository(render) -> None:
    rendered = render("gpu")
    claim = rendered.get("PersistentVolumeClaim", "lumen-models")
    for service in MODEL_SERVICES:
        deployment = rendered.get("Deployment", service)
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        (mount,) = [m for m in container(deployment)["volumeMounts"] if m["mountPath"] == "/app/var/models"]
        assert mount["readOnly"] is True
        assert volumes[mount["name"]]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]


def test_every_component_is_used_by_an_overlay() -> None:
    used = set()
    for target in TARGETS.values():
        kustomization = yaml.safe_load((target / "kustomization.yaml").read_text())
        used |= {(target / c).resolve() for c in kustomization.get("components", [])}
    components = {p.resolve() for p in (K8S / "components").iterdir() if p.is_dir()}
    assert components == used, components - used


def test_images_are_the_ones_bake_builds() -> None:
    bake = (K8S.parent / "docker" / "docker-bake.hcl").read_text()
    version = re.search(r'variable "VERSION" \{\s*default = "([^"]+)"', bake).group(1)
    for path in K8S.rglob("*.yaml"):
        for image in re.findall(r"image: (\S+)", path.read_text()):
            assert image.split(":")[1].startswith(version), f"{path}: {image}"
