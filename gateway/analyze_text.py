"""GatewayService.AnalyzeText: nlp's analyses and an embedding of one text, in parallel.

Each feature is one backend call with the text as a batch of one (a spec run by
gateway.composite); the backend's per-text status (about "texts[0]") is
restated as the part's status about "text".
"""

from __future__ import annotations

from typing import Any

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


FEATURES = {
    pb.TEXT_FEATURE_TYPE_LANGUAGE: Feature(
        "language",
        pb.LanguagePart,
        "nlp",
        NLP,
        "DetectLanguage",
        lambda r, f: nlp_pb2.DetectLanguageRequest(model=f.model, texts=[r.text], top_k=f.max_results),
        lambda result, f: {"languages": result.languages},
        max_results=10,
    ),
    pb.TEXT_FEATURE_TYPE_SENTIMENT: Feature(
        "sentiment",
        pb.SentimentPart,
        "nlp",
        NLP,
        "AnalyzeSentiment",
        lambda r, f: nlp_pb2.AnalyzeSentimentRequest(model=f.model, texts=[r.text]),
        lambda result, f: {"score": result.score, "label": result.label, "class_scores": result.class_scores},
    ),
    pb.TEXT_FEATURE_TYPE_CLASSIFICATION: Feature(
        "classification",
        pb.ClassificationPart,
        "nlp",
        NLP,
        "ClassifyText",
        lambda r, f: nlp_pb2.ClassifyTextRequest(model=f.model, texts=[r.text], top_k=f.max_results),
        lambda result, f: {"labels": result.labels},
        max_results=1_000,
    ),
    pb.TEXT_FEATURE_TYPE_ENTITIES: Feature(
        "entities",
        pb.EntitiesPart,
        "nlp",
        NLP,
        "ExtractEntities",
        lambda r, f: nlp_pb2.ExtractEntitiesRequest(model=f.model, texts=[r.text]),
        _best_entities,
        max_results=10_000,
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
