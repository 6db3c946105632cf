"""lumen.embeddings.v1.EmbeddingService: protos in, one await on the Embedder, protos out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import grpc

from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2 as pb
from lumen.embeddings.v1 import embeddings_pb2_grpc as pb_grpc
from services.embeddings.embedder import Embedder, Embeddings
from shared.errors import InvalidArgument
from shared.repository_servicer import model_info
from shared.vectors import to_proto


def _truncate(truncation: int) -> bool:
    return truncation != pb.TRUNCATION_NONE


class EmbeddingServicer(pb_grpc.EmbeddingServiceServicer):
    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.service = embedder.repository.service

    async def _embed(
        self, texts: Sequence[str], options: pb.EmbedRequest | pb.EmbedStreamRequest, field: str = "texts"
    ) -> Embeddings:
        """A caller's texts embedded as ``options`` (a request, or a stream's first chunk) asks."""
        return await self.embedder.embed(
            list(texts),
            options.model.name,
            options.model.version,
            normalize=options.normalize,
            truncate=_truncate(options.truncation),
            field=field,
            bounded=True,
        )

    async def Embed(self, request: pb.EmbedRequest, context: grpc.aio.ServicerContext) -> pb.EmbedResponse:
        result = await self._embed(request.texts, request)
        return pb.EmbedResponse(
            embeddings=[to_proto(v, request.encoding) for v in result.vectors],
            model=model_info(result.entry, self.service),
            usage=common_pb2.Usage(input_tokens=result.tokens),
        )

    async def EmbedStream(
        self, request_iterator: AsyncIterator[pb.EmbedStreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.EmbedStreamResponse]:
        # One chunk at a time: the next chunk is read only after this answer is
        # handed to the transport, so a slow reader holds the sender back
        # through HTTP/2 flow control instead of filling our memory.
        first: pb.EmbedStreamRequest | None = None
        offset = 0
        index = 0
        async for chunk in request_iterator:
            first = first or chunk
            result = await self._embed(chunk.texts, first, f"chunk[{index}].texts")
            yield pb.EmbedStreamResponse(
                chunk_index=index,
                offset=offset,
                embeddings=[to_proto(v, first.encoding) for v in result.vectors],
                usage=common_pb2.Usage(input_tokens=result.tokens),
            )
            offset += len(chunk.texts)
            index += 1

    async def Similarity(
        self, request: pb.SimilarityRequest, context: grpc.aio.ServicerContext
    ) -> pb.SimilarityResponse:
        if request.metric not in (
            pb.SIMILARITY_METRIC_UNSPECIFIED,
            pb.SIMILARITY_METRIC_COSINE,
            pb.SIMILARITY_METRIC_DOT,
        ):
            raise InvalidArgument("metric", f"unknown metric {request.metric}")
        scores, tokens, entry = await self.embedder.similarity(
            list(request.sources),
            list(request.candidates),
            pairwise=request.pairwise,
            cosine=request.metric != pb.SIMILARITY_METRIC_DOT,
            model=request.model.name,
            version=request.model.version,
        )
        return pb.SimilarityResponse(
            scores=scores.ravel().tolist(),
            rows=scores.shape[0],
            columns=scores.shape[1],
            model=model_info(entry, self.service),
            usage=common_pb2.Usage(input_tokens=tokens),
        )
