"""What the embeddings service serves: its runtimes and its servicers.

Imported only after the device is isolated (see shared.model_service)."""

from __future__ import annotations

from lumen.embeddings.v1 import embeddings_pb2, embeddings_pb2_grpc
from services.embeddings.embedder import Embedder
from services.embeddings.runtime_sentence import FRAMEWORK, SentenceTransformerModel
from services.embeddings.servicer import EmbeddingServicer
from services.embeddings.settings import EmbeddingsSettings
from shared.repository import ModelFactory, ModelRepository
from shared.server import Registration

FACTORIES: dict[str, ModelFactory] = {FRAMEWORK: SentenceTransformerModel}


def registrations(repository: ModelRepository, settings: EmbeddingsSettings) -> list[Registration]:  # type: ignore[override]
    services = embeddings_pb2.DESCRIPTOR.services_by_name
    return [
        Registration(
            embeddings_pb2_grpc.add_EmbeddingServiceServicer_to_server,
            EmbeddingServicer(Embedder(repository, settings)),
            services["EmbeddingService"].full_name,
        ),
    ]
