"""Access through the gateway with keys on, to a real embeddings server (port 0) that requires the
gateway's backend token and whose repository holds a model that fails to load: ListModels applies
each backend's permission and shows load errors (they name files) and backend failures to admin
keys only; admin methods need an admin key; the service refuses callers without the token."""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest
from google.rpc import code_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lumen.common.v1 import common_pb2, common_pb2_grpc
from lumen.embeddings.v1 import embeddings_pb2, embeddings_pb2_grpc
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
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "backend-token"
    path.write_text(secrets.token_urlsafe(32) + "\n")
    return path


@pytest.fixture(scope="module")
async def embeddings(
    repository: Path, token_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ModelService]:
    settings = EmbeddingsSettings(
        host="127.0.0.1",
        port=0,
        model_repository=str(repository),
        collections_dir=str(tmp_path_factory.mktemp("access-collections")),
        backend_token_file=str(token_file),
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
async def channel(
    embeddings: ModelService, keys: tuple[Path, Keys], token_file: Path
) -> AsyncIterator[grpc.aio.Channel]:
    async with (
        running_gateway(
            embeddings_address=f"127.0.0.1:{embeddings.port}",
            keys_file=str(keys[0]),
            backend_token_file=str(token_file),
        ) as gateway,
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


async def test_admin_methods_need_an_admin_key(channel, keys) -> None:
    secret = keys[1]
    stub = embeddings_pb2_grpc.CollectionServiceStub(channel)
    await stub.CreateCollection(
        embeddings_pb2.CreateCollectionRequest(name="kept"), metadata=(("x-api-key", secret.user),), timeout=60
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.DeleteCollection(
            embeddings_pb2.DeleteCollectionRequest(name="kept"), metadata=(("x-api-key", secret.user),), timeout=30
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "DeleteCollection needs an admin key" in refused.value.details()
    listed = await stub.ListCollections(
        embeddings_pb2.ListCollectionsRequest(), metadata=(("x-api-key", secret.user),), timeout=30
    )
    assert "kept" in [c.name for c in listed.collections]
    await stub.DeleteCollection(
        embeddings_pb2.DeleteCollectionRequest(name="kept"), metadata=(("x-api-key", secret.admin),), timeout=30
    )


async def test_the_service_serves_only_callers_with_the_backend_token(embeddings, channel, keys, token_file) -> None:
    """Through the gateway (which sends the token) calls work; straight to the service, a call
    without the token or with a wrong one is UNAUTHENTICATED, LoadModel included; health stays open."""
    embed = embeddings_pb2.EmbedRequest(texts=["hello"])
    through = await embeddings_pb2_grpc.EmbeddingServiceStub(channel).Embed(
        embed, metadata=(("x-api-key", keys[1].user),), timeout=60
    )
    assert len(through.embeddings) == 1
    async with grpc.aio.insecure_channel(f"127.0.0.1:{embeddings.port}") as direct:
        for metadata in ((), (("x-lumen-backend-token", "x" * 43),)):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await embeddings_pb2_grpc.EmbeddingServiceStub(direct).Embed(embed, metadata=metadata, timeout=30)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await common_pb2_grpc.ModelRepositoryServiceStub(direct).UnloadModel(
                    common_pb2.UnloadModelRequest(name="all-minilm-l6-v2"), metadata=metadata, timeout=30
                )
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        health = await health_pb2_grpc.HealthStub(direct).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status in (health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING)
        token = token_file.read_text().strip()
        models = await common_pb2_grpc.ModelRepositoryServiceStub(direct).ListModels(
            common_pb2.ListModelsRequest(), metadata=(("x-lumen-backend-token", token),), timeout=30
        )
        assert "all-minilm-l6-v2" in [m.name for m in models.models]
    async with (  # a gateway without the token is refused by the service, and says so
        running_gateway(embeddings_address=f"127.0.0.1:{embeddings.port}") as tokenless,
        grpc.aio.insecure_channel(f"127.0.0.1:{tokenless.port}") as ch,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await embeddings_pb2_grpc.EmbeddingServiceStub(ch).Embed(embed, timeout=30)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
