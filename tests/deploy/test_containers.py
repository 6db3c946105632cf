"""The images, built and run the way users run them (`make images`, `make deploy-smoke`).

Where podman works (deploy/tools/podman-setup.sh sets it up; root needed) the
session builds every CPU image with deploy/tools/images.sh (cached layers: quick
when nothing changed), then starts them twice:

- compose: deploy/compose.yaml through podman-compose, unchanged but for the
  published host port (a free one);
- Kubernetes: the rendered CPU overlay through `podman kube play`, with only what
  podman 4.3 cannot take changed (see `for_podman`).

Each time the containers run as uid 10001 on a read-only root filesystem with
the manifests' volumes; the test waits for every container's health check, calls
through the gateway (Embed, AnalyzeText, AnnotateImage on a real photo,
GenerateStream, a collection write and a search), restarts the embeddings
container (compose) or pod (kube play: podman 4.3 cannot restart one container
of a kube-play pod, see restart_pod), finds the collection still there, and
removes everything it started.
Elsewhere the tests skip with the reason; LUMEN_REQUIRE_PODMAN=1 (make
deploy-smoke) turns that skip into a failure. They run only when
LUMEN_DEPLOY_SMOKE=1 (`make deploy-smoke`, or `LUMEN_DEPLOY_SMOKE=1 make test`):
a fresh image build took 18 min here, too long for make test's default.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from lumen.embeddings.v1 import embeddings_pb2, embeddings_pb2_grpc
from tests.deploy import containers
from tests.deploy.containers import podman, run
from tools.suite import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(containers.BUILD_TIMEOUT_S)]

MODEL_SERVICES = ("nlp", "vision", "embeddings")
# What `podman kube play` (4.3) runs of the rendered overlay; the rest has no podman
# counterpart (or, for the Secret, a broken one: see for_podman) and is reported, not imitated.
PLAYED_KINDS = {"Deployment"}
COMPOSE_VENV = containers.ROOT / "build" / "tools" / "compose-venv"


@pytest.fixture(scope="session")
def images() -> None:
    if os.environ.get("LUMEN_DEPLOY_SMOKE") != "1":
        pytest.skip("container smoke test: LUMEN_DEPLOY_SMOKE=1 make test or make deploy-smoke runs it (~18 min fresh)")
    reason = containers.podman_unavailable()
    if reason:
        if os.environ.get("LUMEN_REQUIRE_PODMAN") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    build = run(["nice", "-n", "10", "bash", "deploy/tools/images.sh"], timeout=containers.BUILD_TIMEOUT_S, check=False)
    assert build.returncode == 0, f"deploy/tools/images.sh failed:\n{build.stdout[-3000:]}\n{build.stderr[-5000:]}"
    sys.stderr.write(build.stdout)


def assert_hardened(container: str) -> None:
    """Non-root, read-only root filesystem: what hardening.yaml and compose's x-hardening ask for."""
    info = json.loads(podman("inspect", container).stdout)[0]
    assert info["Config"]["User"].split(":")[0] == "10001", info["Config"]["User"]
    assert info["HostConfig"]["ReadonlyRootfs"] is True
    denied = podman("exec", container, "sh", "-c", "touch /app/probe", check=False)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr, denied


def running(container: str):
    def problem() -> str | None:
        state = podman("inspect", "--format", "{{.State.Status}}", container, check=False).stdout.strip()
        if state in ("running", "created", "configured"):
            return None
        logs = podman("logs", "--tail", "40", container, check=False)
        return f"container {container} is {state or 'gone'}:\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}"

    return problem


# ---------------------------------------------------------------- compose


@pytest.fixture(scope="session")
def podman_compose() -> list[str]:
    binary = COMPOSE_VENV / "bin" / "podman-compose"
    if not binary.exists():
        shutil.rmtree(COMPOSE_VENV, ignore_errors=True)
        run(["python3", "-m", "venv", str(COMPOSE_VENV)])
        run([str(COMPOSE_VENV / "bin" / "pip"), "install", "--quiet", "-r", "deploy/tools/compose-requirements.txt"])
    # --in-pod false: one container per service on the project network, as docker compose does.
    return [str(binary), "--podman-args=--runtime runc --cgroup-manager=cgroupfs", "--in-pod", "false"]


