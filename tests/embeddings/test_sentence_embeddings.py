"""Sentence embeddings through a real service, against sentence-transformers in process."""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio
import numpy as np
import pytest

from lumen.client import vectors_of
from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2 as pb
from lumen.embeddings.v1 import embeddings_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow

SENTENCES = [
    "The cat sits on the mat.",
    "A quick brown fox jumps over the lazy dog.",
    "Stock markets fell sharply on Monday.",
    "Il pleut beaucoup à Paris en novembre.",
    "gRPC uses HTTP/2 for transport.",
]


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


async def test_vectors_equal_in_process_sentence_transformers(embeddings_channel, reference_model) -> None:
    stub = pb_grpc.EmbeddingServiceStub(embeddings_channel)
    for encoding in (common_pb2.VECTOR_ENCODING_FLOAT, common_pb2.VECTOR_ENCODING_F32_BYTES):
        response = await stub.Embed(pb.EmbedRequest(texts=SENTENCES, encoding=encoding))
        got = vectors_of(response)
        want = reference_model.encode(SENTENCES)
        assert got.shape == (len(SENTENCES), 384)
        assert np.all(cosine(got, want) >= 0.9999)
    assert response.model.name == "all-minilm-l6-v2"
    assert response.model.device == "cpu"
    assert response.usage.input_tokens == sum(len(reference_model.tokenizer(s)["input_ids"]) for s in SENTENCES)


async def test_normalize_gives_unit_vectors(embeddings_channel) -> None:
    stub = pb_grpc.EmbeddingServiceStub(embeddings_channel)
    response = await stub.Embed(pb.EmbedRequest(texts=SENTENCES[:2], normalize=True))
    assert np.allclose(np.linalg.norm(vectors_of(response), axis=1), 1.0, atol=1e-5)


async def test_truncation_end_cuts_and_none_refuses(embeddings_channel, reference_model) -> None:
    stub = pb_grpc.EmbeddingServiceStub(embeddings_channel)
    long_text = " ".join(["serving"] * 400)  # > 256 tokens
    response = await stub.Embed(pb.EmbedRequest(texts=[long_text]))
    assert cosine(vectors_of(response), reference_model.encode([long_text]))[0] >= 0.9999
    assert response.usage.input_tokens == 256
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Embed(pb.EmbedRequest(texts=["short", long_text], truncation=pb.TRUNCATION_NONE))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "texts[1]" in refused.value.details()


@pytest.mark.parametrize(
    ("request_", "code", "field"),
    [
        (pb.EmbedRequest(), grpc.StatusCode.INVALID_ARGUMENT, "texts"),
        (pb.EmbedRequest(texts=["ok", ""]), grpc.StatusCode.INVALID_ARGUMENT, "texts[1]"),
        (pb.EmbedRequest(texts=["   "]), grpc.StatusCode.INVALID_ARGUMENT, "texts[0]"),
        (pb.EmbedRequest(texts=["x"] * 257), grpc.StatusCode.INVALID_ARGUMENT, "texts"),
        (pb.EmbedRequest(texts=["x" * 8193]), grpc.StatusCode.INVALID_ARGUMENT, "texts[0]"),
        (
            pb.EmbedRequest(texts=["x"], model=common_pb2.ModelRef(name="no-such-model")),
            grpc.StatusCode.NOT_FOUND,
            "no-such-model",
        ),
        (
            pb.EmbedRequest(texts=["x"], model=common_pb2.ModelRef(name="all-minilm-l6-v2", version="9")),
            grpc.StatusCode.NOT_FOUND,
            "model.version",
        ),
    ],
    ids=["no-texts", "empty-text", "blank-text", "too-many", "too-long", "unknown-model", "unknown-version"],
)
async def test_bad_input_gets_a_clear_status_and_service_keeps_serving(
    embeddings_channel, request_, code, field
) -> None:
    stub = pb_grpc.EmbeddingServiceStub(embeddings_channel)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Embed(request_)
    assert error.value.code() is code
    assert field in error.value.details()
    ok = await stub.Embed(pb.EmbedRequest(texts=["still serving"]))
    assert len(ok.embeddings) == 1


async def test_thousand_concurrent_calls_each_get_their_own_vector(embeddings_channel, reference_model) -> None:
    """1,000 distinct texts in 1,000 concurrent calls, merged by the batcher, each answered with its own vector."""
    stub = pb_grpc.EmbeddingServiceStub(embeddings_channel)
    texts = [f"request number {i} asks about {SENTENCES[i % len(SENTENCES)]}" for i in range(1000)]
    responses = await asyncio.gather(
        *(stub.Embed(pb.EmbedRequest(texts=[t], encoding=common_pb2.VECTOR_ENCODING_F32_BYTES)) for t in texts)
    )
    got = np.concatenate([vectors_of(r) for r in responses])
    want = reference_model.encode(texts, batch_size=64)
    assert np.all(cosine(got, want) >= 0.9999)


async def test_similarity_matches_cosine_of_reference(embeddings_channel, reference_model) -> None:
    stub = pb_grpc.EmbeddingServiceStub(embeddings_channel)
    response = await stub.Similarity(pb.SimilarityRequest(sources=SENTENCES[:2], candidates=SENTENCES))
    assert (response.rows, response.columns) == (2, len(SENTENCES))
    ref = reference_model.encode(SENTENCES, normalize_embeddings=True)
    assert np.allclose(np.array(response.scores).reshape(2, -1), ref[:2] @ ref.T, atol=1e-4)
    pairwise = await stub.Similarity(
        pb.SimilarityRequest(sources=SENTENCES[:2], candidates=SENTENCES[:2], pairwise=True)
    )
    assert np.allclose(pairwise.scores, [1.0, 1.0], atol=1e-4)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Similarity(pb.SimilarityRequest(sources=SENTENCES[:2], candidates=SENTENCES[:3], pairwise=True))
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_embed_stream_answers_each_chunk_in_order(embeddings_channel, reference_model) -> None:
    stub = pb_grpc.EmbeddingServiceStub(embeddings_channel)
    chunks = [SENTENCES[:2], SENTENCES[2:], SENTENCES[:1]]

    async def requests():
        for chunk in chunks:
            yield pb.EmbedStreamRequest(texts=chunk)

    answers = [a async for a in stub.EmbedStream(requests())]
    assert [a.chunk_index for a in answers] == [0, 1, 2]
    assert [a.offset for a in answers] == [0, 2, 5]
    got = np.concatenate([vectors_of(a) for a in answers])
    assert np.all(cosine(got, reference_model.encode([t for c in chunks for t in c])) >= 0.9999)
