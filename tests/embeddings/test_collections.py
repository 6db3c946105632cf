"""Collections through a real service: search against brute force with the same model in process."""

from __future__ import annotations

import math

import grpc
import grpc.aio
import numpy as np
import pytest
from google.protobuf import struct_pb2
from google.rpc import code_pb2

from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2 as pb
from lumen.embeddings.v1 import embeddings_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow

DOCS = {
    "cat": ("The cat sleeps on the warm windowsill.", {"topic": "animals", "year": 2021, "public": True}),
    "dog": ("Dogs love long walks in the park.", {"topic": "animals", "year": 2020, "public": False}),
    "fox": ("A quick brown fox jumps over the lazy dog.", {"topic": "animals", "year": 2020, "public": True}),
    "stocks": ("Stock markets fell sharply on Monday.", {"topic": "finance", "year": 2020, "public": True}),
    "rates": ("The central bank raised interest rates again.", {"topic": "finance", "year": 2021, "public": True}),
    "bonds": ("Bond yields climbed as inflation worries grew.", {"topic": "finance", "year": 2020, "public": False}),
    "grpc": ("gRPC uses HTTP/2 for transport.", {"topic": "tech", "year": 2021, "public": True}),
    "rust": ("Rust guarantees memory safety without a garbage collector.", {"topic": "tech", "year": 2020}),
    "paris": ("Il pleut beaucoup à Paris en novembre.", {"topic": "travel", "year": 2021, "public": True}),
    "alps": ("Hiking in the Alps is best in late summer.", {"topic": "travel", "year": 2020, "public": True}),
}
QUERIES = ["pets and animals", "what happened to the economy", "programming languages", "holidays in the mountains"]


def struct(values: dict) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


def documents(items: dict) -> list[pb.Document]:
    return [pb.Document(id=i, text=t, metadata=struct(m)) for i, (t, m) in items.items()]


def collections(channel: grpc.aio.Channel) -> pb_grpc.CollectionServiceStub:
    return pb_grpc.CollectionServiceStub(channel)


def brute_force(reference_model, query: str, items: dict, k: int) -> list[tuple[str, float]]:
    ids = list(items)
    matrix = reference_model.encode([items[i][0] for i in ids], normalize_embeddings=True)
    scores = matrix @ reference_model.encode([query], normalize_embeddings=True)[0]
    order = np.argsort(-scores, kind="stable")[:k]
    return [(ids[i], float(scores[i])) for i in order]


@pytest.fixture(scope="module")
async def corpus(embeddings_channel) -> str:
    """A collection holding DOCS, created once for the module."""
    stub = collections(embeddings_channel)
    await stub.CreateCollection(pb.CreateCollectionRequest(name="corpus"))
    response = await stub.UpsertDocuments(pb.UpsertDocumentsRequest(collection="corpus", documents=documents(DOCS)))
    assert [s.code for s in response.statuses] == [code_pb2.OK] * len(DOCS)
    assert response.upserted == len(DOCS) and response.usage.input_tokens > 0
    return "corpus"


async def test_create_get_list_and_delete(embeddings_channel) -> None:
    stub = collections(embeddings_channel)
    created = await stub.CreateCollection(pb.CreateCollectionRequest(name="lifecycle"))
    assert created.collection.model == "all-minilm-l6-v2"
    assert created.collection.dimension == 384
    assert created.collection.index == "exact"
    got = await stub.GetCollection(pb.GetCollectionRequest(name="lifecycle"))
    assert got.collection == created.collection
    listed = await stub.ListCollections(pb.ListCollectionsRequest())
    names = [c.name for c in listed.collections]
    assert "lifecycle" in names and names == sorted(names)
    await stub.DeleteCollection(pb.DeleteCollectionRequest(name="lifecycle"))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.GetCollection(pb.GetCollectionRequest(name="lifecycle"))
    assert error.value.code() is grpc.StatusCode.NOT_FOUND
    again = await stub.CreateCollection(pb.CreateCollectionRequest(name="lifecycle"))  # the name is free again
    assert again.collection.document_count == 0
    await stub.DeleteCollection(pb.DeleteCollectionRequest(name="lifecycle"))


@pytest.mark.parametrize("query", QUERIES)
async def test_text_search_equals_brute_force(embeddings_channel, reference_model, corpus, query) -> None:
    response = await collections(embeddings_channel).Search(pb.SearchRequest(collection=corpus, text=query, top_k=4))
    want = brute_force(reference_model, query, DOCS, 4)
    assert [h.id for h in response.hits] == [i for i, _ in want]
    assert np.allclose([h.score for h in response.hits], [s for _, s in want], atol=1e-4)
    assert response.usage.input_tokens > 0


