"""The Python SDK, sync and async, through a real gateway over real services: shortcuts, every
service's stubs, streams both ways, and errors with their google.rpc details decoded."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gateway.server import Gateway
from lumen import AsyncClient, Client, errors
from lumen.api import vectors_of
from lumen.embeddings.v1 import embeddings_pb2
from lumen.nlp.v1 import nlp_pb2
from shared.model_service import ModelService
from tests.gateway.conftest import add_key
from tests.in_process import running_gateway
from tests.sdk.conftest import backend_addresses
from tests.vision import samples

pytestmark = pytest.mark.slow
TEXTS = ["The cat sat on the mat.", "Stocks fell sharply on Monday."]


def address(gateway: Gateway) -> str:
    return f"127.0.0.1:{gateway.port}"


def stream_requests(chunks: list[list[str]]) -> Iterator[embeddings_pb2.EmbedStreamRequest]:
    for chunk in chunks:
        yield embeddings_pb2.EmbedStreamRequest(texts=chunk)


def first(stream: Iterator[str]) -> str:
    """The first message of a stream that would go on until its deadline; the call ends on close."""
    with contextlib.closing(stream):  # type: ignore[type-var]
        return next(stream)


def sync_calls(target: str) -> dict:
    """What the sync client answers, run in a thread (the gateway serves on the test's loop)."""
    with Client(target) as client:
        streamed = list(client.embeddings.EmbedStream(stream_requests([TEXTS[:1], TEXTS[1:]])))
        return {
            "embed": client.embed(TEXTS),
            "streamed": streamed,
            "analysis": client.analyze_text(TEXTS[0], ["language", "sentiment"]),
            "sentiment": client.text.AnalyzeSentiment(nlp_pb2.AnalyzeSentimentRequest(texts=TEXTS)),
            "faces": client.detect_faces([samples.encode(samples.skimage_photo("astronaut"))]),
            "health": client.health(),
            "watched": first(client.watch_health("backend.nlp")),
        }


async def test_sync_and_async_clients_answer_alike_and_as_the_backends_do(
    gateway: Gateway, backends: dict[str, ModelService]
) -> None:
    sync = await asyncio.to_thread(sync_calls, address(gateway))
    async with AsyncClient(address(gateway)) as client:
        vectors = await client.embed(TEXTS)
        streamed = [r async for r in client.embeddings.EmbedStream(stream_requests([TEXTS[:1], TEXTS[1:]]))]
        analysis = await client.analyze_text(TEXTS[0], ["language", "sentiment"])
        sentiment = await client.text.AnalyzeSentiment(nlp_pb2.AnalyzeSentimentRequest(texts=TEXTS))
        faces = await client.detect_faces([samples.encode(samples.skimage_photo("astronaut"))])
        assert await client.health() == sync["health"] == "SERVING"
        async with contextlib.aclosing(client.watch_health("backend.nlp")) as watch:  # type: ignore[type-var]
            assert await anext(watch) == sync["watched"] == "SERVING"  # a stream: its first message
    # The embeddings service itself, called directly, gives the same vectors.
    async with AsyncClient(f"127.0.0.1:{backends['embeddings'].port}") as direct:
        reference = await direct.embed(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (2, 384)
    np.testing.assert_allclose(vectors, reference, atol=1e-6)
    np.testing.assert_allclose(sync["embed"], reference, atol=1e-6)
    for responses in (streamed, sync["streamed"]):
        assert [r.chunk_index for r in responses] == [0, 1]
        np.testing.assert_allclose(np.concatenate([vectors_of(r) for r in responses]), reference, atol=1e-5)
    assert analysis == sync["analysis"] and analysis.language.languages[0].language_code == "en"
    assert sentiment == sync["sentiment"] and len(sentiment.results) == 2
    assert faces == sync["faces"] and len(faces.results[0].faces) == 1


def sync_errors(target: str) -> dict[str, errors.LumenError]:
    caught: dict[str, errors.LumenError] = {}
    with Client(target) as client:
        for name, call in {
            "invalid": lambda: client.text.AnalyzeSentiment(nlp_pb2.AnalyzeSentimentRequest()),
            "not_found": lambda: client.embed(["x"], model="absent-model"),
            "stream": lambda: list(client.embeddings.EmbedStream(stream_requests([["fine"], []]))),
        }.items():
            with pytest.raises(errors.LumenError) as error:
                call()
            caught[name] = error.value
    return caught


async def test_errors_carry_their_details_in_both_clients(gateway: Gateway) -> None:
    sync = await asyncio.to_thread(sync_errors, address(gateway))
    async with AsyncClient(address(gateway)) as client:
        with pytest.raises(errors.InvalidArgument) as invalid:
            await client.text.AnalyzeSentiment(nlp_pb2.AnalyzeSentimentRequest())
        with pytest.raises(errors.NotFound) as not_found:
            await client.embed(["x"], model="absent-model")
        with pytest.raises(errors.InvalidArgument) as in_stream:
            async for _ in client.embeddings.EmbedStream(stream_requests([["fine"], []])):
                pass
    for error in (invalid.value, sync["invalid"]):
        assert isinstance(error, errors.InvalidArgument) and error.fields == ["texts"]
        assert error.field_violations[0].description and error.request_id
        assert str(error).startswith("INVALID_ARGUMENT: ") and str(error).endswith("(field: texts)")
    for error in (not_found.value, sync["not_found"]):
        assert isinstance(error, errors.NotFound)
        assert error.resource_info == errors.ResourceInfo("sentence-embedding model", "absent-model")
        assert error.code().name == "NOT_FOUND" and "absent-model" in error.details()  # grpc's interface
    for error in (in_stream.value, sync["stream"]):
        assert isinstance(error, errors.InvalidArgument) and error.fields == ["chunk[1].texts"]  # the empty chunk
    assert invalid.value.request_id != sync["invalid"].request_id  # each call its own id


async def test_rate_limits_and_bad_keys_decode_retry_and_error_info(
    backends: dict[str, ModelService], tmp_path: Path
) -> None:
    keys = tmp_path / "keys.json"
    secret = add_key(keys, "one-a-minute", rate_per_s=1 / 60, burst=1)
    async with running_gateway(**backend_addresses(backends), keys_file=str(keys)) as gateway:
        async with AsyncClient(address(gateway), api_key=secret) as client:
            await client.analyze_text("first", ["sentiment"])
            with pytest.raises(errors.ResourceExhausted) as limited:
                await client.analyze_text("second", ["sentiment"])
        async with AsyncClient(address(gateway), api_key="lk_not-a-key") as stranger:
            with pytest.raises(errors.Unauthenticated) as unknown:
                await stranger.embed(["x"])
    error = limited.value
    assert error.error_info == errors.ErrorInfo("RATE_LIMITED", "lumen", {"key_id": "one-a-minute", "limit": "rate"})
    assert error.retry_delay is not None and 0 < error.retry_delay <= 60
    assert [v.subject for v in error.quota_violations] == ["key:one-a-minute"]
    assert unknown.value.error_info is not None and unknown.value.error_info.reason == "API_KEY_INVALID"
