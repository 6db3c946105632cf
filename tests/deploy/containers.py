"""podman and the calls the container smoke tests make (tests/deploy/test_containers.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2

from lumen.client import Client
from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2
from lumen.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from tests.vision import samples
from tools.suite import health_status

ROOT = Path(__file__).resolve().parents[2]
# The sandbox has hybrid cgroups: runc and cgroupfs (deploy/tools/podman.sh).
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
BUILD_TIMEOUT_S = 3600
COLLECTION = "smoke-notes"
IMAGES = ("lumen/gateway:0.1.0", "lumen/nlp:0.1.0-cpu", "lumen/vision:0.1.0-cpu", "lumen/embeddings:0.1.0-cpu")
FRESH_BUILD_DISK_GB = 12


class Phases:
    """How long each step of a smoke test took, printed at its end: measured, never asserted."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.seconds: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.seconds.append((name, time.monotonic() - start))

    def __str__(self) -> str:
        total = sum(s for _, s in self.seconds)
        return f"{self.what}: {total:.0f} s (" + ", ".join(f"{n} {s:.0f} s" for n, s in self.seconds) + ")"


def run(command: list[str], timeout: float = 300, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def podman(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    return run([*PODMAN, *args], timeout=timeout, check=check)


def podman_unavailable() -> str | None:
    """Why images cannot be built and run here, or None (sets podman up first, idempotent)."""
    if os.geteuid() != 0:
        return "deploy/tools/podman-setup.sh needs root (apt-get, /etc/containers)"
    setup = run(["bash", "deploy/tools/podman-setup.sh"], timeout=900, check=False)
    if setup.returncode != 0:
        return f"deploy/tools/podman-setup.sh failed: {setup.stderr.strip()[-1500:]}"
    base = setup.stdout.strip().splitlines()[-1]
    short = disk_short()
    if short:
        return short
    probe = podman("run", "--rm", "--network", "none", base, "true", check=False, timeout=120)
    if probe.returncode != 0:
        return f"podman cannot run a container here: {probe.stderr.strip()[-1500:]}"
    return None


def disk_short() -> str | None:
    """Why podman's storage cannot take a fresh build of the images, or None.

    The four CPU images share one dependency layer: 5.6 GB stored (measured
    2026-12-02), plus the build's scratch copies; with the images there already a
    cached build writes next to nothing."""
    if all(podman("image", "exists", image, check=False).returncode == 0 for image in IMAGES):
        return None
    root = Path(podman("info", "--format", "{{.Store.GraphRoot}}").stdout.strip())
    while not root.exists():
        root = root.parent
    free = shutil.disk_usage(root).free / 1e9
    if free < FRESH_BUILD_DISK_GB:
        return f"{root} has {free:.1f} GB free; a fresh build of the images needs ~{FRESH_BUILD_DISK_GB} GB"
    return None


def wait_serving(address: str, what: str, alive, timeout: float = 600.0) -> None:
    """Wait for grpc.health.v1 Check("") == SERVING: the check the manifests' probes make."""
    deadline = time.monotonic() + timeout
    while health_status(address, timeout=3) != health_pb2.HealthCheckResponse.SERVING:
        problem = alive()
        if problem:
            raise AssertionError(f"{what}: {problem}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not SERVING on {address} after {timeout} s")
        time.sleep(1)


def create_key(keys_file: Path) -> str:
    """A key for every service, as deploy/README.md tells users to make one."""
    result = run(
        [
            ".venv/bin/python",
            "-m",
            "gateway.keys",
            "--file",
            str(keys_file),
            "create",
            "--id",
            "smoke",
            "--services",
            "all",
        ]
    )
    return result.stdout.strip()


def call_everything(address: str, api_key: str | None = None) -> None:
    """Embed, AnalyzeText, AnnotateImage, GenerateStream, one collection write and a search."""
    with Client(address, api_key=api_key, timeout=120) as client:
        vectors = client.embed(["Containers run the suite.", "A cat sleeps."])
        assert vectors.shape == (2, 384)

        analysis = client.analyze_text("I love how well this works.", ["language", "sentiment", "embedding"])
        assert analysis.language.status.code == 0 and analysis.language.languages[0].language_code == "en"
        assert analysis.sentiment.status.code == 0 and analysis.sentiment.score > 0
        assert analysis.embedding.status.code == 0 and dims(analysis.embedding.embedding) == 384

        gateway = gateway_pb2_grpc.GatewayServiceStub(client.channel)
        metadata = (("x-api-key", api_key),) if api_key else ()
        photo = common_pb2.Image(content=samples.encode(samples.skimage_photo("astronaut"), "JPEG", quality=90))
        features = [
            gateway_pb2.ImageFeature(type=t)
            for t in (gateway_pb2.IMAGE_FEATURE_TYPE_LABELS, gateway_pb2.IMAGE_FEATURE_TYPE_FACES)
        ]
        annotated = gateway.AnnotateImage(
            gateway_pb2.AnnotateImageRequest(image=photo, features=features), timeout=120, metadata=metadata
        )
        assert annotated.labels.status.code == 0 and annotated.labels.labels
        assert annotated.faces.status.code == 0 and len(annotated.faces.faces) == 1  # her face, not her patch

        text = "".join(client.chat_stream("Name a colour.", max_new_tokens=8, seed=7))
        assert text.strip()

        metadata_struct = struct_pb2.Struct()
        metadata_struct.update({"source": "smoke"})
        indexed = gateway.IndexDocuments(
            gateway_pb2.IndexDocumentsRequest(
                collection=COLLECTION,
                create_if_missing=True,
                documents=[
                    embeddings_pb2.Document(
                        id="pods", text="Kubernetes restarts failed pods.", metadata=metadata_struct
                    ),
                    embeddings_pb2.Document(id="cake", text="Bake the cake for forty minutes."),
                ],
            ),
            timeout=120,
            metadata=metadata,
        )
        assert indexed.indexed == 2
    assert search_top_hit(address, api_key) == "pods"


def search_top_hit_soon(address: str, api_key: str | None = None, attempts: int = 30) -> str:
    """search_top_hit once the gateway has reconnected to a restarted backend (one try a second)."""
    for _ in range(attempts - 1):
        try:
            return search_top_hit(address, api_key)
        except AssertionError:
            time.sleep(1)
    return search_top_hit(address, api_key)


def dims(vector: common_pb2.Vector) -> int:
    return len(vector.values) or len(vector.values_f32) // 4


def search_top_hit(address: str, api_key: str | None = None) -> str:
    metadata = (("x-api-key", api_key),) if api_key else ()
    with grpc.insecure_channel(address) as channel:
        found = gateway_pb2_grpc.GatewayServiceStub(channel).SemanticSearch(
            gateway_pb2.SemanticSearchRequest(collections=[COLLECTION], query="Who restarts crashed pods?", top_k=2),
            timeout=120,
            metadata=metadata,
        )
    assert all(s.status.code == 0 for s in found.collection_statuses), found.collection_statuses
    return found.hits[0].hit.id