def wait_compose_healthy(container: str, timeout: float = 600.0) -> None:
    """The compose healthcheck (healthcheck.py in the container), run by `podman healthcheck run`:
    podman schedules it with systemd timers, which this machine kind does not have."""
    deadline = time.monotonic() + timeout
    while podman("healthcheck", "run", container, check=False, timeout=60).returncode != 0:
        gone = running(container)()
        if gone:
            raise AssertionError(gone)
        if time.monotonic() > deadline:
            raise AssertionError(f"{container}: health check not passing after {timeout} s")
        time.sleep(2)


def test_compose_file_runs_and_keeps_collections_across_a_restart(images: None, podman_compose: list[str]) -> None:
    project = f"lumen-smoke-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {**os.environ, "LUMEN_GATEWAY_PUBLISH_PORT": str(port)}
    compose = [*podman_compose, "-p", project, "-f", "deploy/compose.yaml"]
    names = {s: f"{project}_{s}_1" for s in (*MODEL_SERVICES, "gateway")}
    try:
        run([*compose, "up", "-d", "--no-build"], env=env, timeout=600)
        for name in names.values():
            wait_compose_healthy(name)
            assert_hardened(name)
        containers.call_everything(f"127.0.0.1:{port}")

        podman("restart", "-t", "35", names["embeddings"], timeout=120)  # compose stop_grace_period: 30s
        wait_compose_healthy(names["embeddings"])
        # The gateway reconnects to the restarted container (a new address under its name) on its own.
        assert containers.search_top_hit_soon(f"127.0.0.1:{port}") == "pods"
    finally:
        run([*compose, "down", "-v", "-t", "30"], env=env, timeout=600, check=False)


# ---------------------------------------------------------------- kube play


def for_podman(docs: list[dict[str, Any]], prefix: str, keys_dir: Path) -> list[dict[str, Any]]:
    """The Deployments, with what podman 4.3's kube play cannot take as Kubernetes does:

    - containerPorts: podman publishes each on the same port of the host (every pod's
      9090 would collide, and 50051 with `make run`); pods are reached at their IPs;
    - emptyDir: podman makes a named volume of the volume's name, shared by every pod
      that names it ("tmp", "data"), so each gets a name of its own, as each pod has its own;
    - Secret volumes: podman writes a Secret's `data` into the files still base64-encoded
      (and drops `stringData`), so the keys file is mounted from keys_dir (hostPath)
      at the same path instead; the keys there hold one key, made as users make theirs.
    """
    played = []
    for doc in copy.deepcopy(docs):
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                del volume["secret"]
                volume["hostPath"] = {"path": str(keys_dir), "type": "Directory"}
            if "emptyDir" in volume:
                old = volume["name"]
                volume["name"] = f"{prefix}-{doc['metadata']['name']}-{old}"
                for container in pod["containers"]:
                    for mount in container.get("volumeMounts", []):
                        if mount["name"] == old:
                            mount["name"] = volume["name"]
        for container in pod["containers"]:
            container.pop("ports", None)
        played.append(doc)
    return played


def deployment(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name]
    return found


def probe_port(doc: dict[str, Any]) -> int:
    """The readiness probe's port: a gRPC probe (grpc.health.v1 Check "") in every manifest."""
    (server,) = doc["spec"]["template"]["spec"]["containers"]
    return int(server["readinessProbe"]["grpc"]["port"])


def pod_ip(pod: str, network: str) -> str:
    infra = json.loads(podman("pod", "inspect", pod).stdout)["InfraContainerID"]
    info = json.loads(podman("inspect", infra).stdout)[0]
    return info["NetworkSettings"]["Networks"][network]["IPAddress"]


def pod_address(doc: dict[str, Any], network: str) -> str:
    return f"{pod_ip(doc['metadata']['name'] + '-pod-0', network)}:{probe_port(doc)}"


