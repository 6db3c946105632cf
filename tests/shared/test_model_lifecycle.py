"""The lifecycle guard: calls hold their model, so unload and reload wait for the
calls in flight and never race with them. A real nlp service (port 0, in process)
serving the real py3langid model (loads in well under a second), called over gRPC
while it is unloaded and reloaded."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest

from lumen.common.v1 import common_pb2, common_pb2_grpc
from lumen.nlp.v1 import nlp_pb2 as pb
from lumen.nlp.v1 import nlp_pb2_grpc as pb_grpc
from services.nlp import app, runtime_langid, tasks
from services.nlp.settings import NlpSettings
from shared.model import BatchedModel, write_config
from shared.model_service import ModelService, start
from shared.repository import State

pytestmark = pytest.mark.slow

NAME = "py3langid"
TEXT = "The weather is lovely today and the children are playing in the garden."


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ModelService]:
    write_config(tmp_path, NAME, {"task": tasks.LANGUAGE_DETECTION, "framework": runtime_langid.FRAMEWORK})
    settings = NlpSettings(host="127.0.0.1", port=0, model_repository=str(tmp_path))
    running = await start("nlp", settings, app.FACTORIES, app.registrations)
    assert running.repository.all_ready()
    yield running
    await running.stop(0)


@pytest.fixture
async def channel(service: ModelService) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        yield channel


def hold(service: ModelService):
    return service.repository.resolve(NAME, "", tasks.LANGUAGE_DETECTION, BatchedModel)


async def detect(channel: grpc.aio.Channel) -> str:
    reply = await pb_grpc.TextAnalysisServiceStub(channel).DetectLanguage(
        pb.DetectLanguageRequest(texts=[TEXT], model=common_pb2.ModelRef(name=NAME))
    )
    return reply.results[0].languages[0].language_code


async def test_unload_waits_for_the_call_holding_the_model(service: ModelService, channel: grpc.aio.Channel) -> None:
    repository = common_pb2_grpc.ModelRepositoryServiceStub(channel)
    lease = hold(service)
    model = lease.model
    try:
        unload = asyncio.ensure_future(repository.UnloadModel(common_pb2.UnloadModelRequest(name=NAME)))
        # New calls are refused at once, while the held model stays whole for its call.
        while True:
            try:
                await detect(channel)
            except grpc.aio.AioRpcError as refused:
                assert refused.code() is grpc.StatusCode.FAILED_PRECONDITION
                break
            await asyncio.sleep(0.01)
        assert not unload.done() and hasattr(model, "identifier")
        assert [code for code, _ in (await lease.predict([TEXT]))[0][:1]] == ["en"]
    finally:
        lease.release()
    unloaded = await unload
    assert unloaded.model.state == common_pb2.MODEL_STATE_UNLOADED
    assert not hasattr(model, "identifier")  # freed only now


async def test_reload_serves_new_calls_while_the_old_model_drains(
    service: ModelService, channel: grpc.aio.Channel
) -> None:
    repository = common_pb2_grpc.ModelRepositoryServiceStub(channel)
    old = hold(service)
    try:
        reload = asyncio.ensure_future(repository.LoadModel(common_pb2.LoadModelRequest(name=NAME)))
        while True:  # until the new model is swapped in
            with hold(service) as current:
                if current.entry is not old.entry:
                    break
            await asyncio.sleep(0.01)
        assert await detect(channel) == "en"  # served by the new model
        assert not reload.done()
        assert hasattr(old.model, "identifier") and old.entry.state is State.READY
    finally:
        old.release()
    loaded = await reload
    assert loaded.model.state == common_pb2.MODEL_STATE_READY
    assert not hasattr(old.model, "identifier") and old.entry.state is State.UNLOADED


async def test_calls_under_concurrent_load_and_unload_get_answers_or_retryable_refusals(
    service: ModelService, channel: grpc.aio.Channel
) -> None:
    repository = common_pb2_grpc.ModelRepositoryServiceStub(channel)
    outcomes: Counter[str] = Counter()
    stop = asyncio.Event()

    async def caller() -> None:
        while not stop.is_set():
            try:
                outcomes[await detect(channel)] += 1
            except grpc.aio.AioRpcError as refused:
                outcomes[refused.code().name] += 1
            await asyncio.sleep(0.005)

    async def churn() -> None:
        for _ in range(2):
            ops = [
                repository.UnloadModel(common_pb2.UnloadModelRequest(name=NAME)),
                repository.LoadModel(common_pb2.LoadModelRequest(name=NAME)),
                repository.LoadModel(common_pb2.LoadModelRequest(name=NAME)),
                repository.UnloadModel(common_pb2.UnloadModelRequest(name=NAME)),
                repository.LoadModel(common_pb2.LoadModelRequest(name=NAME)),
            ]
            for result in await asyncio.gather(*ops, return_exceptions=True):
                # Unloading what another call already unloaded is NOT_FOUND; nothing else fails.
                if isinstance(result, grpc.aio.AioRpcError):
                    assert result.code() is grpc.StatusCode.NOT_FOUND, result
        await repository.LoadModel(common_pb2.LoadModelRequest(name=NAME))
        stop.set()

    await asyncio.gather(churn(), *(caller() for _ in range(4)))
    assert set(outcomes) <= {"en", "FAILED_PRECONDITION", "UNAVAILABLE"}, outcomes
    assert outcomes["en"] > 0
    # After the last load the model serves, and no call still holds any model.
    assert await detect(channel) == "en"
    entries = [e for e in service.repository.entries() if e.config.name == NAME]
    assert entries[0].state is State.READY and entries[0].holders == 0
