"""Composite calls and forwarding through a gateway to a real embeddings service (both in this process).

nlp and vision are down here: their parts report UNAVAILABLE while the
embeddings parts answer what the embeddings service answers directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import numpy as np
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2

from gateway.server import Gateway
from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2 as epb
from lumen.embeddings.v1 import embeddings_pb2_grpc as epb_grpc
from lumen.gateway.v1 import gateway_pb2 as pb
from lumen.gateway.v1 import gateway_pb2_grpc as pb_grpc
from shared.interceptors import USAGE_KEY
from shared.model_service import ModelService
from tests.gateway.conftest import running_gateway

pytestmark = pytest.mark.slow

OK = 0
EMBEDDING = pb.TextFeature(type=pb.TEXT_FEATURE_TYPE_EMBEDDING)
SENTIMENT = pb.TextFeature(type=pb.TEXT_FEATURE_TYPE_SENTIMENT)
DOCS = {
    "gpu": ("Graphics cards run neural networks quickly.", "tech"),
    "soup": ("Tomato soup needs basil and garlic.", "food"),
    "k8s": ("Kubernetes schedules containers on a cluster.", "tech"),
    "bread": ("Sourdough bread rises slowly overnight.", "food"),
}


def topic(value: str) -> struct_pb2.Struct:
    return struct_pb2.Struct(fields={"topic": struct_pb2.Value(string_value=value)})


@pytest.fixture(scope="module")
async def embeddings(
    embeddings_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ModelService]:
    from services.embeddings import app
    from services.embeddings.settings import EmbeddingsSettings
    from shared.model_service import start

    settings = EmbeddingsSettings(
        host="127.0.0.1",
        port=0,
        model_repository=str(embeddings_repository),
        collections_dir=str(tmp_path_factory.mktemp("collections")),
    )
    service = await start("embeddings", settings, app.FACTORIES, app.registrations)
    yield service
    await service.stop(0)


@pytest.fixture(scope="module")
async def gateway(embeddings: ModelService) -> AsyncIterator[Gateway]:
    async with running_gateway(embeddings_address=f"127.0.0.1:{embeddings.port}") as running:
        yield running


@pytest.fixture(scope="module")
async def channel(gateway: Gateway) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as ch:
        yield ch


@pytest.fixture(scope="module")
async def direct(embeddings: ModelService) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{embeddings.port}") as ch:
        yield ch


def vector(v: common_pb2.Vector) -> np.ndarray:
    return np.frombuffer(v.values_f32, "<f4") if v.values_f32 else np.asarray(v.values, np.float32)


async def test_analyze_text_embedding_is_the_services_own(channel: grpc.aio.Channel, direct: grpc.aio.Channel) -> None:
    text = "The gateway fans out to every backend."
    reply = await pb_grpc.GatewayServiceStub(channel).AnalyzeText(
        pb.AnalyzeTextRequest(
            text=text,
            features=[EMBEDDING, SENTIMENT],
            normalize_embedding=True,
            embedding_encoding=common_pb2.VECTOR_ENCODING_F32_BYTES,
        ),
        timeout=60,
    )
    want = await epb_grpc.EmbeddingServiceStub(direct).Embed(
        epb.EmbedRequest(texts=[text], normalize=True, encoding=common_pb2.VECTOR_ENCODING_F32_BYTES)
    )
    assert reply.embedding.status.code == OK
    assert reply.embedding.model.name == want.model.name == "all-minilm-l6-v2"
    np.testing.assert_allclose(vector(reply.embedding.embedding), vector(want.embeddings[0]), atol=1e-6)
    assert reply.embedding.embedding.values_f32 and not reply.embedding.embedding.values
    # nlp is down: its part says so, the rest is intact, and only the part that succeeded is counted.
    assert reply.sentiment.status.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert not reply.HasField("language")
    assert reply.usage.input_tokens == want.usage.input_tokens > 0


async def test_part_errors_keep_the_backends_code_about_the_callers_field(channel: grpc.aio.Channel) -> None:
    stub = pb_grpc.GatewayServiceStub(channel)
    long = await stub.AnalyzeText(pb.AnalyzeTextRequest(text="word " * 2000, features=[EMBEDDING]), timeout=60)
    assert long.embedding.status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    bad = error_details_pb2.BadRequest()
    long.embedding.status.details[0].Unpack(bad)
    assert bad.field_violations[0].field == "text"  # the embeddings service said "texts[0]"
    ghost = await stub.AnalyzeText(
        pb.AnalyzeTextRequest(
            text="x",
            features=[pb.TextFeature(type=pb.TEXT_FEATURE_TYPE_EMBEDDING, model=common_pb2.ModelRef(name="ghost"))],
        ),
        timeout=60,
    )
    assert ghost.embedding.status.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert ghost.usage.input_tokens == 0


async def test_index_then_search_across_collections(channel: grpc.aio.Channel, direct: grpc.aio.Channel) -> None:
    stub = pb_grpc.GatewayServiceStub(channel)
    documents = [epb.Document(id=i, text=t, metadata=topic(kind)) for i, (t, kind) in DOCS.items()]
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.IndexDocuments(pb.IndexDocumentsRequest(collection="first", documents=documents[:1]))
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    first = await stub.IndexDocuments(
        pb.IndexDocumentsRequest(collection="first", documents=documents[:2], create_if_missing=True), timeout=60
    )
    assert first.created and first.indexed == 2 and first.collection.document_count == 2
    assert [s.code for s in first.statuses] == [OK, OK] and first.usage.input_tokens > 0
    # nlp is down: detection fails quietly and the documents are stored without a language.
    second = await stub.IndexDocuments(
        pb.IndexDocumentsRequest(
            collection="second",
            documents=[*documents[2:], epb.Document(id="empty", text="")],
            create_if_missing=True,
            detect_language=True,
        ),
        timeout=60,
    )
    assert second.created and second.indexed == 2
    assert [s.code for s in second.statuses] == [OK, OK, grpc.StatusCode.INVALID_ARGUMENT.value[0]]

    query = "machine learning hardware"
    found = await stub.SemanticSearch(
        pb.SemanticSearchRequest(
            collections=["first", "nowhere", "second"], query=query, top_k=3, include_documents=True
        ),
        timeout=60,
    )
    assert [(s.collection, s.status.code) for s in found.collection_statuses] == [
        ("first", OK),
        ("nowhere", grpc.StatusCode.NOT_FOUND.value[0]),
        ("second", OK),
    ]
    # The merged hits are the best three of the collections' own searches.
    collections = epb_grpc.CollectionServiceStub(direct)
    own = []
    for name in ("first", "second"):
        reply = await collections.Search(epb.SearchRequest(collection=name, text=query, top_k=3))
        own += [(h.score, name, h.id) for h in reply.hits]
    own.sort(key=lambda x: -x[0])
    assert [(h.collection, h.hit.id) for h in found.hits] == [(name, i) for _, name, i in own[:3]]
    assert [h.hit.score for h in found.hits] == pytest.approx([s for s, _, _ in own[:3]], abs=1e-6)
    assert found.hits[0].hit.id == "gpu" and found.hits[0].hit.document.text == DOCS["gpu"][0]
    assert all("language" not in h.hit.document.metadata.fields for h in found.hits)
    # Both collections use the same model: the query's tokens count once.
    assert found.usage.input_tokens == reply.usage.input_tokens > 0

    between = (found.hits[0].hit.score + found.hits[1].hit.score) / 2
    high = await stub.SemanticSearch(
        pb.SemanticSearchRequest(collections=["first", "second"], query=query, min_score=between)
    )
    assert [h.hit.id for h in high.hits] == ["gpu"]
    food = await stub.SemanticSearch(
        pb.SemanticSearchRequest(collections=["first", "second"], query=query, filter=topic("food"))
    )
    assert sorted(h.hit.id for h in food.hits) == ["bread", "soup"]
    # The embeddings service refuses a filter key no document has: that collection's own status says so.
    unknown = struct_pb2.Struct(fields={"colour": struct_pb2.Value(string_value="red")})
    refused = await stub.SemanticSearch(pb.SemanticSearchRequest(collections=["first"], query=query, filter=unknown))
    assert refused.collection_statuses[0].status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


async def test_forwarded_calls_relay_usage_and_request_id(channel: grpc.aio.Channel) -> None:
    stub = epb_grpc.EmbeddingServiceStub(channel)
    call = stub.Embed(epb.EmbedRequest(texts=["count my tokens"]), metadata=(("x-request-id", "usage-1"),))
    reply = await call
    trailing = list(await call.trailing_metadata())
    assert ("x-request-id", "usage-1") in trailing
    assert [k for k, _ in trailing].count("x-request-id") == 1
    relayed = common_pb2.Usage.FromString(dict(trailing)[USAGE_KEY])
    assert relayed == reply.usage and relayed.input_tokens > 0

    # Streams relay it at their end, and the gateway counts both.
    before = await pb_grpc.GatewayServiceStub(channel).GetUsage(pb.GetUsageRequest())
    chunks = [epb.EmbedStreamRequest(texts=["one", "two"]), epb.EmbedStreamRequest(texts=["three"])]
    stream = stub.EmbedStream(iter(chunks))
    replies = [r async for r in stream]
    streamed = common_pb2.Usage.FromString(dict(list(await stream.trailing_metadata()))[USAGE_KEY])
    assert streamed.input_tokens == sum(r.usage.input_tokens for r in replies) > 0
    after = await pb_grpc.GatewayServiceStub(channel).GetUsage(pb.GetUsageRequest())
    by_method = {m.method: m for m in after.methods}
    stream_usage = by_method["/lumen.embeddings.v1.EmbeddingService/EmbedStream"].usage
    assert stream_usage.input_tokens - _method_tokens(before, "EmbedStream") == streamed.input_tokens
    assert after.usage.input_tokens - before.usage.input_tokens == streamed.input_tokens


def _method_tokens(report: pb.GetUsageResponse, name: str) -> int:
    return sum(m.usage.input_tokens for m in report.methods if m.method.endswith("/" + name))