def restart_pod(pod: str, doc: dict[str, Any]) -> None:
    """Stop the pod within the Deployment's grace period, then start it again.

    When the last container of a kube-play pod exits, podman's cleanup of it stops
    the pod (exit policy "stop"); a pod started before that cleanup has run is
    stopped under the new containers. So the start waits until the stopped pod is
    settled: every container exited and no cleanup left running for them."""
    grace = int(doc["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30))
    podman("pod", "stop", "-t", str(grace), pod, timeout=grace + 60)
    ids = podman("pod", "inspect", "--format", "{{range .Containers}}{{.Id}} {{end}}", pod).stdout.split()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and cleanups_running(ids):
        time.sleep(0.5)
    podman("pod", "start", pod, timeout=120)


def cleanups_running(container_ids: list[str]) -> bool:
    """Whether a `podman container cleanup` of one of these containers is still running."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"cleanup" in args and any(i.encode() in args for i in container_ids):
            return True
    return False


@pytest.fixture
def kube_network() -> Iterator[str]:
    network = f"lumen-smoke-{uuid.uuid4().hex[:8]}"
    podman("network", "create", network)
    yield network
    podman("network", "rm", "-f", network, check=False)


def test_cpu_overlay_runs_under_podman_kube_play(
    images: None, render, kube_network: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rendered = render("cpu").docs
    skipped = sorted({d["kind"] for d in rendered} - PLAYED_KINDS)
    with capsys.disabled():
        print(f"\npodman kube play does not run these kinds of the CPU overlay: {', '.join(skipped)}")
    assert {"Service", "NetworkPolicy", "Secret"} <= set(skipped)

    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    keys_dir.chmod(0o755)  # uid 10001 reads it
    (keys_dir / "keys.json").write_text('{"keys": []}\n')
    key = containers.create_key(keys_dir / "keys.json")
    (keys_dir / "keys.json").chmod(0o644)
    prefix = kube_network
    docs = for_podman(rendered, prefix, keys_dir)
    backends = [deployment(docs, s) for s in MODEL_SERVICES]
    gateway = deployment(docs, "gateway")
    # No Services and no cluster DNS: the gateway gets the pods' names, which the
    # network's DNS (CNI dnsname) resolves, so all four pods start at once and the
    # gateway finds a restarted pod at its new address, as it would a new pod behind
    # a headless Service.
    (server,) = gateway["spec"]["template"]["spec"]["containers"]
    for variable in server["env"]:
        for doc in backends:
            name = doc["metadata"]["name"]
            if variable["name"] == f"LUMEN_GATEWAY_{name.upper()}_ADDRESS":
                variable["value"] = f"dns:///{name}-pod-0:{probe_port(doc)}"
    played = tmp_path / "played.yaml"
    played.write_text(yaml.safe_dump_all([*backends, gateway]))
    try:
        podman("kube", "play", "--replace", "--network", kube_network, str(played), timeout=600)
        addresses = {d["metadata"]["name"]: pod_address(d, kube_network) for d in [*backends, gateway]}
        for name, address in addresses.items():
            containers.wait_serving(address, name, running(f"{name}-pod-0-server"))
            assert_hardened(f"{name}-pod-0-server")
        address = addresses["gateway"]

        # Keys are on in deploy/k8s: no key, no call.
        with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as refused:
            embeddings_pb2_grpc.EmbeddingServiceStub(channel).Embed(
                embeddings_pb2.EmbedRequest(texts=["x"]), timeout=30
            )
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        containers.call_everything(address, key)

        # The kubelet restarts a container inside its pod, keeping the pod's emptyDirs. podman 4.3 cannot
        # restart a kube-play container alone (its pods have exit policy "stop": the pod stops under the
        # restarted container), so the pod is stopped and started again, which keeps its volumes too.
        embeddings = deployment(docs, "embeddings")
        restart_pod("embeddings-pod-0", embeddings)
        containers.wait_serving(
            pod_address(embeddings, kube_network), "embeddings after its restart", running("embeddings-pod-0-server")
        )
        assert containers.search_top_hit_soon(address, key) == "pods"
    finally:
        podman("kube", "down", str(played), timeout=300, check=False)
        volumes = podman("volume", "ls", "--format", "{{.Name}}", check=False).stdout.split()
        mine = [v for v in volumes if v.startswith(prefix)]
        if mine:
            podman("volume", "rm", "-f", *mine, check=False)
