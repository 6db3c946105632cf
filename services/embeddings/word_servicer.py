"""lumen.embeddings.v1.WordEmbeddingService: protos in, one call on WordVectors, protos out."""

from __future__ import annotations

import grpc

from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2 as pb
from lumen.embeddings.v1 import embeddings_pb2_grpc as pb_grpc
from services.embeddings.word_vectors import WordVectors
from shared.repository_servicer import model_info
from shared.vectors import to_proto


def words_read(count: int) -> common_pb2.Usage:
    """Word lookups bill one input token per word (the word model's unit), found or not."""
    return common_pb2.Usage(input_tokens=count)


class WordEmbeddingServicer(pb_grpc.WordEmbeddingServiceServicer):
    def __init__(self, words: WordVectors) -> None:
        self.words = words
        self.service = words.repository.service

    async def GetWordVectors(
        self, request: pb.GetWordVectorsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetWordVectorsResponse:
        lookup = self.words.vectors(list(request.words), request.model.name, request.model.version)
        return pb.GetWordVectorsResponse(
            vectors=[
                pb.WordVector(
                    word=word, status=r.status, **({"vector": to_proto(r.value, request.encoding)} if r.ok else {})
                )
                for word, r in zip(request.words, lookup.vectors, strict=True)
            ],
            model=model_info(lookup.entry, self.service),
            usage=words_read(len(request.words)),
        )

    async def MostSimilarWords(
        self, request: pb.MostSimilarWordsRequest, context: grpc.aio.ServicerContext
    ) -> pb.MostSimilarWordsResponse:
        neighbours, entry = await self.words.most_similar(
            list(request.positive), list(request.negative), request.top_k, request.model.name, request.model.version
        )
        return pb.MostSimilarWordsResponse(
            words=[pb.ScoredWord(word=w, score=s) for w, s in neighbours],
            model=model_info(entry, self.service),
            usage=words_read(len(request.positive) + len(request.negative)),
        )

    async def WordSimilarity(
        self, request: pb.WordSimilarityRequest, context: grpc.aio.ServicerContext
    ) -> pb.WordSimilarityResponse:
        score, entry = self.words.similarity(request.word_a, request.word_b, request.model.name, request.model.version)
        return pb.WordSimilarityResponse(score=score, model=model_info(entry, self.service), usage=words_read(2))
