"""Python SDK, synchronous: `Client` talks to the gateway with grpc (see `lumen.api` for the
operations, `lumen.aio.AsyncClient` for the asyncio twin, `lumen.errors` for what fails)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lumen.api import DEFAULT_ADDRESS, Api, image, vectors_of
from lumen.transport import MAX_MESSAGE_BYTES, Tls

if TYPE_CHECKING:
    from grpc_health.v1.health_pb2_grpc import HealthStub

    from lumen.embeddings.v1.embeddings_pb2_grpc import (
        CollectionServiceStub,
        EmbeddingServiceStub,
        WordEmbeddingServiceStub,
    )
    from lumen.gateway.v1.gateway_pb2_grpc import GatewayServiceStub
    from lumen.nlp.v1.nlp_pb2_grpc import TextAnalysisServiceStub, TextGenerationServiceStub, TokenizerServiceStub
    from lumen.tabular.v1.tabular_pb2_grpc import TabularServiceStub
    from lumen.training.v1.training_pb2_grpc import DatasetServiceStub, TrainingServiceStub
    from lumen.vision.v1.vision_pb2_grpc import FaceRecognitionServiceStub, ImageAnalysisServiceStub

__all__ = ["DEFAULT_ADDRESS", "MAX_MESSAGE_BYTES", "Client", "Tls", "image", "vectors_of"]


class Client(Api):
    """``with Client("localhost:50051") as client: client.embed(["some text"])``.

    Every RPC is on a service attribute (``client.faces.EnrollPerson(request)``) and returns
    its response message; the shortcuts (`embed`, `analyze_text`, `chat_stream`...) are on
    the client. Failures raise `lumen.errors.LumenError` subclasses.
    """

    asynchronous = False
    gateway: GatewayServiceStub
    embeddings: EmbeddingServiceStub
    words: WordEmbeddingServiceStub
    collections: CollectionServiceStub
    text: TextAnalysisServiceStub
    generation: TextGenerationServiceStub
    tokenizer: TokenizerServiceStub
    images: ImageAnalysisServiceStub
    faces: FaceRecognitionServiceStub
    tabular: TabularServiceStub
    datasets: DatasetServiceStub
    training: TrainingServiceStub
    health_service: HealthStub

    def call(self, method: Any, request: Any) -> Any:
        """One call of a service method (``client.call(client.text.ClassifyText, request)``)."""
        return method(request)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
