"""Gateways on port 0 in this process, key files, and backends that are down or hung."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway.key_store import ApiKey, hash_secret, new_secret, read_keys, write_keys
from tests.in_process import down_address, running_gateway  # noqa: F401 - re-exported for the gateway tests
from tools.suite import Suite


def add_key(path: Path, key_id: str, **limits: Any) -> str:
    """Store a new key in ``path`` (hash only, as the CLI does) and return the key itself."""
    secret = new_secret()
    services = frozenset(limits.pop("services", ("nlp", "vision", "embeddings", "gateway")))
    key = ApiKey(id=key_id, sha256=hash_secret(secret), services=services, **limits)
    write_keys(path, [*read_keys(path), key])
    return secret


@pytest.fixture
def hung_address() -> Iterator[str]:
    """A backend that accepts connections and never answers (a hung process, or a black-holed network)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture(scope="module")
def embeddings_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embeddings service's default sentence model, written by its own set-up code."""
    return setup_repository("embeddings", tmp_path_factory.mktemp("models"))


# What each service's set-up writes for these tests: models that ship in packages, plus vision's
# quick digits CNN; nlp's trained classifiers and its LLM conversion take minutes on 2 busy cores.
SETUP_STEPS = {"embeddings": "write_sentence_model", "nlp": "setup_packaged", "vision": "main"}


def setup_repository(service: str, root: Path) -> Path:
    """A model repository made by the service's own set-up script (empty when it has none yet:
    the service then serves, with no model to answer with)."""
    import importlib

    repository = root / service
    repository.mkdir(parents=True, exist_ok=True)
    try:
        setup = importlib.import_module(f"services.{service}.setup_models")
    except ModuleNotFoundError:
        return repository
    getattr(setup, SETUP_STEPS[service])(repository)
    return repository


def backend_env(service: str, repository: Path, data: Path) -> dict[str, str]:
    """Environment of a model-service process whose state lives under ``data``."""
    prefix = f"LUMEN_{service.upper()}_"
    env = {f"{prefix}MODEL_REPOSITORY": str(repository)}
    if service == "embeddings":
        env[f"{prefix}COLLECTIONS_DIR"] = str(data / "collections")
    if service == "vision":
        env[f"{prefix}GALLERIES_DIR"] = str(data / "galleries")
    return env


def wait_settled(suite: Suite, name: str, timeout: float = 240.0) -> None:
    """Wait until every model of a process is READY or FAILED (health stays NOT_SERVING after a
    failed load, while the service still serves its other models). Raises if the process exits."""
    from lumen.common.v1 import common_pb2, common_pb2_grpc

    settled = {common_pb2.MODEL_STATE_READY, common_pb2.MODEL_STATE_FAILED}
    deadline = time.monotonic() + timeout
    component = suite.components[name]
    with grpc.insecure_channel(component.address) as channel:
        stub = common_pb2_grpc.ModelRepositoryServiceStub(channel)
        while True:
            try:
                models = stub.ListModels(common_pb2.ListModelsRequest(), timeout=5).models
                if all(m.state in settled for m in models):
                    return
            except grpc.RpcError:
                pass  # not listening yet
            if component.process.poll() is not None:
                raise RuntimeError(f"{name} exited with {component.process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}'s models not loaded after {timeout}s")
            time.sleep(0.3)


def read_metric(port: int, name: str, **labels: str) -> float:
    """One sample of a Prometheus text endpoint (0 when absent)."""
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