async def test_vector_search_equals_brute_force_and_returns_documents(
    embeddings_channel, reference_model, corpus
) -> None:
    query = reference_model.encode(["money and banks"])[0] * 3.0  # any length: the service normalises
    response = await collections(embeddings_channel).Search(
        pb.SearchRequest(
            collection=corpus,
            vector=common_pb2.Vector(values_f32=query.astype("<f4").tobytes()),
            top_k=100,
            include_documents=True,
        )
    )
    want = brute_force(reference_model, "money and banks", DOCS, len(DOCS))
    assert [h.id for h in response.hits] == [i for i, _ in want]  # top_k above the size: every document
    top = response.hits[0]
    assert top.document.text == DOCS[top.id][0]
    assert dict(top.document.metadata) == pytest.approx(DOCS[top.id][1])


@pytest.mark.parametrize(
    "where",
    [{"topic": "finance"}, {"year": 2020, "public": True}, {"topic": "tech", "public": True}, {"year": "2020"}],
    ids=["string", "number-and-bool", "two-keys", "string-is-not-number"],
)
async def test_filtered_search_equals_brute_force_on_matching_documents(
    embeddings_channel, reference_model, corpus, where
) -> None:
    response = await collections(embeddings_channel).Search(
        pb.SearchRequest(collection=corpus, text="news", top_k=10, filter=struct(where))
    )
    matching = {
        i: d
        for i, d in DOCS.items()
        if all(k in d[1] and d[1][k] == v and type(d[1][k]) is type(v) for k, v in where.items())
    }
    want = brute_force(reference_model, "news", matching, 10) if matching else []
    assert [h.id for h in response.hits] == [i for i, _ in want]


async def test_upsert_replaces_and_delete_removes(embeddings_channel, reference_model) -> None:
    stub = collections(embeddings_channel)
    await stub.CreateCollection(pb.CreateCollectionRequest(name="edits"))
    await stub.UpsertDocuments(pb.UpsertDocumentsRequest(collection="edits", documents=documents(DOCS)))
    replaced = await stub.UpsertDocuments(
        pb.UpsertDocumentsRequest(
            collection="edits",
            documents=[pb.Document(id="cat", text="Volcanoes erupt molten lava.", metadata=struct({"topic": "geo"}))],
        )
    )
    assert replaced.upserted == 1
    info = await stub.GetCollection(pb.GetCollectionRequest(name="edits"))
    assert info.collection.document_count == len(DOCS)
    hits = await stub.Search(pb.SearchRequest(collection="edits", text="lava from a volcano", top_k=1))
    assert hits.hits[0].id == "cat"
    finance = await stub.Search(
        pb.SearchRequest(collection="edits", text="x", top_k=10, filter=struct({"topic": "geo"}))
    )
    assert [h.id for h in finance.hits] == ["cat"]
    deleted = await stub.DeleteDocuments(pb.DeleteDocumentsRequest(collection="edits", ids=["cat", "dog", "nope"]))
    assert deleted.deleted == 2
    remaining = {i: d for i, d in DOCS.items() if i not in ("cat", "dog")}
    response = await stub.Search(pb.SearchRequest(collection="edits", text="animals", top_k=20))
    assert [h.id for h in response.hits] == [i for i, _ in brute_force(reference_model, "animals", remaining, 20)]
    await stub.DeleteCollection(pb.DeleteCollectionRequest(name="edits"))


