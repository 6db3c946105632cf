"""Collections in PostgreSQL, shared by every replica; each replica searches its own memory.

Why not pgvector: the in-memory index (exact, or usearch HNSW past a size) is
what one machine already searches, and it works with any PostgreSQL, with or
without the extension; PostgreSQL is the truth, memory a cache kept in step.

How memory keeps in step (the change feed): every write to a collection bumps
``collections.version`` in its transaction. That UPDATE row-locks the
collection until COMMIT, so a collection's writes commit in version order, one
at a time across all replicas. Each stored document row carries the version
that wrote it; a row a write replaces or deletes leaves a tombstone
(``removed_documents``) with that version. A replica whose memory is at version
v reads, in one REPEATABLE READ snapshot, the rows and tombstones above v and
the collection's version, and applies them.

The guarantee: every read (Search, GetCollection, ListCollections) first reads
the collection's version (one indexed query) and catches up when it moved, so a
write acknowledged through any replica is visible to every search that starts
after the acknowledgement, through any replica (read-after-write, visibility
bound zero; the price is one round trip per search). Writes keep the bounds
exactly: the bound check runs after the row lock and a catch-up, when memory
holds every committed write.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from services.embeddings.collection import Collection, CollectionLimits, StoredDocument
from services.embeddings.collection_index import AnnConfig
from services.embeddings.collection_store import NewDocument, check_collection_count, check_upsert
from shared.errors import AlreadyExists, NotFound, Unavailable
from shared.postgres import Postgres, Tx, is_unique_violation

log = logging.getLogger(__name__)

T = TypeVar("T")

STEPS = [
    """
    CREATE TABLE IF NOT EXISTS collections (
        cid BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        model TEXT NOT NULL,
        dimension INTEGER NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        version BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS documents (
        key BIGSERIAL PRIMARY KEY,  -- never reused: the HNSW index keys vectors by it
        cid BIGINT NOT NULL REFERENCES collections (cid) ON DELETE CASCADE,
        id TEXT NOT NULL,
        text TEXT NOT NULL,
        metadata TEXT NOT NULL,
        vector BYTEA NOT NULL,
        version BIGINT NOT NULL,
        UNIQUE (cid, id)
    );
    CREATE INDEX IF NOT EXISTS documents_by_version ON documents (cid, version);
    CREATE TABLE IF NOT EXISTS removed_documents (
        cid BIGINT NOT NULL REFERENCES collections (cid) ON DELETE CASCADE,
        key BIGINT NOT NULL,
        version BIGINT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS removed_by_version ON removed_documents (cid, version);
    """,
    # Tombstones at or below pruned_version are gone: memory older than that reloads whole.
    "ALTER TABLE collections ADD COLUMN pruned_version BIGINT NOT NULL DEFAULT 0",
]


class PostgresCollectionStore:
    def __init__(
        self,
        url: str,
        ann: AnnConfig,
        limits: CollectionLimits | None = None,
        statement_timeout_ms: int = 5000,
        tombstone_versions: int = 10_000,
    ) -> None:
        """``tombstone_versions``: how many versions of tombstones a collection keeps; a replica
        further behind than that (say, one partitioned for a long time) reloads the collection."""
        self.ann = ann
        self.tombstone_versions = tombstone_versions
        self.limits = limits or CollectionLimits()
        self.pg = Postgres(url, statement_timeout_ms=statement_timeout_ms, component="collections", steps=STEPS)
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="collections-pg")
        self._collections: dict[str, Collection] = {}
        started = time.perf_counter()
        try:
            self._all()  # load every collection before the port serves
        except Unavailable as exc:  # serve what needs no database; each read catches up
            log.warning("collections: PostgreSQL not read at start (%s); catching up on use", exc.message)
        log.info(
            "collections: %d loaded from PostgreSQL in %.2fs", len(self._collections), time.perf_counter() - started
        )

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- reads: memory brought up to the database's version first ------------

    def get(self, name: str, field: str = "collection") -> Collection:
        """Memory as last caught up (no database round trip)."""
        collection = self._collections.get(name)
        if collection is None:
            raise NotFound("collection", name, field)
        return collection

    async def current(self, name: str, field: str = "collection") -> Collection:
        return await self._run(self._current, name, field)

    async def current_all(self) -> list[Collection]:
        return await self._run(self._all)

    def _current(self, name: str, field: str) -> Collection:
        rows = self.pg.query("SELECT cid, model, dimension, version FROM collections WHERE name = ?", (name,))
        if not rows:
            self._forget(name)
            raise NotFound("collection", name, field)
        return self._in_step(name, *rows[0])

    def _all(self) -> list[Collection]:
        rows = self.pg.query("SELECT name, cid, model, dimension, version FROM collections ORDER BY name")
        for gone in set(self._collections) - {r[0] for r in rows}:
            self._forget(gone)
        return [self._in_step(*row) for row in rows]

    def _forget(self, name: str) -> None:
        collection = self._collections.pop(name, None)
        if collection is not None:
            with collection.lock:
                collection.deleted = True

    def _in_step(self, name: str, cid: int, model: str, dimension: int, version: int) -> Collection:
        collection = self._collections.get(name)
        if collection is None or collection.cid != cid:  # new, or dropped and created again
            if collection is not None:
                self._forget(name)
            collection = self._collections.setdefault(name, Collection(cid, name, model, dimension, self.ann))
        if collection.version < version:
            with collection.sync_lock:
                if collection.version < version:
                    with self.pg.transaction(repeatable_read=True) as tx:
                        self._catch_up(tx, collection)
        return collection

    def _catch_up(self, tx: Tx, collection: Collection, version: int | None = None, pruned: int | None = None) -> None:
        """Apply what committed above memory's version, as of ``tx``'s snapshot. Hold sync_lock.

        ``version``, ``pruned``: where the database stands, when the caller knows (a write holding
        the row lock).
        """
        if version is None or pruned is None:
            row = tx.execute(
                "SELECT version, pruned_version FROM collections WHERE cid = ?", (collection.cid,)
            ).fetchone()
            if row is None:
                return  # dropped: the next read finds it gone
            version, pruned = int(row[0]), int(row[1])
        if version <= collection.version:
            return
        if collection.version < pruned:  # the tombstones it needs are pruned: reload whole
            log.info("collections: %s is %d versions behind; reloading", collection.name, version - collection.version)
            with collection.lock:
                collection.clear()
                collection.version = 0
        removed = [
            int(r[0])
            for r in tx.execute(
                "SELECT key FROM removed_documents WHERE cid = ? AND version > ?", (collection.cid, collection.version)
            ).fetchall()
        ]
        documents, blobs = [], []
        for key, doc_id, text, metadata, vector in tx.execute(
            "SELECT key, id, text, metadata, vector FROM documents WHERE cid = ? AND version > ? ORDER BY key",
            (collection.cid, collection.version),
        ).fetchall():
            documents.append(StoredDocument(int(key), doc_id, text, json.loads(metadata)))
            blobs.append(bytes(vector))
        with collection.lock:
            collection.apply_remove_keys(removed)
            if documents:
                vectors = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), collection.dimension)
                collection.apply_upsert(documents, vectors.astype(np.float32))
            collection.version = version

    def all(self) -> list[Collection]:
        snapshot = dict(self._collections)
        return [snapshot[n] for n in sorted(snapshot)]

    # -- writes ---------------------------------------------------------------

    async def create(self, name: str, model: str, dimension: int) -> Collection:
        return await self._run(self._create, name, model, dimension)

    def _create(self, name: str, model: str, dimension: int) -> Collection:
        try:
            with self.pg.transaction() as tx:
                # One creation at a time, so that the count bound holds across replicas.
                tx.execute("SELECT pg_advisory_xact_lock(hashtext('lumen-collections-create'))")
                count = tx.execute("SELECT COUNT(*) FROM collections").fetchone()
                check_collection_count(int(count[0]) if count else 0, self.limits)
                row = tx.execute(
                    "INSERT INTO collections (name, model, dimension, created_at) VALUES (?, ?, ?, ?) RETURNING cid",
                    (name, model, dimension, time.time()),
                ).fetchone()
        except Exception as exc:
            if is_unique_violation(exc):
                raise AlreadyExists("collection", name) from None
            raise
        return self._in_step(name, int(row[0]), model, dimension, 0)

    async def drop(self, name: str) -> None:
        await self._run(self._drop, name)

    def _drop(self, name: str) -> None:
        with self.pg.transaction() as tx:
            if tx.execute("DELETE FROM collections WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound("collection", name, "name")
        self._forget(name)

    def _write(self, collection: Collection, change: Callable[[Tx, int], T]) -> T:
        """Run ``change(tx, version)`` as the collection's next version, memory caught up first."""
        with collection.sync_lock:
            with self.pg.transaction() as tx:
                row = tx.execute(
                    "UPDATE collections SET version = version + 1 WHERE cid = ? RETURNING version, pruned_version",
                    (collection.cid,),
                ).fetchone()
                if row is None:
                    self._forget(collection.name)
                    raise NotFound("collection", collection.name, "collection")
                version, pruned = int(row[0]), int(row[1])
                # Others' writes, all committed before our row lock (ours is not in the table yet).
                self._catch_up(tx, collection, version - 1, pruned)
                result = change(tx, version)
                if version - pruned >= 2 * self.tombstone_versions:  # prune now and then, not every write
                    keep_from = version - self.tombstone_versions
                    tx.execute(
                        "DELETE FROM removed_documents WHERE cid = ? AND version <= ?", (collection.cid, keep_from)
                    )
                    tx.execute("UPDATE collections SET pruned_version = ? WHERE cid = ?", (keep_from, collection.cid))
            # Committed: apply ours from the rows themselves, so memory is what the database holds.
            with self.pg.transaction(repeatable_read=True) as tx:
                self._catch_up(tx, collection)
            return result

    async def upsert(self, collection: Collection, documents: list[NewDocument]) -> None:
        """Store documents durably, then show them to searches. Ids must be unique within the call."""
        await self._run(self._write, collection, lambda tx, version: self._upsert(tx, version, collection, documents))

    def _upsert(self, tx: Tx, version: int, collection: Collection, documents: list[NewDocument]) -> None:
        check_upsert(collection, documents, self.limits)
        replaced = tx.execute(
            "DELETE FROM documents WHERE cid = ? AND id = ANY(?) RETURNING key",
            (collection.cid, [d.id for d in documents]),
        ).fetchall()
        tx.executemany(
            "INSERT INTO removed_documents (cid, key, version) VALUES (?, ?, ?)",
            [(collection.cid, int(r[0]), version) for r in replaced],
        )
        tx.executemany(
            "INSERT INTO documents (cid, id, text, metadata, vector, version) VALUES (?, ?, ?, ?, ?, ?)",
            [(*d.row(collection.cid), version) for d in documents],
        )

    async def delete(self, collection: Collection, ids: list[str]) -> int:
        return await self._run(self._write, collection, lambda tx, version: self._delete(tx, version, collection, ids))

    def _delete(self, tx: Tx, version: int, collection: Collection, ids: list[str]) -> int:
        removed = tx.execute(
            "DELETE FROM documents WHERE cid = ? AND id = ANY(?) RETURNING key", (collection.cid, list(set(ids)))
        ).fetchall()
        tx.executemany(
            "INSERT INTO removed_documents (cid, key, version) VALUES (?, ?, ?)",
            [(collection.cid, int(r[0]), version) for r in removed],
        )
        return len(removed)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.pg.close()


def open_collection_store(url: str, directory: Any, ann: AnnConfig, limits: CollectionLimits) -> Any:
    """PostgreSQL when ``url`` is set, else SQLite under ``directory``."""
    if url:
        return PostgresCollectionStore(url, ann, limits)
    from services.embeddings.collection_store import CollectionStore

    return CollectionStore(directory, ann, limits)
