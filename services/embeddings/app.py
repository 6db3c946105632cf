"""What the embeddings service serves: its runtimes and its servicers.

Imported only after the device is isolated (see shared.model_service)."""

from __future__ import annotations

from lumen.embeddings.v1 import embeddings_pb2, embeddings_pb2_grpc
from services.embeddings import runtime_sentence, runtime_word2vec
from services.embeddings.collection_index import AnnConfig
from services.embeddings.collection_manager import Collections
from services.embeddings.collection_servicer import CollectionServicer
from services.embeddings.collection_store_pg import open_collection_store
from services.embeddings.embedder import Embedder
from services.embeddings.servicer import EmbeddingServicer
from services.embeddings.settings import EmbeddingsSettings
from services.embeddings.word_servicer import WordEmbeddingServicer
from services.embeddings.word_vectors import WordVectors
from shared.repository import ModelFactory, ModelRepository
from shared.server import Registration

FACTORIES: dict[str, ModelFactory] = {
    runtime_sentence.FRAMEWORK: runtime_sentence.SentenceTransformerModel,
    runtime_word2vec.FRAMEWORK: runtime_word2vec.KeyedVectorsModel,
}


def registrations(repository: ModelRepository, settings: EmbeddingsSettings) -> list[Registration]:  # type: ignore[override]
    services = embeddings_pb2.DESCRIPTOR.services_by_name
    embedder = Embedder(repository, settings)
    # Reads every collection back into memory before the port serves (rebuild after a crash).
    store = open_collection_store(
        settings.database_url,
        settings.collections_path(),
        AnnConfig(threshold=settings.ann_threshold, expansion_search=settings.ann_expansion_search),
        settings.collection_limits(),
    )
    return [
        Registration(
            embeddings_pb2_grpc.add_EmbeddingServiceServicer_to_server,
            EmbeddingServicer(embedder),
            services["EmbeddingService"].full_name,
        ),
        Registration(
            embeddings_pb2_grpc.add_WordEmbeddingServiceServicer_to_server,
            WordEmbeddingServicer(WordVectors(repository, settings)),
            services["WordEmbeddingService"].full_name,
        ),
        Registration(
            embeddings_pb2_grpc.add_CollectionServiceServicer_to_server,
            CollectionServicer(Collections(store, embedder, settings)),
            services["CollectionService"].full_name,
            close=store.close,
        ),
    ]
