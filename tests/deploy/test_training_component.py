"""deploy/k8s/components/training: the training Deployment, its API access, the shared volume,
and the Job it creates from its own settings, rendered and validated offline (no cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.training.kubernetes_job import render as render_job
from services.training.settings import TrainingSettings
from shared.settings import load
from tests.deploy.conftest import TARGETS, Rendered, container, env
from tests.deploy.test_manifests import TRAINING_PEER, validate

WITH_TRAINING = [n for n, path in TARGETS.items() if "components/training" in (path / "kustomization.yaml").read_text()]


@pytest.fixture
def training(render) -> Rendered:
    return render("training")


def pod(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]


def test_an_overlay_uses_it_with_the_model_volume() -> None:
    assert WITH_TRAINING == ["training"]
    for name in WITH_TRAINING:
        components = yaml.safe_load((TARGETS[name] / "kustomization.yaml").read_text())["components"]
        # The claim comes from model-volume; the training component mounts it.
        assert components.index("../../components/model-volume") < components.index("../../components/training")


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_object_is_in_the_lumen_namespace(render, name: str) -> None:
    """Components' objects too: without the overlay's namespace they land in kubectl's current one."""
    for doc in render(name).docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "lumen", (name, doc["kind"], doc["metadata"]["name"])


def test_training_runs_its_jobs_on_kubernetes_in_its_namespace(training: Rendered) -> None:
    deployment = training.get("Deployment", "training")
    settings = env(deployment)
    assert settings["LUMEN_TRAINING_EXECUTOR"] == "kubernetes"
    assert settings["LUMEN_TRAINING_KUBERNETES_NAMESPACE"] == deployment["metadata"]["namespace"]
    assert settings["LUMEN_TRAINING_KUBERNETES_IMAGE"] == container(deployment)["image"]
    # One writer of the job records: never two pods at once, not even during a rollout.
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    service = training.get("Service", "training")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (port,) = [p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc"]
    gateway = env(training.get("Deployment", "gateway"))
    assert gateway["LUMEN_GATEWAY_TRAINING_ADDRESS"] == f"dns:///training.lumen.svc.cluster.local:{port}"


def test_its_account_may_manage_jobs_and_nothing_else(training: Rendered) -> None:
    deployment = training.get("Deployment", "training")
    account = pod(deployment)["serviceAccountName"]
    training.get("ServiceAccount", account)
    (binding,) = [
        b
        for b in training.of_kind("RoleBinding")
        if {"kind": "ServiceAccount", "name": account, "namespace": "lumen"} in b["subjects"]
    ]
    assert binding["roleRef"]["kind"] == "Role"  # namespaced: Jobs of this namespace only
    role = training.get("Role", binding["roleRef"]["name"])
    assert role["rules"] == [
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "watch", "delete"]}
    ]
    assert not training.of_kind("ClusterRoleBinding")
    # The Jobs' pods run as an account of their own, with no token.
    job_account = training.get("ServiceAccount", env(deployment)["LUMEN_TRAINING_KUBERNETES_SERVICE_ACCOUNT"])
    assert job_account["automountServiceAccountToken"] is False
    assert not [b for b in training.of_kind("RoleBinding") if any(s["name"] == job_account["metadata"]["name"]
                                                                    for s in b["subjects"])]  # fmt: skip


def test_the_volume_is_shared_with_the_model_services(training: Rendered) -> None:
    deployment = training.get("Deployment", "training")
    settings = env(deployment)
    claim = training.get("PersistentVolumeClaim", settings["LUMEN_TRAINING_KUBERNETES_VOLUME_CLAIM"])
    assert "ReadWriteMany" in claim["spec"]["accessModes"]  # pods on several nodes
    volumes = {v["name"]: v for v in pod(deployment)["volumes"]}
    mounts = {m["mountPath"]: m for m in container(deployment)["volumeMounts"]}
    claim_name = claim["metadata"]["name"]
    repositories, data = mounts["/app/var/models"], mounts[settings["LUMEN_TRAINING_DATA_DIR"]]
    for mount in (repositories, data):
        assert volumes[mount["name"]]["persistentVolumeClaim"]["claimName"] == claim_name
        assert not mount.get("readOnly")
    assert data["subPath"] == settings["LUMEN_TRAINING_KUBERNETES_VOLUME_SUBPATH"]
    # The services read what training installs in /app/var/models/<service>.
    for service in ("nlp", "vision", "embeddings"):
        served = training.get("Deployment", service)
        (mount,) = [m for m in container(served)["volumeMounts"] if m["mountPath"] == "/app/var/models"]
        served_volumes = {v["name"]: v for v in pod(served)["volumes"]}
        assert served_volumes[mount["name"]]["persistentVolumeClaim"]["claimName"] == claim_name
        assert mount["readOnly"] is True
        assert settings[f"LUMEN_TRAINING_{service.upper()}_ADDRESS"].startswith(f"dns:///{service}.lumen.svc")


def test_the_job_made_from_the_deployments_settings_validates(
    training: Rendered, deploy_tools: Path, tmp_path: Path
) -> None:
    """The executor's Job, rendered from the Deployment's own LUMEN_TRAINING_* values, fits the component."""
    settings = load(TrainingSettings, "LUMEN_TRAINING", env(training.get("Deployment", "training")))
    job = render_job("0123456789abcdef", settings.data_path() / "jobs" / "0123456789abcdef", settings)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    result = validate(deploy_tools, path)
    assert result.returncode == 0, result.stdout + result.stderr
    job_pod = job["spec"]["template"]["spec"]
    assert job["metadata"]["namespace"] == "lumen"
    training.get("ServiceAccount", job_pod["serviceAccountName"])
    (volume,) = [v for v in job_pod["volumes"] if "persistentVolumeClaim" in v]
    training.get("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    (mount,) = [m for m in job_pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    deployment_mounts = container(training.get("Deployment", "training"))["volumeMounts"]
    # Same folder of the claim at the same path as in the training pod: spec.json's paths hold in both.
    assert any(m["mountPath"] == mount["mountPath"] and m.get("subPath") == mount["subPath"] for m in deployment_mounts)


def test_network_policy_lets_the_gateway_in_and_training_reach_models_and_the_api(training: Rendered) -> None:
    policy = training.get("NetworkPolicy", "training")["spec"]
    assert policy["podSelector"] == TRAINING_PEER
    grpc_sources = [r["from"] for r in policy["ingress"] if any(p["port"] == "grpc" for p in r["ports"])]
    assert grpc_sources == [[{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}}]]
    egress_ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
    assert {"grpc", 443, 53} <= egress_ports
    gateway = training.get("NetworkPolicy", "gateway")["spec"]
    assert any(peer.get("podSelector") == TRAINING_PEER for rule in gateway["egress"] for peer in rule.get("to", []))
