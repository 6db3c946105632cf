"""GatewayService.AnalyzeText: nlp's analyses and an embedding of one text, in parallel.

Each feature is one backend call with the text as a batch of one (a spec run by
gateway.composite); the backend's per-text status (about "texts[0]") is
restated as the part's status about "text".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from google.protobuf.message import Message

from gateway.composite import Feature, check_features, run_features
from gateway.fanout import check_part_timeout
from gateway.scope import Scope
from lumen.embeddings.v1 import embeddings_pb2, embeddings_pb2_grpc
from lumen.gateway.v1 import gateway_pb2 as pb
from lumen.nlp.v1 import nlp_pb2, nlp_pb2_grpc
from shared.errors import InvalidArgument

MAX_TEXT_CHARS = 100_000
MAX_FEATURES = 5
NLP = nlp_pb2_grpc.TextAnalysisServiceStub


def _best_entities(result: Any, feature: pb.TextFeature) -> dict[str, Any]:
    entities = list(result.entities)
    if feature.max_results and len(entities) > feature.max_results:
        # ExtractEntities has no limit of its own: keep the best-scoring ones, in text order.
        best = sorted(entities, key=lambda e: -e.score)[: feature.max_results]
        entities = sorted(best, key=lambda e: (e.start_char, e.end_char))
    return {"entities": entities}


def _copy(*names: str) -> Callable[[Any, Any], dict[str, Any]]:
    """Part fields copied from the reply's one result."""
    return lambda result, feature: {name: getattr(result, name) for name in names}


def _nlp(
    field: str,
    part: type[Message],
    method: str,
    fields: Callable[[Any, Any], dict[str, Any]],
    top_k: int = 0,
    max_results: int = 0,
) -> Feature:
    """An nlp analysis of the text as a batch of one; with ``top_k`` (its largest) max_results is sent as top_k."""
    request_type = getattr(nlp_pb2, f"{method}Request")

    def request(r: pb.AnalyzeTextRequest, f: pb.TextFeature) -> Message:
        return cast(Message, request_type(model=f.model, texts=[r.text], **({"top_k": f.max_results} if top_k else {})))

    return Feature(field, part, "nlp", NLP, method, request, fields, max_results=top_k or max_results)


FEATURES = {
    pb.TEXT_FEATURE_TYPE_LANGUAGE: _nlp("language", pb.LanguagePart, "DetectLanguage", _copy("languages"), top_k=10),
    pb.TEXT_FEATURE_TYPE_SENTIMENT: _nlp(
        "sentiment", pb.SentimentPart, "AnalyzeSentiment", _copy("score", "label", "class_scores")
    ),
    pb.TEXT_FEATURE_TYPE_CLASSIFICATION: _nlp(
        "classification", pb.ClassificationPart, "ClassifyText", _copy("labels"), top_k=1_000
    ),
    # ExtractEntities has no top_k: the part keeps the best max_results.
    pb.TEXT_FEATURE_TYPE_ENTITIES: _nlp(
        "entities", pb.EntitiesPart, "ExtractEntities", _best_entities, max_results=10_000
    ),
    pb.TEXT_FEATURE_TYPE_EMBEDDING: Feature(
        "embedding",
        pb.EmbeddingPart,
        "embeddings",
        embeddings_pb2_grpc.EmbeddingServiceStub,
        "Embed",
        lambda r, f: embeddings_pb2.EmbedRequest(
            model=f.model, texts=[r.text], normalize=r.normalize_embedding, encoding=r.embedding_encoding
        ),
        lambda vector, f: {"embedding": vector},
        item=lambda reply: reply.embeddings[0],
    ),
}


def validate(request: pb.AnalyzeTextRequest) -> None:
    if not request.text:
        raise InvalidArgument("text", "must not be empty")
    if len(request.text) > MAX_TEXT_CHARS:
        raise InvalidArgument("text", f"has {len(request.text)} characters; at most {MAX_TEXT_CHARS}")
    check_features(request.features, FEATURES, MAX_FEATURES)
    check_part_timeout(request.part_timeout_ms)


async def analyze_text(scope: Scope, request: pb.AnalyzeTextRequest) -> pb.AnalyzeTextResponse:
    validate(request)
    response = pb.AnalyzeTextResponse()
    await run_features(scope, request, request.features, FEATURES, response, ("texts[0]", "text"))
    return response
