"""Durable storage of collections: one SQLite database in WAL mode with synchronous=FULL.

Why SQLite: it is in the standard library, and in WAL mode with
``synchronous=FULL`` a COMMIT returns only after the write-ahead log is fsynced,
so a write we acknowledge survives kill -9 (and power loss), while a write in
flight when the process dies is rolled back whole at the next open: never half
a batch. Vectors are stored as little-endian float32 blobs, unit-normalised.

All database work runs on one dedicated thread, in call order: writes never
contend for the database lock, and each write updates the in-memory collection
right after its COMMIT, so memory sees writes in the order the disk does.
At start, every collection is read back into memory (collection.Collection).

This is the one-machine store; collection_store_pg.PostgresCollectionStore is
the shared one, with the same methods (`open_collection_store` picks by
settings). The memory here is the truth of reads, as this process is the
database's only writer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from services.embeddings.collection import Collection, CollectionLimits, StoredDocument, document_bytes
from services.embeddings.collection_index import AnnConfig
from services.embeddings.collection_metadata import Scalar
from shared.durable_sqlite import open_durable, transaction
from shared.errors import AlreadyExists, NotFound, ResourceExhausted

log = logging.getLogger(__name__)

T = TypeVar("T")

DATABASE = "collections.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
    cid INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    dimension INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    -- AUTOINCREMENT: a key is never reused, so the HNSW index can key vectors by it.
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    cid INTEGER NOT NULL,
    id TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    vector BLOB NOT NULL,
    UNIQUE (cid, id)
);
"""


@dataclass(frozen=True)
class NewDocument:
    """A validated document with its unit vector, ready to store."""

    id: str
    text: str
    metadata: dict[str, Scalar]
    vector: np.ndarray

    def row(self, cid: int) -> tuple[int, str, str, str, bytes]:
        """The document's (cid, id, text, metadata, vector) columns, as both stores write them."""
        return cid, self.id, self.text, json.dumps(self.metadata, sort_keys=True), self.vector.astype("<f4").tobytes()


def check_upsert(collection: Collection, documents: list[NewDocument], limits: CollectionLimits) -> None:
    limits.check(collection, {d.id: document_bytes(d.text, d.metadata, collection.dimension) for d in documents})


def check_collection_count(count: int, limits: CollectionLimits) -> None:
    if count >= limits.max_collections:
        raise ResourceExhausted(
            f"there are already {count} collections; the limit is {limits.max_collections}", "collections"
        )


class CollectionStore:
    def __init__(self, directory: Path, ann: AnnConfig, limits: CollectionLimits | None = None) -> None:
        self.path = directory / DATABASE
        self.ann = ann
        self.limits = limits or CollectionLimits()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collections-db")
        # Opened here, then used only on the executor's one thread.
        self._db = open_durable(self.path, SCHEMA)
        self._collections: dict[str, Collection] = {}
        self._load()

    # -- start-up ---------------------------------------------------------

    def _load(self) -> None:
        started = time.perf_counter()
        rows = self._db.execute("SELECT cid, name, model, dimension FROM collections ORDER BY name").fetchall()
        for cid, name, model, dimension in rows:
            collection = Collection(cid, name, model, dimension, self.ann)
            documents, blobs = [], []
            cursor = self._db.execute(
                "SELECT key, id, text, metadata, vector FROM documents WHERE cid = ? ORDER BY key", (cid,)
            )
            for key, doc_id, text, metadata, vector in cursor:
                documents.append(StoredDocument(key, doc_id, text, json.loads(metadata)))
                blobs.append(vector)
            vectors = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dimension)
            collection.apply_upsert(documents, vectors.astype(np.float32))
            self._collections[name] = collection
        log.info(
            "collections: %d loaded from %s in %.2fs",
            len(self._collections),
            self.path,
            time.perf_counter() - started,
        )

    # -- reads (any thread) -------------------------------------------------

    def get(self, name: str, field: str = "collection") -> Collection:
        collection = self._collections.get(name)
        if collection is None:
            raise NotFound("collection", name, field)
        return collection

    def all(self) -> list[Collection]:
        snapshot = dict(self._collections)  # one C-level copy: safe while the store thread adds or drops
        return [snapshot[n] for n in sorted(snapshot)]

    async def current(self, name: str, field: str = "collection") -> Collection:
        """The collection as the truth has it now (here: memory, this process being the only writer)."""
        return self.get(name, field)

    async def current_all(self) -> list[Collection]:
        return self.all()

    # -- writes (the store's thread) -----------------------------------------

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db)  # COMMIT returns once the WAL is fsynced

    async def create(self, name: str, model: str, dimension: int) -> Collection:
        return await self._run(self._create, name, model, dimension)

    def _create(self, name: str, model: str, dimension: int) -> Collection:
        if name in self._collections:
            raise AlreadyExists("collection", name)
        check_collection_count(len(self._collections), self.limits)
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO collections (name, model, dimension, created_at) VALUES (?, ?, ?, ?)",
                (name, model, dimension, time.time()),
            )
        collection = Collection(int(cursor.lastrowid or 0), name, model, dimension, self.ann)
        self._collections[name] = collection
        return collection

    async def drop(self, name: str) -> None:
        await self._run(self._drop, name)

    def _drop(self, name: str) -> None:
        collection = self.get(name, "name")
        with self._transaction() as db:
            db.execute("DELETE FROM documents WHERE cid = ?", (collection.cid,))
            db.execute("DELETE FROM collections WHERE cid = ?", (collection.cid,))
        with collection.lock:
            collection.deleted = True
        del self._collections[name]

    async def upsert(self, collection: Collection, documents: list[NewDocument]) -> None:
        """Store documents durably, then show them to searches. Ids must be unique within the call."""
        await self._run(self._upsert, collection, documents)

    def _upsert(self, collection: Collection, documents: list[NewDocument]) -> None:
        if collection.deleted:  # dropped (maybe recreated) while this call was embedding
            raise NotFound("collection", collection.name, "collection")
        check_upsert(collection, documents, self.limits)  # exact: this thread is the only writer
        stored = []
        with self._transaction() as db:
            for doc in documents:
                # REPLACE deletes the old row and inserts a new one with a fresh key.
                cursor = db.execute(
                    "INSERT OR REPLACE INTO documents (cid, id, text, metadata, vector) VALUES (?, ?, ?, ?, ?)",
                    doc.row(collection.cid),
                )
                stored.append(StoredDocument(int(cursor.lastrowid or 0), doc.id, doc.text, doc.metadata))
        vectors = np.stack([doc.vector for doc in documents]).astype(np.float32, copy=False)
        with collection.lock:
            collection.apply_upsert(stored, vectors)

    async def delete(self, collection: Collection, ids: list[str]) -> int:
        return await self._run(self._delete, collection, ids)

    def _delete(self, collection: Collection, ids: list[str]) -> int:
        if collection.deleted:
            raise NotFound("collection", collection.name, "collection")
        present = collection.existing_ids(ids)
        if not present:
            return 0
        with self._transaction() as db:
            db.executemany("DELETE FROM documents WHERE cid = ? AND id = ?", [(collection.cid, i) for i in present])
        with collection.lock:
            return collection.apply_delete(present)

    def close(self) -> None:
        """Finish queued writes and close the database (a checkpoint folds the WAL in)."""
        self._executor.shutdown(wait=True)
        self._db.close()
