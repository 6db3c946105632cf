"""The vectors of one collection in memory: exact search, or an HNSW index past a size threshold.

Vectors are stored L2-normalised, so a dot product is the cosine similarity.
Each vector has a stable integer key (the database row key); rows of the matrix
move when others are removed, keys never do.

Why usearch for the approximate index (over hnswlib and faiss-cpu):
- it installs as a prebuilt wheel for CPython 3.11 with numpy 2; hnswlib 0.8
  ships only a source distribution that needs a C++ compiler in every image;
- it removes vectors by key, which upserts and deletes need; faiss-cpu's HNSW
  index (IndexHNSWFlat) cannot remove vectors, only be rebuilt;
- cosine metric, 64-bit keys and batch add/search in one call, no training step.

Whatever the index answers, the scores returned are recomputed exactly from the
matrix, so an approximate search can only miss a neighbour, never misreport one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

EXACT = "exact"
HNSW = "usearch-hnsw"


@dataclass(frozen=True)
class AnnConfig:
    threshold: int = 20000  # build the HNSW index from this many vectors; drop it under half
    expansion_search: int = 128
    connectivity: int = 16
    expansion_add: int = 128


class VectorIndex:
    """Not thread-safe: the owning Collection serialises access with its lock."""

    def __init__(self, dimension: int, ann: AnnConfig) -> None:
        self.dimension = dimension
        self.ann = ann
        self._vectors = np.empty((16, dimension), dtype=np.float32)
        self._keys = np.empty(16, dtype=np.int64)
        self._size = 0
        self._row: dict[int, int] = {}
        self._hnsw = None  # usearch.index.Index once the collection is large
        self._removed_since_build = 0

    def __len__(self) -> int:
        return self._size

    @property
    def kind(self) -> str:
        return HNSW if self._hnsw is not None else EXACT

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Add new keys (never ones already present) with unit vectors."""
        n = len(keys)
        if n == 0:
            return
        self._grow(self._size + n)
        rows = np.arange(self._size, self._size + n)
        self._vectors[rows] = vectors
        self._keys[rows] = keys
        self._row.update(zip(keys.tolist(), rows.tolist(), strict=True))
        self._size += n
        if self._hnsw is not None:
            self._hnsw.add(keys.astype(np.uint64), vectors)
        self._maintain()

    def remove(self, keys: Iterable[int]) -> None:
        removed = []
        for key in keys:
            row = self._row.pop(key, None)
            if row is None:
                continue
            last = self._size - 1
            if row != last:  # move the last row into the hole
                moved = int(self._keys[last])
                self._vectors[row] = self._vectors[last]
                self._keys[row] = moved
                self._row[moved] = row
            self._size -= 1
            removed.append(key)
        if self._hnsw is not None and removed:
            self._hnsw.remove(np.asarray(removed, dtype=np.uint64))
            self._removed_since_build += len(removed)
        self._maintain()

    def search(self, query: np.ndarray, k: int, allowed: set[int] | None = None) -> list[tuple[int, float]]:
        """Up to ``k`` (key, cosine) pairs, best first; only keys in ``allowed`` when given."""
        if self._size == 0 or (allowed is not None and not allowed):
            return []
        if self._hnsw is None or (allowed is not None and len(allowed) < self.ann.threshold):
            # Small collection, or a filter narrow enough that scanning its rows is cheap.
            return self._exact(query, k, allowed)
        fetch = k if allowed is None else math.ceil(2 * k * self._size / len(allowed))
        fetch = min(fetch, self._size)
        candidates = [int(c) for c in self._hnsw.search(query, fetch).keys]
        if allowed is not None:
            candidates = [c for c in candidates if c in allowed]
            if len(candidates) < k and fetch < self._size:
                return self._exact(query, k, allowed)  # the filter defeated the overfetch
        return self._rank(query, np.asarray(candidates, dtype=np.int64), k)

    def _exact(self, query: np.ndarray, k: int, allowed: set[int] | None) -> list[tuple[int, float]]:
        keys = self._keys[: self._size] if allowed is None else np.fromiter(allowed, np.int64, len(allowed))
        return self._rank(query, keys, k)

    def _rank(self, query: np.ndarray, keys: np.ndarray, k: int) -> list[tuple[int, float]]:
        if len(keys) == 0:
            return []
        rows = np.fromiter((self._row[int(key)] for key in keys), dtype=np.int64, count=len(keys))
        scores = self._vectors[rows] @ query
        k = min(k, len(keys))
        best = np.argpartition(-scores, k - 1)[:k] if k < len(keys) else np.arange(len(keys))
        # Ties broken by key so that equal scores come out in a stable order.
        order = sorted(best.tolist(), key=lambda i: (-scores[i], int(keys[i])))
        return [(int(keys[i]), float(scores[i])) for i in order]

    def _grow(self, needed: int) -> None:
        capacity = len(self._keys)
        if needed <= capacity:
            return
        while capacity < needed:
            capacity *= 2
        vectors = np.empty((capacity, self.dimension), dtype=np.float32)
        vectors[: self._size] = self._vectors[: self._size]
        keys = np.empty(capacity, dtype=np.int64)
        keys[: self._size] = self._keys[: self._size]
        self._vectors, self._keys = vectors, keys

    def _maintain(self) -> None:
        """Build the HNSW index when large, drop it when small, rebuild it when removals pile up."""
        if self._hnsw is None:
            if self._size >= self.ann.threshold:
                self._build()
        elif self._size < self.ann.threshold // 2:
            self._hnsw = None
        elif self._removed_since_build > self._size:
            self._build()  # removed entries still take memory and search time in usearch's graph

    def _build(self) -> None:
        from usearch.index import Index

        index = Index(
            ndim=self.dimension,
            metric="cos",
            dtype="f32",
            connectivity=self.ann.connectivity,
            expansion_add=self.ann.expansion_add,
            expansion_search=self.ann.expansion_search,
        )
        if self._size:
            index.add(self._keys[: self._size].astype(np.uint64), self._vectors[: self._size])
        self._hnsw = index
        self._removed_since_build = 0