async def test_a_bad_document_gets_its_own_status_and_the_others_are_stored(embeddings_channel) -> None:
    stub = collections(embeddings_channel)
    await stub.CreateCollection(pb.CreateCollectionRequest(name="mixed"))
    nan = [0.1] * 384
    nan[1] = math.nan
    response = await stub.UpsertDocuments(
        pb.UpsertDocumentsRequest(
            collection="mixed",
            documents=[
                pb.Document(id="good", text="a fine document"),
                pb.Document(id="no-text", text="  "),
                pb.Document(id="short", vector=common_pb2.Vector(values=[0.5] * 3)),
                pb.Document(id="nan", vector=common_pb2.Vector(values=nan)),
                pb.Document(id="list", text="x", metadata=struct({"tags": ["a", "b"]})),
                pb.Document(id="", text="no id"),
                pb.Document(id="huge", text="x" * 8193),
                pb.Document(id="by-vector", vector=common_pb2.Vector(values=[0.1] * 384)),
            ],
        )
    )
    fields = [
        "",
        "documents[1].text",
        "documents[2].vector",
        "documents[3].vector.values[1]",
        "documents[4].metadata.tags",
        "documents[5].id",
        "documents[6].text",
        "",
    ]
    for status, field in zip(response.statuses, fields, strict=True):
        if field:
            assert status.code == code_pb2.INVALID_ARGUMENT
            assert field in status.message
        else:
            assert status.code == code_pb2.OK
    assert response.upserted == 2
    info = await stub.GetCollection(pb.GetCollectionRequest(name="mixed"))
    assert info.collection.document_count == 2
    await stub.DeleteCollection(pb.DeleteCollectionRequest(name="mixed"))


def _vector(values: list[float]) -> common_pb2.Vector:
    return common_pb2.Vector(values=values)


