"""Composite calls when backends are down or hung, and their request validation (no models)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2, embeddings_pb2_grpc
from lumen.gateway.v1 import gateway_pb2 as pb
from lumen.gateway.v1 import gateway_pb2_grpc as pb_grpc
from tests.gateway.conftest import running_gateway

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]
DEADLINE_EXCEEDED = grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
ALL_TEXT = [pb.TextFeature(type=t) for t in pb.TextFeatureType.values() if t]
ALL_IMAGE = [pb.ImageFeature(type=t) for t in pb.ImageFeatureType.values() if t]
IMAGE = common_pb2.Image(content=b"not decoded by the gateway")


@pytest.fixture(scope="module")
async def stub() -> AsyncIterator[pb_grpc.GatewayServiceStub]:
    async with running_gateway() as gateway, grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        yield pb_grpc.GatewayServiceStub(channel)


async def invalid_field(call) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    bad = error_details_pb2.BadRequest()
    rpc_status.from_call(error.value).details[0].Unpack(bad)
    return bad.field_violations[0].field


async def test_bad_requests_name_their_field(stub: pb_grpc.GatewayServiceStub) -> None:
    language = pb.TextFeature(type=pb.TEXT_FEATURE_TYPE_LANGUAGE)
    cases = [
        (stub.AnalyzeText(pb.AnalyzeTextRequest(text="", features=[language])), "text"),
        (stub.AnalyzeText(pb.AnalyzeTextRequest(text="x" * 100_001, features=[language])), "text"),
        (stub.AnalyzeText(pb.AnalyzeTextRequest(text="x")), "features"),
        (stub.AnalyzeText(pb.AnalyzeTextRequest(text="x", features=[language, language])), "features[1].type"),
        (stub.AnalyzeText(pb.AnalyzeTextRequest(text="x", features=[pb.TextFeature()])), "features[0].type"),
        (
            stub.AnalyzeText(
                pb.AnalyzeTextRequest(
                    text="x", features=[pb.TextFeature(type=pb.TEXT_FEATURE_TYPE_LANGUAGE, max_results=11)]
                )
            ),
            "features[0].max_results",
        ),
        (
            stub.AnalyzeText(pb.AnalyzeTextRequest(text="x", features=[language], part_timeout_ms=600_001)),
            "part_timeout_ms",
        ),
        (stub.AnnotateImage(pb.AnnotateImageRequest(features=ALL_IMAGE)), "image"),
        (stub.AnnotateImage(pb.AnnotateImageRequest(image=IMAGE)), "features"),
        (
            stub.AnnotateImage(
                pb.AnnotateImageRequest(
                    image=IMAGE, features=[pb.ImageFeature(type=pb.IMAGE_FEATURE_TYPE_FACES, score_threshold=1.5)]
                )
            ),
            "features[0].score_threshold",
        ),
        (
            stub.AnnotateImage(
                pb.AnnotateImageRequest(
                    image=IMAGE, features=[pb.ImageFeature(type=pb.IMAGE_FEATURE_TYPE_LABELS, max_results=1001)]
                )
            ),
            "features[0].max_results",
        ),
        (stub.SemanticSearch(pb.SemanticSearchRequest(query="q")), "collections"),
        (stub.SemanticSearch(pb.SemanticSearchRequest(collections=["a", "a"], query="q")), "collections[1]"),
        (stub.SemanticSearch(pb.SemanticSearchRequest(collections=["a"], query="")), "query"),
        (stub.SemanticSearch(pb.SemanticSearchRequest(collections=["a"], query="q", top_k=1001)), "top_k"),
        (
            stub.SemanticSearch(pb.SemanticSearchRequest(collections=["a"], query="q", min_score=float("nan"))),
            "min_score",
        ),
        (stub.IndexDocuments(pb.IndexDocumentsRequest(collection="a")), "documents"),
        (
            stub.IndexDocuments(pb.IndexDocumentsRequest(documents=[embeddings_pb2.Document(id="1", text="t")])),
            "collection",
        ),
    ]
    for call, field in cases:
        assert await invalid_field(call) == field


async def test_every_part_reports_its_down_backend(stub: pb_grpc.GatewayServiceStub) -> None:
    text = await stub.AnalyzeText(pb.AnalyzeTextRequest(text="Hello there.", features=ALL_TEXT), timeout=20)
    parts = [text.language, text.sentiment, text.classification, text.entities, text.embedding]
    assert [p.status.code for p in parts] == [UNAVAILABLE] * 5
    assert not text.embedding.HasField("embedding")
    image = await stub.AnnotateImage(pb.AnnotateImageRequest(image=IMAGE, features=ALL_IMAGE), timeout=20)
    assert [p.status.code for p in (image.labels, image.objects, image.faces)] == [UNAVAILABLE] * 3
    assert (image.width, image.height) == (0, 0)
    search = await stub.SemanticSearch(pb.SemanticSearchRequest(collections=["a", "b"], query="q"), timeout=20)
    assert [(s.collection, s.status.code) for s in search.collection_statuses] == [
        ("a", UNAVAILABLE),
        ("b", UNAVAILABLE),
    ]
    assert not search.hits
    # One write to one collection: the backend's failure is the call's.
    with pytest.raises(grpc.aio.AioRpcError) as down:
        await stub.IndexDocuments(
            pb.IndexDocumentsRequest(collection="a", documents=[embeddings_pb2.Document(id="1", text="t")]), timeout=20
        )
    assert down.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_hung_backend_parts_end_before_the_callers_deadline(hung_address: str) -> None:
    async with (
        running_gateway(nlp_address=hung_address, vision_address=hung_address, embeddings_address=hung_address) as gw,
        grpc.aio.insecure_channel(f"127.0.0.1:{gw.port}") as channel,
    ):
        stub = pb_grpc.GatewayServiceStub(channel)
        # The caller's deadline: the call still answers OK (before it), each part DEADLINE_EXCEEDED.
        text = await stub.AnalyzeText(pb.AnalyzeTextRequest(text="Hello.", features=ALL_TEXT[:2]), timeout=3)
        assert [text.language.status.code, text.sentiment.status.code] == [DEADLINE_EXCEEDED] * 2
        # part_timeout_ms well inside a long deadline.
        image = await stub.AnnotateImage(
            pb.AnnotateImageRequest(image=IMAGE, features=ALL_IMAGE, part_timeout_ms=500), timeout=60
        )
        assert [p.status.code for p in (image.labels, image.objects, image.faces)] == [DEADLINE_EXCEEDED] * 3
        search = await stub.SemanticSearch(
            pb.SemanticSearchRequest(collections=["a"], query="q", filter=struct_pb2.Struct()), timeout=2
        )
        assert search.collection_statuses[0].status.code == DEADLINE_EXCEEDED
        # A forwarded call carries the caller's deadline to the backend.
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await embeddings_pb2_grpc.EmbeddingServiceStub(channel).Embed(
                embeddings_pb2.EmbedRequest(texts=["x"]), timeout=1
            )
        assert late.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
