"""What `Client` and `AsyncClient` share: the connection, every service, and the shortcuts.

Results are the generated protobuf messages (typed by the ``.pyi`` files `make protos` writes):
they are the documented contract (each field's units and ranges are in the .proto comments),
the same in every language's client, and new fields reach callers without an SDK change.
Shortcuts build requests from plain arguments and shape a result only where the message is
awkward: `embed` gives a numpy array, `chat_stream` text pieces, `health` a status name.
Every RPC of every service is on the service attributes (``client.faces.EnrollPerson(req)``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lumen.api_training import TrainingApi
from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2, embeddings_pb2_grpc
from lumen.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from lumen.nlp.v1 import nlp_pb2, nlp_pb2_grpc
from lumen.ops import Plan, op, stream_op
from lumen.tabular.v1 import tabular_pb2, tabular_pb2_grpc
from lumen.training.v1 import training_pb2, training_pb2_grpc
from lumen.transport import CallDefaults, Service, Tls, open_channel
from lumen.vision.v1 import vision_pb2, vision_pb2_grpc

DEFAULT_ADDRESS = "localhost:50051"

# Per generated module pair: client attribute -> service name.
_SERVICES = [
    (gateway_pb2, gateway_pb2_grpc, {"gateway": "GatewayService"}),
    (embeddings_pb2, embeddings_pb2_grpc, {"embeddings": "EmbeddingService", "words": "WordEmbeddingService"}),
    (embeddings_pb2, embeddings_pb2_grpc, {"collections": "CollectionService"}),
    (nlp_pb2, nlp_pb2_grpc, {"text": "TextAnalysisService", "generation": "TextGenerationService"}),
    (nlp_pb2, nlp_pb2_grpc, {"tokenizer": "TokenizerService"}),
    (vision_pb2, vision_pb2_grpc, {"images": "ImageAnalysisService", "faces": "FaceRecognitionService"}),
    (tabular_pb2, tabular_pb2_grpc, {"tabular": "TabularService"}),
    (training_pb2, training_pb2_grpc, {"datasets": "DatasetService", "training": "TrainingService"}),
    (health_pb2, health_pb2_grpc, {"health_service": "Health"}),
]
# Client attribute -> (generated stub class, service descriptor).
SERVICES: dict[str, tuple[Any, Any]] = {
    attribute: (getattr(stubs, f"{name}Stub"), messages.DESCRIPTOR.services_by_name[name])
    for messages, stubs, names in _SERVICES
    for attribute, name in names.items()
}

ImageSource = bytes | str | Path | common_pb2.Image


def vectors_of(response: embeddings_pb2.EmbedResponse | embeddings_pb2.EmbedStreamResponse) -> np.ndarray:
    """The response's vectors as a (n, dimension) float32 array, whichever encoding was used."""
    return np.stack(
        [
            np.frombuffer(v.values_f32, dtype="<f4") if v.values_f32 else np.asarray(v.values, dtype=np.float32)
            for v in response.embeddings
        ]
    )


def image(source: ImageSource) -> common_pb2.Image:
    """An Image message from encoded bytes (JPEG, PNG...) or a file path."""
    if isinstance(source, common_pb2.Image):
        return source
    content = source if isinstance(source, bytes) else Path(source).read_bytes()
    return common_pb2.Image(content=content)


def _status_name(response: health_pb2.HealthCheckResponse) -> str:
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def _same(response: Any) -> Any:
    return response


def _enum(enum: Any, prefix: str, name: str) -> Any:
    """``_enum(TextFeatureType, "TEXT_FEATURE_TYPE", "sentiment")`` -> its number; ValueError names the choices."""
    try:
        return enum.Value(f"{prefix}_{name.upper()}")
    except ValueError:
        known = [n[len(prefix) + 1 :].lower() for n in enum.DESCRIPTOR.values_by_name if not n.endswith("_UNSPECIFIED")]
        raise ValueError(f"unknown feature {name!r}: choose from {', '.join(known)}") from None


def _model(name: str) -> common_pb2.ModelRef:
    return common_pb2.ModelRef(name=name)


