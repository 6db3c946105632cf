"""The model repository API on a real embeddings service."""

from __future__ import annotations

import asyncio
import shutil

import grpc
import grpc.aio
import pytest

from lumen.common.v1 import common_pb2, common_pb2_grpc
from lumen.embeddings.v1 import embeddings_pb2 as pb
from lumen.embeddings.v1 import embeddings_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow


async def test_list_and_get_models(embeddings_channel) -> None:
    stub = common_pb2_grpc.ModelRepositoryServiceStub(embeddings_channel)
    listed = await stub.ListModels(common_pb2.ListModelsRequest())
    [model] = [m for m in listed.models if m.name == "all-minilm-l6-v2"]
    assert model.state == common_pb2.MODEL_STATE_READY
    assert model.properties["dimension"] == "384"
    assert model.batching.max_batch_size == 64
    got = await stub.GetModel(common_pb2.GetModelRequest(model=common_pb2.ModelRef(name="all-minilm-l6-v2")))
    assert got.model.task == "sentence-embedding"
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.GetModel(common_pb2.GetModelRequest(model=common_pb2.ModelRef(name="nope")))
    assert error.value.code() is grpc.StatusCode.NOT_FOUND


async def test_model_added_at_run_time_loads_serves_and_unloads(embeddings_channel, embeddings_repository) -> None:
    """A model directory that appears after start (as a trained model will) is loaded by name."""
    source = embeddings_repository / "all-minilm-l6-v2" / "model.json"
    target = embeddings_repository / "minilm-copy"
    target.mkdir(exist_ok=True)
    shutil.copy(source, target / "model.json")
    (target / "model.json").write_text(
        (target / "model.json")
        .read_text()
        .replace('"all-minilm-l6-v2"', '"minilm-copy"')
        .replace('"default": true', '"default": false')
    )
    repo = common_pb2_grpc.ModelRepositoryServiceStub(embeddings_channel)
    embed = pb_grpc.EmbeddingServiceStub(embeddings_channel)
    loaded = await repo.LoadModel(common_pb2.LoadModelRequest(name="minilm-copy"))
    assert loaded.model.state == common_pb2.MODEL_STATE_READY
    response = await embed.Embed(pb.EmbedRequest(texts=["hi"], model=common_pb2.ModelRef(name="minilm-copy")))
    assert response.model.name == "minilm-copy"
    unloaded = await repo.UnloadModel(common_pb2.UnloadModelRequest(name="minilm-copy"))
    assert unloaded.model.state == common_pb2.MODEL_STATE_UNLOADED
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await embed.Embed(pb.EmbedRequest(texts=["hi"], model=common_pb2.ModelRef(name="minilm-copy")))
    assert error.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "LoadModel" in error.value.details()
    shutil.rmtree(target)


async def test_loading_a_broken_model_reports_failed_and_keeps_serving(
    embeddings_channel, embeddings_repository
) -> None:
    broken = embeddings_repository / "broken"
    broken.mkdir(exist_ok=True)
    (broken / "model.json").write_text(
        '{"task": "sentence-embedding", "framework": "sentence-transformers", "path": "nowhere"}'
    )
    repo = common_pb2_grpc.ModelRepositoryServiceStub(embeddings_channel)
    loaded = await repo.LoadModel(common_pb2.LoadModelRequest(name="broken"))
    assert loaded.model.state == common_pb2.MODEL_STATE_FAILED
    assert loaded.model.error
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await repo.LoadModel(common_pb2.LoadModelRequest(name="not-a-directory"))
    assert error.value.code() is grpc.StatusCode.NOT_FOUND
    embed = pb_grpc.EmbeddingServiceStub(embeddings_channel)
    assert len((await embed.Embed(pb.EmbedRequest(texts=["fine"]))).embeddings) == 1
    shutil.rmtree(broken)


async def test_concurrent_unloads_and_calls_never_answer_internal(embeddings_channel, embeddings_repository) -> None:
    """Several UnloadModel calls at once, with Embed calls on the same model in flight: each
    answers OK or a clear status (the lifecycle guard), never INTERNAL/UNKNOWN; the model ends
    UNLOADED, and loads and serves again."""
    source = embeddings_repository / "all-minilm-l6-v2" / "model.json"
    target = embeddings_repository / "minilm-race"
    target.mkdir(exist_ok=True)
    (target / "model.json").write_text(
        source.read_text().replace('"all-minilm-l6-v2"', '"minilm-race"').replace('"default": true', '"default": false')
    )
    repo = common_pb2_grpc.ModelRepositoryServiceStub(embeddings_channel)
    embed = pb_grpc.EmbeddingServiceStub(embeddings_channel)
    ref = common_pb2.ModelRef(name="minilm-race")
    bad = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}

    async def code(call) -> grpc.StatusCode:
        try:
            await call
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    for _ in range(3):
        loaded = await repo.LoadModel(common_pb2.LoadModelRequest(name="minilm-race"), timeout=120)
        assert loaded.model.state == common_pb2.MODEL_STATE_READY
        calls = [embed.Embed(pb.EmbedRequest(texts=["race"] * 8, model=ref), timeout=60) for _ in range(6)]
        calls += [repo.UnloadModel(common_pb2.UnloadModelRequest(name="minilm-race"), timeout=60) for _ in range(4)]
        codes = await asyncio.gather(*(code(c) for c in calls))
        assert not bad & set(codes), codes
        assert grpc.StatusCode.OK in codes[6:]  # one unload, at least, did it
        got = await repo.GetModel(common_pb2.GetModelRequest(model=ref), timeout=30)
        assert got.model.state == common_pb2.MODEL_STATE_UNLOADED
    shutil.rmtree(target)
