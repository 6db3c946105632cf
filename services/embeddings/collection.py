"""One collection in memory: its documents, a metadata index for filters, and its vectors.

The database is the truth (collection_store); this is rebuilt from it at start
and updated after each durable write. Searches (worker threads) and writes
(the store's thread) take the collection's lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from services.embeddings.collection_index import AnnConfig, VectorIndex
from services.embeddings.collection_metadata import Canonical, Scalar, canonical
from shared.errors import InvalidArgument


@dataclass(frozen=True)
class StoredDocument:
    key: int  # database row key; a replaced document gets a new one
    id: str
    text: str
    metadata: dict[str, Scalar]


@dataclass(frozen=True)
class Hit:
    document: StoredDocument
    score: float


class Collection:
    def __init__(self, cid: int, name: str, model: str, dimension: int, ann: AnnConfig) -> None:
        self.cid = cid
        self.name = name
        self.model = model
        self.dimension = dimension
        self.lock = threading.Lock()
        self.deleted = False  # set when dropped, so that a write already under way is refused
        self._documents: dict[str, StoredDocument] = {}
        self._by_key: dict[int, StoredDocument] = {}
        # metadata key -> value -> document keys: a filter is an intersection of these sets.
        self._postings: dict[str, dict[Canonical, set[int]]] = {}
        self._index = VectorIndex(dimension, ann)

    def __len__(self) -> int:
        return len(self._documents)

    @property
    def index_kind(self) -> str:
        return self._index.kind

    def apply_upsert(self, documents: list[StoredDocument], vectors: np.ndarray) -> None:
        """Add documents (unit vectors, one row each), replacing those with the same id. Hold the lock."""
        self._forget([self._documents[d.id] for d in documents if d.id in self._documents])
        for document in documents:
            self._documents[document.id] = document
            self._by_key[document.key] = document
            for name, value in document.metadata.items():
                self._postings.setdefault(name, {}).setdefault(canonical(value), set()).add(document.key)
        self._index.add(np.asarray([d.key for d in documents], dtype=np.int64), vectors)

    def apply_delete(self, ids: Iterable[str]) -> int:
        """Remove documents by id; unknown ids are ignored. Hold the lock."""
        gone = [self._documents[i] for i in dict.fromkeys(ids) if i in self._documents]
        self._forget(gone)
        return len(gone)

    def existing_ids(self, ids: Iterable[str]) -> list[str]:
        return [i for i in dict.fromkeys(ids) if i in self._documents]

    def _forget(self, documents: list[StoredDocument]) -> None:
        for document in documents:
            # A batch may name one id twice: the first pass already removed it.
            if self._by_key.pop(document.key, None) is None:
                continue
            del self._documents[document.id]
            for name, value in document.metadata.items():
                values = self._postings[name]
                keys = values[canonical(value)]
                keys.discard(document.key)
                if not keys:
                    del values[canonical(value)]
                if not values:
                    del self._postings[name]
        self._index.remove(d.key for d in documents)

    def _allowed(self, where: dict[str, Scalar]) -> set[int] | None:
        """Keys of documents matching every (key, value) of the filter; None when there is no filter."""
        allowed: set[int] | None = None
        for name, value in where.items():
            values = self._postings.get(name)
            if values is None:
                raise InvalidArgument(
                    f"filter.{name}", f"no document of collection {self.name!r} has the metadata key {name!r}"
                )
            keys = values.get(canonical(value), set())
            allowed = set(keys) if allowed is None else allowed & keys
        return allowed

    def search(self, query: np.ndarray, k: int, where: dict[str, Scalar]) -> list[Hit]:
        """Top-``k`` documents by cosine to the unit vector ``query``; takes the lock."""
        with self.lock:
            allowed = self._allowed(where)
            return [Hit(self._by_key[key], score) for key, score in self._index.search(query, k, allowed)]