def _chat(message: str, max_new_tokens: int, seed: int | None) -> tuple[nlp_pb2.Conversation, nlp_pb2.GenerationParams]:
    params = nlp_pb2.GenerationParams(max_new_tokens=max_new_tokens)
    if seed is not None:
        params.seed = seed
    turn = nlp_pb2.ChatMessage(role=nlp_pb2.CHAT_ROLE_USER, content=message)
    return nlp_pb2.Conversation(messages=[turn]), params


class Api(TrainingApi):
    """The connection and the operations; `Client` runs them sync, `AsyncClient` async.
    (Training's operations: lumen.api_training.)

    ``address`` defaults to $LUMEN_ADDRESS, else localhost:50051. ``api_key`` (default
    $LUMEN_API_KEY) is sent as ``x-api-key``. ``timeout`` is the deadline, in seconds, of each
    call that names none. ``tls``: True for TLS with the system's root certificates, or a
    `Tls` with the CA, this client's certificate and key (mTLS) and a server name.
    """

    asynchronous: ClassVar[bool] = False
    # The services (SERVICES), typed as the generated stubs by Client and AsyncClient.
    gateway: Any
    embeddings: Any
    words: Any
    collections: Any
    text: Any
    generation: Any
    tokenizer: Any
    images: Any
    faces: Any
    tabular: Any
    datasets: Any
    training: Any
    health_service: Any

    def __init__(
        self,
        address: str | None = None,
        api_key: str | None = None,
        timeout: float | None = 30.0,
        tls: Tls | bool | None = None,
    ) -> None:
        self.address = address or os.environ.get("LUMEN_ADDRESS", DEFAULT_ADDRESS)
        self.timeout = timeout
        api_key = api_key if api_key is not None else os.environ.get("LUMEN_API_KEY")
        self.tls = Tls() if tls is True else (tls or None)
        self.channel = open_channel(self.address, self.tls, self.asynchronous)
        self.defaults = CallDefaults(timeout, (("x-api-key", api_key),) if api_key else ())
        for name, (stub, descriptor) in SERVICES.items():
            setattr(self, name, Service(stub(self.channel), descriptor, self.defaults, self.asynchronous))

    # Shortcuts. Each returns the response message unless it says otherwise.

    @op
    def embed(self, texts: Sequence[str], model: str = "", normalize: bool = False) -> Plan[np.ndarray]:
        """Sentence embeddings: a (len(texts), dimension) float32 array."""
        return Plan(self.embeddings.Embed, self._embed_request(texts, model, normalize), vectors_of)

    @op
    def embed_raw(
        self, texts: Sequence[str], model: str = "", normalize: bool = False
    ) -> Plan[embeddings_pb2.EmbedResponse]:
        """Sentence embeddings as the EmbedResponse (model, usage; `vectors_of` gives the array)."""
        return Plan(self.embeddings.Embed, self._embed_request(texts, model, normalize), _same)

    @staticmethod
    def _embed_request(texts: Sequence[str], model: str, normalize: bool) -> embeddings_pb2.EmbedRequest:
        return embeddings_pb2.EmbedRequest(
            model=_model(model), texts=list(texts), normalize=normalize, encoding=common_pb2.VECTOR_ENCODING_F32_BYTES
        )

    @op
    def analyze_text(
        self, text: str, features: Sequence[str] = ("language", "sentiment", "embedding")
    ) -> Plan[gateway_pb2.AnalyzeTextResponse]:
        """GatewayService.AnalyzeText with features named language, sentiment, classification, entities,
        embedding; each part carries its own status."""
        kinds = [_enum(gateway_pb2.TextFeatureType, "TEXT_FEATURE_TYPE", f) for f in features]
        request = gateway_pb2.AnalyzeTextRequest(text=text, features=[gateway_pb2.TextFeature(type=k) for k in kinds])
        return Plan(self.gateway.AnalyzeText, request, _same)

    @op
    def annotate_image(
        self, source: ImageSource, features: Sequence[str] = ("labels", "objects", "faces")
    ) -> Plan[gateway_pb2.AnnotateImageResponse]:
        """GatewayService.AnnotateImage with features named labels, objects, faces."""
        kinds = [_enum(gateway_pb2.ImageFeatureType, "IMAGE_FEATURE_TYPE", f) for f in features]
        request = gateway_pb2.AnnotateImageRequest(
            image=image(source), features=[gateway_pb2.ImageFeature(type=k) for k in kinds]
        )
        return Plan(self.gateway.AnnotateImage, request, _same)

    @op
    def chat(self, message: str, max_new_tokens: int = 128, seed: int | None = None) -> Plan[str]:
        """One user message to the default instruct model; its whole answer."""
        conversation, params = _chat(message, max_new_tokens, seed)
        request = nlp_pb2.GenerateRequest(chat=conversation, params=params)
        return Plan(self.generation.Generate, request, lambda response: response.text)

    @stream_op
    def chat_stream(self, message: str, max_new_tokens: int = 128, seed: int | None = None) -> Plan[str]:
        """One user message to the default instruct model; its answer piece by piece as tokens arrive."""
        conversation, params = _chat(message, max_new_tokens, seed)
        request = nlp_pb2.GenerateStreamRequest(chat=conversation, params=params)
        return Plan(self.generation.GenerateStream, request, lambda chunk: chunk.text)

    @op
    def classify_images(
        self, images: Sequence[ImageSource], top_k: int = 0, model: str = ""
    ) -> Plan[vision_pb2.ClassifyImagesResponse]:
        """Labels per image (``results[i]``, each with its own status)."""
        request = vision_pb2.ClassifyImagesRequest(model=_model(model), images=[image(i) for i in images], top_k=top_k)
        return Plan(self.images.ClassifyImages, request, _same)

    @op
    def detect_faces(
        self, images: Sequence[ImageSource], landmarks: bool = False, model: str = ""
    ) -> Plan[vision_pb2.DetectFacesResponse]:
        """Face boxes (normalised to the image) per image, with landmarks on request."""
        request = vision_pb2.DetectFacesRequest(
            model=_model(model), images=[image(i) for i in images], landmarks=landmarks
        )
        return Plan(self.images.DetectFaces, request, _same)

    @op
    def similar_words(
        self, positive: Sequence[str], negative: Sequence[str] = (), top_k: int = 10, model: str = ""
    ) -> Plan[embeddings_pb2.MostSimilarWordsResponse]:
        """Nearest words to the sum of ``positive`` minus ``negative`` (analogies: king - man + woman)."""
        request = embeddings_pb2.MostSimilarWordsRequest(
            model=_model(model), positive=list(positive), negative=list(negative), top_k=top_k
        )
        return Plan(self.words.MostSimilarWords, request, _same)

    @op
    def semantic_search(
        self, query: str, collections: Sequence[str], top_k: int = 10
    ) -> Plan[gateway_pb2.SemanticSearchResponse]:
        """The best hits for ``query`` across ``collections``, with a status per collection."""
        request = gateway_pb2.SemanticSearchRequest(query=query, collections=list(collections), top_k=top_k)
        return Plan(self.gateway.SemanticSearch, request, _same)

    @op
    def list_models(self, service: str = "", task: str = "") -> Plan[gateway_pb2.ListModelsResponse]:
        """Every backend's models (one page), with a status per backend."""
        return Plan(self.gateway.ListModels, gateway_pb2.ListModelsRequest(service=service, task=task), _same)

    @op
    def usage(self, key_id: str = "") -> Plan[gateway_pb2.GetUsageResponse]:
        """Calls, tokens and images this period for this client's key (another key: admin keys only)."""
        return Plan(self.gateway.GetUsage, gateway_pb2.GetUsageRequest(key_id=key_id), _same)

    @stream_op
    def watch_health(self, service: str = "") -> Plan[str]:
        """grpc.health.v1 Watch: the status name now, then at each change (until the deadline)."""
        request = health_pb2.HealthCheckRequest(service=service)
        return Plan(self.health_service.Watch, request, _status_name)

    @op
    def health(self, service: str = "") -> Plan[str]:
        """grpc.health.v1 status name: SERVING, NOT_SERVING... (``backend.nlp`` for a backend)."""
        request = health_pb2.HealthCheckRequest(service=service)
        return Plan(self.health_service.Check, request, _status_name)
