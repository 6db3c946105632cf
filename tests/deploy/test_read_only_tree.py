"""Every writable path of a model service comes from its settings.

The images run with a read-only root filesystem (deploy/k8s hardening, compose
`read_only`): whatever a service writes outside the folders its settings name
fails there. Here each service runs with the project tree (code, stubs, model
repository) bind-mounted read-only in a private mount namespace and HOME
pointing into it, so a write to a default under the tree or under $HOME fails
the same way; the settings name folders in tmp_path for galleries, collections
and library caches. Each service must reach SERVING with all of its default
models and take a call that writes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from lumen.embeddings.v1 import embeddings_pb2, embeddings_pb2_grpc
from lumen.nlp.v1 import nlp_pb2, nlp_pb2_grpc
from lumen.vision.v1 import vision_pb2, vision_pb2_grpc
from tests.vision import samples
from tools.suite import OFFLINE_ENV, free_port, health_status

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SERVING = 1


def read_only_namespace_reason() -> str | None:
    """Why a read-only bind mount of the tree cannot be made here, or None."""
    if os.geteuid() != 0:
        return "a private mount namespace with a read-only bind mount needs root"
    if not shutil.which("unshare"):
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f'mount --bind "{ROOT}" "{ROOT}" && mount -o remount,bind,ro "{ROOT}"'],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return f"cannot bind-mount the tree read-only: {probe.stderr.strip()}"
    return None


def start_read_only(name: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    """`python -m services.<name>.server` with ROOT read-only in its own mount namespace."""
    script = (
        f'mount --bind "{ROOT}" "{ROOT}" && mount -o remount,bind,ro "{ROOT}" '
        f'&& exec "{sys.executable}" -m services.{name}.server'
    )
    prefix = f"LUMEN_{name.upper()}_"
    child_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LUMEN_")},
        **OFFLINE_ENV,
        # Not the Makefile's PYTHONDONTWRITEBYTECODE: bytecode writes fail quietly, as in the image.
        "HOME": str(ROOT),
        f"{prefix}PORT": str(port),
        f"{prefix}HOST": "127.0.0.1",
        **env,
    }
    for variable in ("XDG_CACHE_HOME", "HF_HOME", "TORCH_HOME", "MPLCONFIGDIR", "NUMBA_CACHE_DIR", "KERAS_HOME"):
        child_env.pop(variable, None)
    return subprocess.Popen(
        ["unshare", "-m", "sh", "-c", script],
        cwd=ROOT,
        env=child_env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def wait_serving(process: subprocess.Popen, address: str, log: Path, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while health_status(address) != SERVING:
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode} before SERVING:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"not SERVING after {timeout} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def read_only_tree() -> None:
    reason = read_only_namespace_reason()
    if reason:
        pytest.skip(reason)
    if not (ROOT / "var" / "models").is_dir():
        pytest.skip("no default models in var/models (make models)")


def test_the_tree_is_read_only_inside_the_namespace(read_only_tree: None) -> None:
    """The premise: a write under ROOT fails in the namespace the services run in."""
    result = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            f'mount --bind "{ROOT}" "{ROOT}" && mount -o remount,bind,ro "{ROOT}" && touch "{ROOT}/var/probe"',
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "Read-only file system" in result.stderr
    assert not (ROOT / "var" / "probe").exists()


def test_vision_writes_galleries_and_caches_where_its_settings_say(read_only_tree: None, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "vision.log"
    galleries, caches = tmp_path / "galleries", tmp_path / "cache"
    process = start_read_only(
        "vision", port, {"LUMEN_VISION_GALLERIES_DIR": str(galleries), "LUMEN_VISION_CACHE_DIR": str(caches)}, log
    )
    try:
        wait_serving(process, f"127.0.0.1:{port}", log)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            faces = vision_pb2_grpc.FaceRecognitionServiceStub(channel)
            faces.CreateGallery(vision_pb2.CreateGalleryRequest(name="crew"))
            image = samples.message(samples.encode(samples.astronaut_face_crop()))
            enrolled = faces.EnrollPerson(
                vision_pb2.EnrollPersonRequest(gallery="crew", person_id="eileen", images=[image])
            )
            assert enrolled.person.face_count == 1
    finally:
        stop(process)
    assert (galleries / "galleries.sqlite3").is_file()


def test_embeddings_writes_collections_where_its_settings_say(read_only_tree: None, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "embeddings.log"
    collections = tmp_path / "collections"
    env = {"LUMEN_EMBEDDINGS_COLLECTIONS_DIR": str(collections), "LUMEN_EMBEDDINGS_CACHE_DIR": str(tmp_path / "cache")}
    process = start_read_only("embeddings", port, env, log)
    try:
        wait_serving(process, f"127.0.0.1:{port}", log)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = embeddings_pb2_grpc.CollectionServiceStub(channel)
            stub.CreateCollection(embeddings_pb2.CreateCollectionRequest(name="notes"))
            written = stub.UpsertDocuments(
                embeddings_pb2.UpsertDocumentsRequest(
                    collection="notes", documents=[embeddings_pb2.Document(id="a", text="Pods restart.")]
                )
            )
            assert written.upserted == 1
    finally:
        stop(process)
    assert any(collections.iterdir())


def test_nlp_serves_every_default_model_with_the_tree_read_only(read_only_tree: None, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "nlp.log"
    process = start_read_only("nlp", port, {"LUMEN_NLP_CACHE_DIR": str(tmp_path / "cache")}, log)
    try:
        wait_serving(process, f"127.0.0.1:{port}", log)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = nlp_pb2_grpc.TextGenerationServiceStub(channel)
            reply = stub.Generate(
                nlp_pb2.GenerateRequest(prompt="Hello", params=nlp_pb2.GenerationParams(max_new_tokens=4, seed=1))
            )
            assert reply.usage.output_tokens > 0
    finally:
        stop(process)
