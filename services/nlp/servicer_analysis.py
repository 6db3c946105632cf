"""lumen.nlp.v1.TextAnalysisService: protos in, one await on TextAnalysis, protos out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from lumen.common.v1 import common_pb2
from lumen.nlp.v1 import nlp_pb2 as pb
from lumen.nlp.v1 import nlp_pb2_grpc as pb_grpc
from services.nlp.analysis import Answer, Ranked, SentimentResult, TextAnalysis
from services.nlp.convert import AGGREGATION, SENTIMENT
from services.nlp.runtime_hf_entities import Tagged
from shared.errors import InvalidArgument
from shared.repository_servicer import model_info
from shared.results import item_messages

T = TypeVar("T")
R = TypeVar("R")  # a response message


def _labels(ranked: Ranked) -> dict[str, list[pb.ScoredLabel]]:
    return {"labels": [pb.ScoredLabel(label=k, score=v) for k, v in ranked]}


def _sentiment(r: SentimentResult) -> dict[str, Any]:
    return {
        "score": r.polarity.score,
        "label": SENTIMENT[r.polarity.label],
        "class_scores": _labels(r.classes)["labels"],
    }


def _languages(ranked: Ranked) -> dict[str, list[pb.LanguageScore]]:
    return {"languages": [pb.LanguageScore(language_code=c, confidence=p) for c, p in ranked]}


def _entities(tagged: Tagged) -> dict[str, list[pb.Entity]]:
    return {
        "entities": [
            pb.Entity(text=e.text, start_char=e.start, end_char=e.end, label=e.label, score=e.score)
            for e in tagged.entities
        ]
    }


def _response(
    kind: Callable[..., R], answer: Answer[T], message: Callable[..., Any], fields: Callable[[T], Any], service: str
) -> R:
    """A per-text RPC's response: one result per text, the model that ran, the tokens it read."""
    return kind(
        results=item_messages(answer.results, message, fields),
        model=model_info(answer.entry, service),
        usage=common_pb2.Usage(input_tokens=answer.tokens),
    )


class TextAnalysisServicer(pb_grpc.TextAnalysisServiceServicer):
    def __init__(self, analysis: TextAnalysis, service: str) -> None:
        self.analysis = analysis
        self.service = service

    async def ClassifyText(
        self, request: pb.ClassifyTextRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyTextResponse:
        model = request.model
        answer = await self.analysis.classify(list(request.texts), model.name, model.version, request.top_k)
        return _response(pb.ClassifyTextResponse, answer, pb.TextClassification, _labels, self.service)

    async def ClassifyZeroShot(
        self, request: pb.ClassifyZeroShotRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyZeroShotResponse:
        texts, labels, model = list(request.texts), list(request.candidate_labels), request.model
        answer = await self.analysis.zero_shot(
            texts, labels, model.name, model.version, request.hypothesis_template, request.multi_label, request.top_k
        )
        return _response(pb.ClassifyZeroShotResponse, answer, pb.ZeroShotClassification, _labels, self.service)

    async def AnalyzeSentiment(
        self, request: pb.AnalyzeSentimentRequest, context: grpc.aio.ServicerContext
    ) -> pb.AnalyzeSentimentResponse:
        answer = await self.analysis.sentiment(list(request.texts), request.model.name, request.model.version)
        return _response(pb.AnalyzeSentimentResponse, answer, pb.Sentiment, _sentiment, self.service)

    async def DetectLanguage(
        self, request: pb.DetectLanguageRequest, context: grpc.aio.ServicerContext
    ) -> pb.DetectLanguageResponse:
        texts, languages, model = list(request.texts), list(request.candidate_languages), request.model
        # reads no tokens: answer.tokens is 0
        answer = await self.analysis.languages(texts, model.name, model.version, request.top_k, languages)
        return _response(pb.DetectLanguageResponse, answer, pb.LanguageDetection, _languages, self.service)

    async def ExtractEntities(
        self, request: pb.ExtractEntitiesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExtractEntitiesResponse:
        strategy = AGGREGATION.get(request.aggregation)
        if strategy is None:
            raise InvalidArgument("aggregation", f"unknown aggregation {request.aggregation}")
        texts, model = list(request.texts), request.model
        answer = await self.analysis.entities(texts, model.name, model.version, strategy, request.min_score)
        return _response(pb.ExtractEntitiesResponse, answer, pb.EntityExtraction, _entities, self.service)
