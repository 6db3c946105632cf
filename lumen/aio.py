"""Python SDK, asyncio: `AsyncClient` has the operations of `lumen.Client` (see `lumen.api`),
awaited, over grpc.aio; streams are async iterators. Failures raise `lumen.errors.LumenError`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lumen.api import Api

if TYPE_CHECKING:
    from lumen.embeddings.v1.embeddings_pb2_grpc import (
        CollectionServiceAsyncStub,
        EmbeddingServiceAsyncStub,
        WordEmbeddingServiceAsyncStub,
    )
    from lumen.gateway.v1.gateway_pb2_grpc import GatewayServiceAsyncStub
    from lumen.nlp.v1.nlp_pb2_grpc import (
        TextAnalysisServiceAsyncStub,
        TextGenerationServiceAsyncStub,
        TokenizerServiceAsyncStub,
    )
    from lumen.tabular.v1.tabular_pb2_grpc import TabularServiceAsyncStub
    from lumen.training.v1.training_pb2_grpc import DatasetServiceAsyncStub, TrainingServiceAsyncStub
    from lumen.vision.v1.vision_pb2_grpc import FaceRecognitionServiceAsyncStub, ImageAnalysisServiceAsyncStub


class AsyncClient(Api):
    """``async with AsyncClient("localhost:50051") as client: await client.embed(["some text"])``.

    Create it inside the event loop that uses it (grpc.aio channels belong to one loop).
    """

    asynchronous = True
    gateway: GatewayServiceAsyncStub
    embeddings: EmbeddingServiceAsyncStub
    words: WordEmbeddingServiceAsyncStub
    collections: CollectionServiceAsyncStub
    text: TextAnalysisServiceAsyncStub
    generation: TextGenerationServiceAsyncStub
    tokenizer: TokenizerServiceAsyncStub
    images: ImageAnalysisServiceAsyncStub
    faces: FaceRecognitionServiceAsyncStub
    tabular: TabularServiceAsyncStub
    datasets: DatasetServiceAsyncStub
    training: TrainingServiceAsyncStub
    health_service: Any  # grpc.health.v1 Health (its published stubs have no async type)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
