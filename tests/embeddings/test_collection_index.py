"""The collection's vector index and store without a model: exact search, HNSW recall, reload from disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.embeddings.collection_index import EXACT, HNSW, AnnConfig, VectorIndex
from services.embeddings.collection_store import CollectionStore, NewDocument
from shared.errors import AlreadyExists, NotFound

DIM = 32


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def brute_force(vectors: dict[int, np.ndarray], query: np.ndarray, k: int) -> list[int]:
    keys = sorted(vectors)
    scores = np.stack([vectors[key] for key in keys]) @ query
    return [keys[i] for i in sorted(range(len(keys)), key=lambda i: (-scores[i], keys[i]))[:k]]


def filled(n: int, threshold: int, seed: int = 0) -> tuple[VectorIndex, dict[int, np.ndarray]]:
    vectors = unit(np.random.default_rng(seed).standard_normal((n, DIM)))
    index = VectorIndex(DIM, AnnConfig(threshold=threshold))
    keys = np.arange(100, 100 + n, dtype=np.int64)
    index.add(keys, vectors)
    return index, dict(zip(keys.tolist(), vectors, strict=True))


def test_exact_search_equals_brute_force_after_removals() -> None:
    index, vectors = filled(300, threshold=10_000)
    removed = list(vectors)[::3]
    index.remove(removed)
    for key in removed:
        del vectors[key]
    assert index.kind == EXACT and len(index) == len(vectors)
    for query in unit(np.random.default_rng(1).standard_normal((20, DIM))):
        hits = index.search(query, 10)
        assert [k for k, _ in hits] == brute_force(vectors, query, 10)
        assert np.allclose([s for _, s in hits], [vectors[k] @ query for k, _ in hits], atol=1e-6)
        allowed = set(list(vectors)[:40])
        assert [k for k, _ in index.search(query, 5, allowed)] == brute_force(
            {k: vectors[k] for k in allowed}, query, 5
        )


def recall(index: VectorIndex, vectors: dict[int, np.ndarray], queries: np.ndarray, k: int, allowed=None) -> float:
    pool = vectors if allowed is None else {key: vectors[key] for key in allowed}
    found = 0
    for query in queries:
        got = [key for key, _ in index.search(query, k, allowed)]
        assert allowed is None or set(got) <= allowed
        found += len(set(got) & set(brute_force(pool, query, k)))
    return found / (k * len(queries))


def test_hnsw_past_the_threshold_has_high_recall_and_exact_scores() -> None:
    index, vectors = filled(4000, threshold=1000)
    assert index.kind == HNSW
    queries = unit(np.random.default_rng(2).standard_normal((30, DIM)))
    assert recall(index, vectors, queries, 10) >= 0.95
    key, score = index.search(queries[0], 1)[0]
    assert score == pytest.approx(float(vectors[key] @ queries[0]), abs=1e-6)
    # A broad filter goes through the HNSW index with over-fetching; a narrow one is scanned exactly.
    broad = {k for k in vectors if k % 2}
    assert recall(index, vectors, queries, 10, broad) >= 0.95
    narrow = set(list(vectors)[:50])
    assert recall(index, vectors, queries, 10, narrow) == 1.0


def test_hnsw_forgets_removed_vectors_and_drops_to_exact_when_small() -> None:
    index, vectors = filled(2000, threshold=1000)
    gone = list(vectors)[:900]
    index.remove(gone)
    for key in gone:
        del vectors[key]
    assert index.kind == HNSW
    for query in unit(np.random.default_rng(3).standard_normal((10, DIM))):
        assert not {k for k, _ in index.search(query, 50)} & set(gone)
    index.remove(list(vectors)[:700])  # 400 left: under half the threshold
    assert index.kind == EXACT and len(index) == 400


async def test_store_survives_a_reopen_and_rebuilds_the_index(tmp_path: Path) -> None:
    ann = AnnConfig(threshold=200)
    store = CollectionStore(tmp_path, ann)
    collection = await store.create("reopen", "some-model", DIM)
    with pytest.raises(AlreadyExists):
        await store.create("reopen", "some-model", DIM)
    vectors = unit(np.random.default_rng(4).standard_normal((300, DIM)))
    docs = [NewDocument(f"d{i}", f"text {i}", {"n": float(i), "even": i % 2 == 0}, v) for i, v in enumerate(vectors)]
    for start in range(0, len(docs), 50):
        await store.upsert(collection, docs[start : start + 50])
    await store.upsert(collection, [NewDocument("d0", "replaced", {"n": -1.0}, vectors[1])])
    assert await store.delete(collection, ["d2", "d3", "missing"]) == 2
    query = vectors[5]
    before = collection.search(query, 10, {"even": False})
    store.close()

    reopened = CollectionStore(tmp_path, ann)
    again = reopened.get("reopen")
    assert len(again) == 298 and again.index_kind == HNSW
    assert again.search(query, 10, {"even": False}) == before
    [hit] = again.search(vectors[1], 1, {"n": -1.0})
    assert (hit.document.id, hit.document.text) == ("d0", "replaced")
    await reopened.drop("reopen")
    with pytest.raises(NotFound):
        reopened.get("reopen")
    reopened.close()
    assert CollectionStore(tmp_path, ann).all() == []
