"""One collection in memory: its documents, a metadata index for filters, and its vectors.

The database is the truth (collection_store); this is rebuilt from it at start
and updated after each durable write. Searches (worker threads) and writes
(the store's thread) take the collection's lock.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from services.embeddings.collection_index import AnnConfig, VectorIndex
from services.embeddings.collection_metadata import Canonical, Scalar, canonical
from shared.errors import InvalidArgument, ResourceExhausted


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


def metadata_bytes(metadata: dict[str, Scalar]) -> int:
    """Bytes of metadata as stored (sorted-key JSON)."""
    return len(json.dumps(metadata, sort_keys=True).encode())


def document_bytes(text: str, metadata: dict[str, Scalar], dimension: int) -> int:
    """What a document costs in memory and on disk, roughly: its text, metadata and float32 vector."""
    return len(text.encode()) + metadata_bytes(metadata) + 4 * dimension


@dataclass(frozen=True)
class CollectionLimits:
    """Bounds of one collection (every collection is held in memory): past them, RESOURCE_EXHAUSTED."""

    max_documents: int = 200_000
    max_bytes: int = 512 * 1024 * 1024
    max_collections: int = 1000

    def check(self, collection: Collection, upserts: dict[str, int]) -> None:
        """Refuse an upsert of ``upserts`` (id -> document bytes) that would take ``collection`` past a bound."""
        count, size = collection.projected(upserts)
        if count > self.max_documents:
            raise ResourceExhausted(
                f"collection {collection.name!r} would hold {count} documents; the limit is {self.max_documents}",
                f"collection:{collection.name}",
            )
        if size > self.max_bytes:
            raise ResourceExhausted(
                f"collection {collection.name!r} would hold {size} bytes; the limit is {self.max_bytes}",
                f"collection:{collection.name}",
            )


class Collection:
    def __init__(self, cid: int, name: str, model: str, dimension: int, ann: AnnConfig) -> None:
        self.cid = cid
        self.name = name
        self.model = model
        self.dimension = dimension
        self.lock = threading.Lock()
        self.deleted = False  # set when dropped, so that a write already under way is refused
        self.version = 0  # shared store: the database version this memory reflects
        self.sync_lock = threading.Lock()  # shared store: one catch-up or write at a time
        self._ann = ann
        self.clear()

    def clear(self) -> None:
        """Forget every document (a shared store reloading from scratch). Hold the lock."""
        self.bytes = 0
        self._documents: dict[str, StoredDocument] = {}
        self._by_key: dict[int, StoredDocument] = {}
        # metadata key -> value -> document keys: a filter is an intersection of these sets.
        self._postings: dict[str, dict[Canonical, set[int]]] = {}
        self._index = VectorIndex(self.dimension, self._ann)

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
            self.bytes += document_bytes(document.text, document.metadata, self.dimension)
            for name, value in document.metadata.items():
                self._postings.setdefault(name, {}).setdefault(canonical(value), set()).add(document.key)
        self._index.add(np.asarray([d.key for d in documents], dtype=np.int64), vectors)

    def apply_delete(self, ids: Iterable[str]) -> int:
        """Remove documents by id; unknown ids are ignored. Hold the lock."""
        gone = [self._documents[i] for i in dict.fromkeys(ids) if i in self._documents]
        self._forget(gone)
        return len(gone)

    def projected(self, upserts: dict[str, int]) -> tuple[int, int]:
        """Documents and bytes after storing ``upserts`` (id -> bytes), replacing those with the same id."""
        count, size = len(self._documents), self.bytes
        for doc_id, doc_bytes in upserts.items():
            old = self._documents.get(doc_id)
            if old is None:
                count += 1
            else:
                size -= document_bytes(old.text, old.metadata, self.dimension)
            size += doc_bytes
        return count, size

    def apply_remove_keys(self, keys: Iterable[int]) -> None:
        """Remove documents by row key (a shared store's change feed); unknown keys are ignored. Hold the lock."""
        self._forget([self._by_key[k] for k in dict.fromkeys(keys) if k in self._by_key])

    def existing_ids(self, ids: Iterable[str]) -> list[str]:
        return [i for i in dict.fromkeys(ids) if i in self._documents]

    def _forget(self, documents: list[StoredDocument]) -> None:
        for document in documents:
            # A batch may name one id twice: the first pass already removed it.
            if self._by_key.pop(document.key, None) is None:
                continue
            del self._documents[document.id]
            self.bytes -= document_bytes(document.text, document.metadata, self.dimension)
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
