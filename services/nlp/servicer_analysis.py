"""lumen.nlp.v1.TextAnalysisService: protos in, one await on TextAnalysis, protos out."""

from __future__ import annotations

import grpc

from lumen.common.v1 import common_pb2
from lumen.nlp.v1 import nlp_pb2 as pb
from lumen.nlp.v1 import nlp_pb2_grpc as pb_grpc
from services.nlp.analysis import Ranked, TextAnalysis
from services.nlp.convert import AGGREGATION, SENTIMENT
from shared.errors import InvalidArgument
from shared.repository_servicer import model_info
from shared.results import item_messages


def _labels(ranked: Ranked) -> dict[str, list[pb.ScoredLabel]]:
    return {"labels": [pb.ScoredLabel(label=k, score=v) for k, v in ranked]}


class TextAnalysisServicer(pb_grpc.TextAnalysisServiceServicer):
    def __init__(self, analysis: TextAnalysis, service: str) -> None:
        self.analysis = analysis
        self.service = service

    async def ClassifyText(
        self, request: pb.ClassifyTextRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyTextResponse:
        answer = await self.analysis.classify(
            list(request.texts), request.model.name, request.model.version, request.top_k
        )
        return pb.ClassifyTextResponse(
            results=item_messages(answer.results, pb.TextClassification, _labels),
            model=model_info(answer.entry, self.service),
            usage=common_pb2.Usage(input_tokens=answer.tokens),
        )

    async def ClassifyZeroShot(
        self, request: pb.ClassifyZeroShotRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyZeroShotResponse:
        answer = await self.analysis.zero_shot(
            list(request.texts),
            list(request.candidate_labels),
            request.model.name,
            request.model.version,
            request.hypothesis_template,
            request.multi_label,
            request.top_k,
        )
        return pb.ClassifyZeroShotResponse(
            results=item_messages(answer.results, pb.ZeroShotClassification, _labels),
            model=model_info(answer.entry, self.service),
            usage=common_pb2.Usage(input_tokens=answer.tokens),
        )

    async def AnalyzeSentiment(
        self, request: pb.AnalyzeSentimentRequest, context: grpc.aio.ServicerContext
    ) -> pb.AnalyzeSentimentResponse:
        answer = await self.analysis.sentiment(list(request.texts), request.model.name, request.model.version)
        results = item_messages(
            answer.results,
            pb.Sentiment,
            lambda r: {
                "score": r.polarity.score,
                "label": SENTIMENT[r.polarity.label],
                "class_scores": _labels(r.classes)["labels"],
            },
        )
        return pb.AnalyzeSentimentResponse(
            results=results,
            model=model_info(answer.entry, self.service),
            usage=common_pb2.Usage(input_tokens=answer.tokens),
        )

    async def DetectLanguage(
        self, request: pb.DetectLanguageRequest, context: grpc.aio.ServicerContext
    ) -> pb.DetectLanguageResponse:
        answer = await self.analysis.languages(
            list(request.texts),
            request.model.name,
            request.model.version,
            request.top_k,
            list(request.candidate_languages),
        )
        return pb.DetectLanguageResponse(
            results=item_messages(
                answer.results,
                pb.LanguageDetection,
                lambda r: {"languages": [pb.LanguageScore(language_code=c, confidence=p) for c, p in r]},
            ),
            model=model_info(answer.entry, self.service),
            usage=common_pb2.Usage(input_tokens=0),
        )

    async def ExtractEntities(
        self, request: pb.ExtractEntitiesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExtractEntitiesResponse:
        strategy = AGGREGATION.get(request.aggregation)
        if strategy is None:
            raise InvalidArgument("aggregation", f"unknown aggregation {request.aggregation}")
        answer = await self.analysis.entities(
            list(request.texts), request.model.name, request.model.version, strategy, request.min_score
        )
        results = item_messages(
            answer.results,
            pb.EntityExtraction,
            lambda r: {
                "entities": [
                    pb.Entity(text=e.text, start_char=e.start, end_char=e.end, label=e.label, score=e.score)
                    for e in r.entities
                ]
            },
        )
        return pb.ExtractEntitiesResponse(
            results=results,
            model=model_info(answer.entry, self.service),
            usage=common_pb2.Usage(input_tokens=answer.tokens),
        )