BAD_REQUESTS = [
    ("CreateCollection", pb.CreateCollectionRequest(name=""), grpc.StatusCode.INVALID_ARGUMENT, "name"),
    ("CreateCollection", pb.CreateCollectionRequest(name="Bad Name!"), grpc.StatusCode.INVALID_ARGUMENT, "name"),
    ("CreateCollection", pb.CreateCollectionRequest(name="corpus"), grpc.StatusCode.ALREADY_EXISTS, "corpus"),
    (
        "CreateCollection",
        pb.CreateCollectionRequest(name="other", model=common_pb2.ModelRef(name="no-such-model")),
        grpc.StatusCode.NOT_FOUND,
        "model.name",
    ),
    ("GetCollection", pb.GetCollectionRequest(name="missing"), grpc.StatusCode.NOT_FOUND, "missing"),
    ("DeleteCollection", pb.DeleteCollectionRequest(name="missing"), grpc.StatusCode.NOT_FOUND, "missing"),
    (
        "UpsertDocuments",
        pb.UpsertDocumentsRequest(collection="missing", documents=[pb.Document(id="a", text="b")]),
        grpc.StatusCode.NOT_FOUND,
        "collection",
    ),
    ("UpsertDocuments", pb.UpsertDocumentsRequest(collection="corpus"), grpc.StatusCode.INVALID_ARGUMENT, "documents"),
    (
        "UpsertDocuments",
        pb.UpsertDocumentsRequest(
            collection="corpus", documents=[pb.Document(id=str(i), text="t") for i in range(257)]
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "documents",
    ),
    (  # the texts to embed, together, past max_call_chars (16,384): bounds the call's cost
        "UpsertDocuments",
        pb.UpsertDocumentsRequest(
            collection="corpus", documents=[pb.Document(id=str(i), text="t" * 8000) for i in range(3)]
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "documents",
    ),
    ("DeleteDocuments", pb.DeleteDocumentsRequest(collection="corpus"), grpc.StatusCode.INVALID_ARGUMENT, "ids"),
    (
        "DeleteDocuments",
        pb.DeleteDocumentsRequest(collection="missing", ids=["a"]),
        grpc.StatusCode.NOT_FOUND,
        "missing",
    ),
    ("Search", pb.SearchRequest(collection="missing", text="q", top_k=1), grpc.StatusCode.NOT_FOUND, "missing"),
    ("Search", pb.SearchRequest(collection="corpus", top_k=1), grpc.StatusCode.INVALID_ARGUMENT, "query"),
    ("Search", pb.SearchRequest(collection="corpus", text="", top_k=1), grpc.StatusCode.INVALID_ARGUMENT, "text"),
    (
        "Search",
        pb.SearchRequest(collection="corpus", text="x" * 8193, top_k=1),
        grpc.StatusCode.INVALID_ARGUMENT,
        "text",
    ),
    ("Search", pb.SearchRequest(collection="corpus", text="q", top_k=0), grpc.StatusCode.INVALID_ARGUMENT, "top_k"),
    ("Search", pb.SearchRequest(collection="corpus", text="q", top_k=10**9), grpc.StatusCode.INVALID_ARGUMENT, "top_k"),
    (
        "Search",
        pb.SearchRequest(collection="corpus", vector=_vector([0.1] * 10), top_k=1),
        grpc.StatusCode.INVALID_ARGUMENT,
        "dimension is 384",
    ),
    (
        "Search",
        pb.SearchRequest(collection="corpus", vector=_vector([math.nan] + [0.1] * 383), top_k=1),
        grpc.StatusCode.INVALID_ARGUMENT,
        "vector.values[0]",
    ),
    (
        "Search",
        pb.SearchRequest(collection="corpus", vector=_vector([math.inf] + [0.1] * 383), top_k=1),
        grpc.StatusCode.INVALID_ARGUMENT,
        "vector.values[0]",
    ),
    (
        "Search",
        pb.SearchRequest(collection="corpus", vector=common_pb2.Vector(values_f32=b"12345"), top_k=1),
        grpc.StatusCode.INVALID_ARGUMENT,
        "vector.values_f32",
    ),
    (
        "Search",
        pb.SearchRequest(collection="corpus", vector=_vector([0.0] * 384), top_k=1),
        grpc.StatusCode.INVALID_ARGUMENT,
        "all zeros",
    ),
    (
        "Search",
        pb.SearchRequest(collection="corpus", text="q", top_k=1, filter=struct({"colour": "red"})),
        grpc.StatusCode.INVALID_ARGUMENT,
        "filter.colour",
    ),
    (
        "Search",
        pb.SearchRequest(collection="corpus", text="q", top_k=1, filter=struct({"topic": ["a"]})),
        grpc.StatusCode.INVALID_ARGUMENT,
        "filter.topic",
    ),
]


async def test_metadata_past_its_byte_bound_is_resource_exhausted_for_that_document(embeddings_channel) -> None:
    stub = collections(embeddings_channel)
    await stub.CreateCollection(pb.CreateCollectionRequest(name="heavy"))
    big = struct({f"k{i}": "x" * 8000 for i in range(3)})  # each value allowed, 24 kB together (bound: 16 KiB)
    response = await stub.UpsertDocuments(
        pb.UpsertDocumentsRequest(
            collection="heavy",
            documents=[pb.Document(id="big", text="t", metadata=big), pb.Document(id="ok", text="t")],
        )
    )
    assert [s.code for s in response.statuses] == [code_pb2.RESOURCE_EXHAUSTED, code_pb2.OK]
    assert "documents[0].metadata" in response.statuses[0].message and response.upserted == 1
    await stub.DeleteCollection(pb.DeleteCollectionRequest(name="heavy"))


@pytest.mark.parametrize(
    ("method", "request_", "code", "field"), BAD_REQUESTS, ids=[f"{m}-{i}" for i, (m, *_) in enumerate(BAD_REQUESTS)]
)
async def test_bad_input_gets_a_clear_status_and_service_keeps_serving(
    embeddings_channel, corpus, method, request_, code, field
) -> None:
    stub = collections(embeddings_channel)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await getattr(stub, method)(request_)
    assert error.value.code() is code
    assert field in error.value.details()
    ok = await stub.Search(pb.SearchRequest(collection=corpus, text="still serving", top_k=1))
    assert len(ok.hits) == 1


async def test_list_collections_pages_by_name_through_a_write_between_pages(embeddings_channel) -> None:
    stub = collections(embeddings_channel)
    names = [f"paged-{i}" for i in range(5)]
    for name in names:
        await stub.CreateCollection(pb.CreateCollectionRequest(name=name))
    try:
        first = await stub.ListCollections(pb.ListCollectionsRequest(page_size=2))
        assert len(first.collections) == 2 and first.next_page_token
        # A collection created between pages, before the token's place, neither repeats nor shifts the rest.
        await stub.CreateCollection(pb.CreateCollectionRequest(name="a-paged"))
        names.append("a-paged")
        seen = [c.name for c in first.collections]
        token = first.next_page_token
        while token:
            page = await stub.ListCollections(pb.ListCollectionsRequest(page_size=2, page_token=token))
            seen.extend(c.name for c in page.collections)
            token = page.next_page_token
        everything = await stub.ListCollections(pb.ListCollectionsRequest(page_size=1000))
        assert seen == sorted(seen) and len(seen) == len(set(seen))
        assert set(seen) == {c.name for c in everything.collections} - {"a-paged"}
        for bad, field in (
            (pb.ListCollectionsRequest(page_size=-1), "page_size"),
            (pb.ListCollectionsRequest(page_token="not-a-token"), "page_token"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.ListCollections(bad)
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT and field in refused.value.details()
    finally:
        for name in names:
            await stub.DeleteCollection(pb.DeleteCollectionRequest(name=name))
