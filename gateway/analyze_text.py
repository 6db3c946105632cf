"""GatewayService.AnalyzeText: nlp's analyses and an embedding of one text, in parallel.

Each feature is one backend call with the text as a batch of one; the backend's
per-text status (about "texts[0]") is restated as the part's status about
"text".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.rpc import code_pb2

from gateway.fanout import OK, check_part_timeout, renamed, run_parts
from gateway.parts import check_features, fill_parts
from gateway.scope import Scope
from lumen.embeddings.v1 import embeddings_pb2, embeddings_pb2_grpc
from lumen.gateway.v1 import gateway_pb2 as pb
from lumen.nlp.v1 import nlp_pb2, nlp_pb2_grpc
from shared.errors import InvalidArgument

MAX_TEXT_CHARS = 100_000
MAX_FEATURES = 5


@dataclass(frozen=True)
class TextFeature:
    field: str  # AnalyzeTextResponse field holding the part
    part: type
    backend: str
    max_results: int  # largest max_results accepted; 0: the field is ignored
    run: Callable[[Scope, pb.AnalyzeTextRequest, pb.TextFeature, float], Any]


def _texts_status(result: Any) -> Any:
    return None if result.status.code == code_pb2.OK else renamed(result.status, "texts[0]", "text")


async def _ask_nlp(scope: Scope, rpc: str, request: Any, timeout_s: float) -> tuple[Any, Any, Any]:
    """One single-text TextAnalysisService call: (reply, its one result, that result's failure or None)."""
    stub = nlp_pb2_grpc.TextAnalysisServiceStub(scope.channel("nlp"))
    reply = await getattr(stub, rpc)(request, timeout=timeout_s, metadata=scope.metadata)
    result = reply.results[0]
    return reply, result, _texts_status(result)


async def _language(scope: Scope, request: pb.AnalyzeTextRequest, feature: pb.TextFeature, timeout_s: float):
    ask = nlp_pb2.DetectLanguageRequest(model=feature.model, texts=[request.text], top_k=feature.max_results)
    reply, result, failed = await _ask_nlp(scope, "DetectLanguage", ask, timeout_s)
    if failed:
        return pb.LanguagePart(status=failed), reply.usage
    return pb.LanguagePart(status=OK, languages=result.languages, model=reply.model), reply.usage


async def _sentiment(scope: Scope, request: pb.AnalyzeTextRequest, feature: pb.TextFeature, timeout_s: float):
    ask = nlp_pb2.AnalyzeSentimentRequest(model=feature.model, texts=[request.text])
    reply, result, failed = await _ask_nlp(scope, "AnalyzeSentiment", ask, timeout_s)
    if failed:
        return pb.SentimentPart(status=failed), reply.usage
    part = pb.SentimentPart(
        status=OK, score=result.score, label=result.label, class_scores=result.class_scores, model=reply.model
    )
    return part, reply.usage


async def _classification(scope: Scope, request: pb.AnalyzeTextRequest, feature: pb.TextFeature, timeout_s: float):
    ask = nlp_pb2.ClassifyTextRequest(model=feature.model, texts=[request.text], top_k=feature.max_results)
    reply, result, failed = await _ask_nlp(scope, "ClassifyText", ask, timeout_s)
    if failed:
        return pb.ClassificationPart(status=failed), reply.usage
    return pb.ClassificationPart(status=OK, labels=result.labels, model=reply.model), reply.usage


async def _entities(scope: Scope, request: pb.AnalyzeTextRequest, feature: pb.TextFeature, timeout_s: float):
    ask = nlp_pb2.ExtractEntitiesRequest(model=feature.model, texts=[request.text])
    reply, result, failed = await _ask_nlp(scope, "ExtractEntities", ask, timeout_s)
    if failed:
        return pb.EntitiesPart(status=failed), reply.usage
    entities = list(result.entities)
    if feature.max_results and len(entities) > feature.max_results:
        # ExtractEntities has no limit of its own: keep the best-scoring ones, in text order.
        best = sorted(entities, key=lambda e: -e.score)[: feature.max_results]
        entities = sorted(best, key=lambda e: (e.start_char, e.end_char))
    return pb.EntitiesPart(status=OK, entities=entities, model=reply.model), reply.usage


async def _embedding(scope: Scope, request: pb.AnalyzeTextRequest, feature: pb.TextFeature, timeout_s: float):
    stub = embeddings_pb2_grpc.EmbeddingServiceStub(scope.channel("embeddings"))
    reply = await stub.Embed(
        embeddings_pb2.EmbedRequest(
            model=feature.model,
            texts=[request.text],
            normalize=request.normalize_embedding,
            encoding=request.embedding_encoding,
        ),
        timeout=timeout_s,
        metadata=scope.metadata,
    )
    return pb.EmbeddingPart(status=OK, embedding=reply.embeddings[0], model=reply.model), reply.usage


FEATURES = {
    pb.TEXT_FEATURE_TYPE_LANGUAGE: TextFeature("language", pb.LanguagePart, "nlp", 10, _language),
    pb.TEXT_FEATURE_TYPE_SENTIMENT: TextFeature("sentiment", pb.SentimentPart, "nlp", 0, _sentiment),
    pb.TEXT_FEATURE_TYPE_CLASSIFICATION: TextFeature(
        "classification", pb.ClassificationPart, "nlp", 1_000, _classification
    ),
    pb.TEXT_FEATURE_TYPE_ENTITIES: TextFeature("entities", pb.EntitiesPart, "nlp", 10_000, _entities),
    pb.TEXT_FEATURE_TYPE_EMBEDDING: TextFeature("embedding", pb.EmbeddingPart, "embeddings", 0, _embedding),
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

    def part(feature: pb.TextFeature):
        spec = FEATURES[feature.type]
        return lambda timeout_s: spec.run(scope, request, feature, timeout_s)

    results = await run_parts(
        {FEATURES[f.type].field: part(f) for f in request.features}, scope.budget, ("texts[0]", "text")
    )
    response = pb.AnalyzeTextResponse()
    fill_parts(response, results, {spec.field: spec.part for spec in FEATURES.values()})
    return response
