"""Access through the gateway with keys on, to a real embeddings server (port 0) whose repository
holds a model that fails to load: ListModels applies each backend's permission and shows load
errors (they name files) and backend failures to admin keys only."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest
from google.rpc import code_pb2

from lumen.common.v1 import common_pb2
from lumen.gateway.v1 import gateway_pb2 as pb
from lumen.gateway.v1 import gateway_pb2_grpc as pb_grpc
from services.embeddings import app
from services.embeddings.settings import EmbeddingsSettings
from shared.model_service import ModelService, start
from tests.gateway.conftest import add_key, running_gateway

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repository(embeddings_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("access-models")
    shutil.copytree(embeddings_repository / "all-minilm-l6-v2", root / "all-minilm-l6-v2")
    (root / "broken").mkdir()
    (root / "broken" / "model.json").write_text(
        json.dumps({"task": "sentence-embedding", "framework": "sentence-transformers", "path": "no-such-weights"})
    )
    return root


@pytest.fixture(scope="module")
async def embeddings(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ModelService]:
    settings = EmbeddingsSettings(
        host="127.0.0.1",
        port=0,
        model_repository=str(repository),
        collections_dir=str(tmp_path_factory.mktemp("access-collections")),
    )
    service = await start("embeddings", settings, app.FACTORIES, app.registrations)
    yield service
    await service.stop(0)


class Keys:
    def __init__(self, path: Path) -> None:
        self.user = add_key(path, "user", services=("embeddings", "gateway"))
        self.admin = add_key(path, "admin", admin=True)
        self.nlp_only = add_key(path, "nlp-only", services=("nlp", "gateway"))


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Keys]:
    path = tmp_path_factory.mktemp("access-keys") / "keys.json"
    return path, Keys(path)


@pytest.fixture(scope="module")
async def channel(embeddings: ModelService, keys: tuple[Path, Keys]) -> AsyncIterator[grpc.aio.Channel]:
    async with (
        running_gateway(embeddings_address=f"127.0.0.1:{embeddings.port}", keys_file=str(keys[0])) as gateway,
        grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as ch,
    ):
        yield ch


async def list_models(channel: grpc.aio.Channel, secret: str, service: str = "") -> pb.ListModelsResponse:
    stub = pb_grpc.GatewayServiceStub(channel)
    return await stub.ListModels(pb.ListModelsRequest(service=service), metadata=(("x-api-key", secret),), timeout=30)


async def test_list_models_respects_each_backends_permission_and_hides_load_errors(channel, keys, repository) -> None:
    secret = keys[1]
    user = await list_models(channel, secret.user)
    statuses = {b.service: b.status for b in user.backends}
    assert statuses["embeddings"].code == code_pb2.OK
    assert statuses["nlp"].code == statuses["vision"].code == code_pb2.PERMISSION_DENIED
    broken = next(m for m in user.models if m.name == "broken")
    assert broken.state == common_pb2.MODEL_STATE_FAILED
    assert str(repository) not in broken.error and "/" not in broken.error
    assert {m.service for m in user.models} == {"embeddings"}

    admin = await list_models(channel, secret.admin)
    assert str(repository) in next(m for m in admin.models if m.name == "broken").error  # admins see why
    down = {b.service: b.status for b in admin.backends}["nlp"]  # nothing listens there
    assert down.code == code_pb2.UNAVAILABLE and "127.0.0.1" in down.message
    hidden = {b.service: b.status for b in (await list_models(channel, secret.nlp_only)).backends}["nlp"]
    assert hidden.code == code_pb2.UNAVAILABLE and "127.0.0.1" not in hidden.message

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await list_models(channel, secret.nlp_only, service="embeddings")
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
