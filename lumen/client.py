"""Python SDK: a thin, typed wrapper over the generated stubs, talking to the gateway."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lumen.client_training import TrainingCalls
from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2, embeddings_pb2_grpc
from lumen.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from lumen.nlp.v1 import nlp_pb2, nlp_pb2_grpc
from lumen.tabular.v1 import tabular_pb2_grpc
from lumen.training.v1 import training_pb2_grpc
from lumen.vision.v1 import vision_pb2_grpc

DEFAULT_ADDRESS = "localhost:50051"
MAX_MESSAGE_BYTES = 32 * 1024 * 1024


def vectors_of(response: embeddings_pb2.EmbedResponse) -> np.ndarray:
    """The response's vectors as a (n, dimension) float32 array, whichever encoding was used."""
    return np.stack(
        [
            np.frombuffer(v.values_f32, dtype="<f4") if v.values_f32 else np.asarray(v.values, dtype=np.float32)
            for v in response.embeddings
        ]
    )


class Client(TrainingCalls):
    """``Client("localhost:50051")``; the address defaults to $LUMEN_ADDRESS.

    An API key, when the gateway requires one, is sent as ``x-api-key``. Training
    (datasets, jobs, ``train``): lumen.client_training.TrainingCalls.
    """

    def __init__(self, address: str | None = None, api_key: str | None = None, timeout: float = 30.0) -> None:
        self.address = address or os.environ.get("LUMEN_ADDRESS", DEFAULT_ADDRESS)
        self.timeout = timeout
        self._metadata = (("x-api-key", api_key),) if api_key else ()
        self.channel = grpc.insecure_channel(
            self.address,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self.embeddings = embeddings_pb2_grpc.EmbeddingServiceStub(self.channel)
        self.gateway = gateway_pb2_grpc.GatewayServiceStub(self.channel)
        self.generation = nlp_pb2_grpc.TextGenerationServiceStub(self.channel)
        self.text = nlp_pb2_grpc.TextAnalysisServiceStub(self.channel)
        self.tokenizer = nlp_pb2_grpc.TokenizerServiceStub(self.channel)
        self.words = embeddings_pb2_grpc.WordEmbeddingServiceStub(self.channel)
        self.collections = embeddings_pb2_grpc.CollectionServiceStub(self.channel)
        self.images = vision_pb2_grpc.ImageAnalysisServiceStub(self.channel)
        self.faces = vision_pb2_grpc.FaceRecognitionServiceStub(self.channel)
        self.datasets = training_pb2_grpc.DatasetServiceStub(self.channel)
        self.training = training_pb2_grpc.TrainingServiceStub(self.channel)
        self.tabular = tabular_pb2_grpc.TabularServiceStub(self.channel)

    def call(self, method: Any, request: Any) -> Any:
        """One unary call of any stub method, with this client's deadline and API key."""
        return method(request, timeout=self.timeout, metadata=self._metadata)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def embed(self, texts: Sequence[str], model: str = "", normalize: bool = False) -> np.ndarray:
        """Sentence embeddings, one row per text (float32)."""
        return vectors_of(self.embed_raw(texts, model, normalize))

    def embed_raw(self, texts: Sequence[str], model: str = "", normalize: bool = False) -> embeddings_pb2.EmbedResponse:
        request = embeddings_pb2.EmbedRequest(
            model=common_pb2.ModelRef(name=model),
            texts=list(texts),
            normalize=normalize,
            encoding=common_pb2.VECTOR_ENCODING_F32_BYTES,
        )
        return self.embeddings.Embed(request, timeout=self.timeout, metadata=self._metadata)

    def analyze_text(self, text: str, features: Sequence[str] = ("language", "sentiment", "embedding")):
        """AnalyzeText with the named features (language, sentiment, classification, entities, embedding)."""
        request = gateway_pb2.AnalyzeTextRequest(
            text=text,
            features=[
                gateway_pb2.TextFeature(type=gateway_pb2.TextFeatureType.Value(f"TEXT_FEATURE_TYPE_{f.upper()}"))
                for f in features
            ],
        )
        return self.gateway.AnalyzeText(request, timeout=self.timeout, metadata=self._metadata)

    def chat_stream(self, message: str, max_new_tokens: int = 128, seed: int | None = None) -> Iterator[str]:
        """One user message to the default instruct model; yields text as tokens arrive."""
        params = nlp_pb2.GenerationParams(max_new_tokens=max_new_tokens)
        if seed is not None:
            params.seed = seed
        request = nlp_pb2.GenerateStreamRequest(
            chat=nlp_pb2.Conversation(messages=[nlp_pb2.ChatMessage(role=nlp_pb2.CHAT_ROLE_USER, content=message)]),
            params=params,
        )
        for chunk in self.generation.GenerateStream(request, timeout=self.timeout, metadata=self._metadata):
            yield chunk.text

    def list_models(self, service: str = "", task: str = "") -> gateway_pb2.ListModelsResponse:
        return self.gateway.ListModels(
            gateway_pb2.ListModelsRequest(service=service, task=task), timeout=self.timeout, metadata=self._metadata
        )

    def health(self, service: str = "") -> str:
        reply = health_pb2_grpc.HealthStub(self.channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=self.timeout
        )
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
