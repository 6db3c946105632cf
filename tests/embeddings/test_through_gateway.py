"""Word vectors and collections reach callers through the gateway, which forwards every embeddings RPC."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest

from lumen.embeddings.v1 import embeddings_pb2 as pb
from lumen.embeddings.v1 import embeddings_pb2_grpc as pb_grpc
from shared.model_service import ModelService
from tests.in_process import gateway_channel as in_process_gateway

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def gateway_channel(embeddings_service: ModelService) -> AsyncIterator[grpc.aio.Channel]:
    async with in_process_gateway(embeddings_address=f"127.0.0.1:{embeddings_service.port}") as channel:
        yield channel


async def test_word_and_collection_rpcs_through_the_gateway(gateway_channel, embeddings_channel) -> None:
    words = pb_grpc.WordEmbeddingServiceStub(gateway_channel)
    direct = await pb_grpc.WordEmbeddingServiceStub(embeddings_channel).MostSimilarWords(
        pb.MostSimilarWordsRequest(positive=["police"], top_k=5)
    )
    forwarded = await words.MostSimilarWords(pb.MostSimilarWordsRequest(positive=["police"], top_k=5), timeout=30)
    assert forwarded.words == direct.words

    collections = pb_grpc.CollectionServiceStub(gateway_channel)
    await collections.CreateCollection(pb.CreateCollectionRequest(name="via-gateway"), timeout=30)
    await collections.UpsertDocuments(
        pb.UpsertDocumentsRequest(
            collection="via-gateway",
            documents=[pb.Document(id="a", text="Trains run on rails."), pb.Document(id="b", text="Cats purr.")],
        ),
        timeout=30,
    )
    found = await collections.Search(pb.SearchRequest(collection="via-gateway", text="railway", top_k=1), timeout=30)
    assert [h.id for h in found.hits] == ["a"]
    with pytest.raises(grpc.aio.AioRpcError) as error:  # the service's status and field travel through
        await collections.Search(pb.SearchRequest(collection="via-gateway", text="x", top_k=0), timeout=30)
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "top_k" in error.value.details()
    await collections.DeleteCollection(pb.DeleteCollectionRequest(name="via-gateway"), timeout=30)


async def _codes(channel: grpc.aio.Channel) -> dict[str, grpc.StatusCode]:
    """The status of calls the embeddings service refuses, of each call kind it has."""
    stub = pb_grpc.EmbeddingServiceStub(channel)
    codes: dict[str, grpc.StatusCode] = {}
    try:
        await stub.Embed(pb.EmbedRequest(texts=["x" * 1_000_000]), timeout=60)
    except grpc.aio.AioRpcError as exc:
        codes["unary"] = exc.code()

    async def big_chunks() -> AsyncIterator[pb.EmbedStreamRequest]:
        # The service refuses the first chunk while the client still has more to send.
        for _ in range(3):
            yield pb.EmbedStreamRequest(texts=["y" * 1_000_000])

    try:
        async for _ in stub.EmbedStream(big_chunks(), timeout=60):
            pass
    except grpc.aio.AioRpcError as exc:
        codes["bidi, refused while the client sends"] = exc.code()
        codes["details mention the chunk"] = grpc.StatusCode.OK if "chunk[0]" in (exc.details() or "") else exc.code()
    return codes


async def test_the_gateway_relays_the_backends_status_whatever_the_client_still_sends(
    gateway_channel, embeddings_channel
) -> None:
    direct = await _codes(embeddings_channel)
    assert direct["unary"] is grpc.StatusCode.INVALID_ARGUMENT
    assert direct["bidi, refused while the client sends"] is grpc.StatusCode.INVALID_ARGUMENT
    assert await _codes(gateway_channel) == direct
