"""GatewayService.IndexDocuments and SemanticSearch: embeddings collections, plus nlp language detection.

IndexDocuments is one write to one collection, so a backend failure fails the
call (with the backend's code); only the optional language detection may fail
on its own (documents are then stored without the "language" key); asking for
it with a key that may not use nlp fails the call with PERMISSION_DENIED
rather than silently storing no language.
SemanticSearch searches each collection as a part: a collection that is
missing or slow is reported in its own status while the others' hits are
merged.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Coroutine
from typing import Any

import grpc
import grpc.aio
from google.rpc import code_pb2, status_pb2

from gateway.fanout import OK, BackendError, backend_call, check_part_timeout, run_parts, status_of
from gateway.limits import add_usage
from gateway.scope import Scope
from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2 as epb
from lumen.embeddings.v1 import embeddings_pb2_grpc as epb_grpc
from lumen.gateway.v1 import gateway_pb2 as pb
from lumen.nlp.v1 import nlp_pb2, nlp_pb2_grpc
from shared.errors import InvalidArgument, NotFound

log = logging.getLogger(__name__)

MAX_DOCUMENTS = 256
MAX_COLLECTIONS = 16
MAX_QUERY_CHARS = 8_192
MAX_TOP_K = 1_000
DEFAULT_TOP_K = 10
LANGUAGE_KEY = "language"


def _collections(scope: Scope) -> epb_grpc.CollectionServiceAsyncStub:
    return epb_grpc.CollectionServiceStub(scope.channel("embeddings"))


async def _ensure_collection(scope: Scope, request: pb.IndexDocumentsRequest) -> tuple[epb.Collection, bool]:
    """The collection, created when missing and asked to; True when this call created it."""
    stub = _collections(scope)
    lookup = epb.GetCollectionRequest(name=request.collection)
    try:
        reply = await stub.GetCollection(lookup, timeout=scope.budget.left(), metadata=scope.metadata)
        return reply.collection, False
    except grpc.aio.AioRpcError as exc:
        if exc.code() is not grpc.StatusCode.NOT_FOUND:
            raise BackendError(status_of(exc)) from None
    if not request.create_if_missing:
        raise NotFound("collection", request.collection, "collection")
    try:
        created = await stub.CreateCollection(
            epb.CreateCollectionRequest(name=request.collection, model=request.model),
            timeout=scope.budget.left(),
            metadata=scope.metadata,
        )
        return created.collection, True
    except grpc.aio.AioRpcError as exc:
        if exc.code() is not grpc.StatusCode.ALREADY_EXISTS:
            raise BackendError(status_of(exc)) from None
    # Another caller created it meanwhile: use theirs.
    again = await backend_call(stub.GetCollection(lookup, timeout=scope.budget.left(), metadata=scope.metadata))
    return again.collection, False


async def _detect_languages(scope: Scope, documents: list[epb.Document]) -> tuple[list[str], common_pb2.Usage]:
    """ISO 639-1 code per document ("" where unknown). Never fails: a failed detection stores no key."""
    indexes = [i for i, doc in enumerate(documents) if doc.text]
    codes = [""] * len(documents)
    if not indexes:
        return codes, common_pb2.Usage()
    try:
        stub = nlp_pb2_grpc.TextAnalysisServiceStub(scope.channel("nlp"))
        # At most half of what is left: the write must still fit before the deadline.
        reply = await stub.DetectLanguage(
            nlp_pb2.DetectLanguageRequest(texts=[documents[i].text for i in indexes], top_k=1),
            timeout=scope.budget.left() / 2,
            metadata=scope.metadata,
        )
    except Exception as exc:  # any failure (down, slow, refused) means "no language key"
        log.info("language detection failed, documents stored without it: %s", status_of(exc).message)
        return codes, common_pb2.Usage()
    for i, result in zip(indexes, reply.results, strict=False):
        if result.status.code == code_pb2.OK and result.languages:
            codes[i] = result.languages[0].language_code
    return codes, reply.usage


def validate_index(request: pb.IndexDocumentsRequest) -> None:
    if not request.collection:
        raise InvalidArgument("collection", "is required")
    if not 1 <= len(request.documents) <= MAX_DOCUMENTS:
        raise InvalidArgument("documents", f"must hold 1 to {MAX_DOCUMENTS} documents, got {len(request.documents)}")


async def index_documents(scope: Scope, request: pb.IndexDocumentsRequest) -> pb.IndexDocumentsResponse:
    validate_index(request)
    scope.require("embeddings")
    if request.detect_language:
        scope.require("nlp")
    documents = [epb.Document() for _ in request.documents]
    for mine, theirs in zip(documents, request.documents, strict=True):
        mine.CopyFrom(theirs)
    usage = common_pb2.Usage()
    if request.detect_language:
        (collection, created), (codes, detected) = await asyncio.gather(
            _ensure_collection(scope, request), _detect_languages(scope, documents)
        )
        add_usage(usage, detected)
        for doc, code in zip(documents, codes, strict=True):
            # A language the caller set is theirs to keep.
            if code and LANGUAGE_KEY not in doc.metadata.fields:
                doc.metadata.fields[LANGUAGE_KEY].string_value = code
    else:
        collection, created = await _ensure_collection(scope, request)
    stub = _collections(scope)
    written = await backend_call(
        stub.UpsertDocuments(
            epb.UpsertDocumentsRequest(collection=collection.name, documents=documents),
            timeout=scope.budget.left(),
            metadata=scope.metadata,
        )
    )
    add_usage(usage, written.usage)
    after = await backend_call(
        stub.GetCollection(
            epb.GetCollectionRequest(name=collection.name), timeout=scope.budget.left(), metadata=scope.metadata
        )
    )
    return pb.IndexDocumentsResponse(
        statuses=written.statuses, indexed=written.upserted, created=created, collection=after.collection, usage=usage
    )


def validate_search(request: pb.SemanticSearchRequest) -> None:
    if not 1 <= len(request.collections) <= MAX_COLLECTIONS:
        raise InvalidArgument("collections", f"must name 1 to {MAX_COLLECTIONS} collections")
    for i, name in enumerate(request.collections):
        if not name:
            raise InvalidArgument(f"collections[{i}]", "must not be empty")
        if name in request.collections[:i]:
            raise InvalidArgument(f"collections[{i}]", f"repeats {name!r}")
    if not request.query:
        raise InvalidArgument("query", "must not be empty")
    if len(request.query) > MAX_QUERY_CHARS:
        raise InvalidArgument("query", f"has {len(request.query)} characters; at most {MAX_QUERY_CHARS}")
    if request.top_k > MAX_TOP_K:
        raise InvalidArgument("top_k", f"must be 0 (default {DEFAULT_TOP_K}) to {MAX_TOP_K}, got {request.top_k}")
    if request.HasField("min_score") and not (math.isfinite(request.min_score) and -1.0 <= request.min_score <= 1.0):
        raise InvalidArgument("min_score", f"must be in [-1, 1], got {request.min_score}")
    check_part_timeout(request.part_timeout_ms)


async def semantic_search(scope: Scope, request: pb.SemanticSearchRequest) -> pb.SemanticSearchResponse:
    validate_search(request)
    scope.require("embeddings")
    stub = _collections(scope)
    top_k = request.top_k or DEFAULT_TOP_K

    def part(name: str) -> Callable[[float], Coroutine[Any, Any, epb.SearchResponse]]:
        query = epb.SearchRequest(
            collection=name,
            text=request.query,
            top_k=top_k,
            filter=request.filter,
            include_documents=request.include_documents,
        )

        async def search(timeout_s: float) -> epb.SearchResponse:
            return await stub.Search(query, timeout=timeout_s, metadata=scope.metadata)

        return search

    results = await run_parts({name: part(name) for name in request.collections}, scope.budget)
    response = pb.SemanticSearchResponse()
    hits: list[tuple[float, int, pb.SemanticSearchHit]] = []
    counted: set[str] = set()
    for order, name in enumerate(request.collections):
        result = results[name]
        if isinstance(result, status_pb2.Status):
            response.collection_statuses.add(collection=name, status=result)
            continue
        found = result
        response.collection_statuses.add(collection=name, status=OK)
        if found.model.name not in counted:  # the query is embedded once per model
            counted.add(found.model.name)
            add_usage(response.usage, found.usage)
        for hit in found.hits:
            if not request.HasField("min_score") or hit.score >= request.min_score:
                hits.append((hit.score, order, pb.SemanticSearchHit(collection=name, hit=hit)))
    # Best first; equal scores keep request order of their collections.
    hits.sort(key=lambda item: (-item[0], item[1]))
    response.hits.extend(hit for _, _, hit in hits[:top_k])
    response.usage.SetInParent()
    return response
