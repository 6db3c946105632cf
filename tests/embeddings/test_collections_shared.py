"""Collections in one real PostgreSQL shared by two stores (two replicas' worth), with no model:
documents carry their own random unit vectors. Also the bounds, on both stores."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from services.embeddings.collection import CollectionLimits
from services.embeddings.collection_index import AnnConfig
from services.embeddings.collection_store import CollectionStore, NewDocument
from services.embeddings.collection_store_pg import PostgresCollectionStore
from shared.errors import AlreadyExists, NotFound, ResourceExhausted, Unavailable
from tools.state_servers import PostgresServer

DIM = 8


def doc(doc_id: str, seed: int, **metadata: str | float | bool) -> NewDocument:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return NewDocument(doc_id, f"text of {doc_id}", dict(metadata), v / np.linalg.norm(v))


async def search_ids(store: PostgresCollectionStore | CollectionStore, name: str, query: NewDocument) -> list[str]:
    collection = await store.current(name)
    return [hit.document.id for hit in collection.search(query.vector, 3, {})]


@pytest.mark.slow
async def test_written_through_one_found_through_the_other(postgres_url: str) -> None:
    a, b = PostgresCollectionStore(postgres_url, AnnConfig()), PostgresCollectionStore(postgres_url, AnnConfig())
    try:
        await a.create("notes", "m", DIM)
        with pytest.raises(AlreadyExists):
            await b.create("notes", "m", DIM)
        first, second = doc("d1", 1, colour="red"), doc("d2", 2)
        await a.upsert(await a.current("notes"), [first, second])
        assert (await search_ids(b, "notes", first))[0] == "d1"
        collection = await b.current("notes")
        assert len(collection) == 2 and collection.search(first.vector, 1, {"colour": "red"})[0].document.id == "d1"
        replaced = doc("d1", 3)  # same id, another vector, no metadata
        await b.upsert(await b.current("notes"), [replaced])
        assert (await search_ids(a, "notes", replaced))[0] == "d1"
        assert len(await a.current("notes")) == 2
        assert await a.delete(await a.current("notes"), ["d2", "missing"]) == 1
        assert await search_ids(b, "notes", second) == ["d1"]
        await b.drop("notes")
        with pytest.raises(NotFound):
            await a.current("notes")
        await a.create("notes", "m", DIM)  # created again: nothing of the old one survives
        assert len(await b.current("notes")) == 0 and [c.name for c in await b.current_all()] == ["notes"]
    finally:
        a.close()
        b.close()


@pytest.mark.slow
async def test_concurrent_writes_through_two_stores_all_land(postgres_url: str) -> None:
    a, b = PostgresCollectionStore(postgres_url, AnnConfig()), PostgresCollectionStore(postgres_url, AnnConfig())
    try:
        await a.create("notes", "m", DIM)

        async def write(store: PostgresCollectionStore, prefix: str) -> None:
            for i in range(20):
                await store.upsert(await store.current("notes"), [doc(f"{prefix}{i}", i), doc(f"{prefix}x", 99 + i)])

        await asyncio.gather(write(a, "a"), write(b, "b"), write(a, "c"), write(b, "d"))
        ids_a = {d.id for d in (await a.current("notes"))._documents.values()}
        ids_b = {d.id for d in (await b.current("notes"))._documents.values()}
        assert ids_a == ids_b and len(ids_a) == 4 * 21
    finally:
        a.close()
        b.close()


@pytest.mark.slow
async def test_bounds_hold_across_stores(postgres_url: str) -> None:
    limits = CollectionLimits(max_documents=3, max_bytes=10_000, max_collections=1)
    a, b = (
        PostgresCollectionStore(postgres_url, AnnConfig(), limits),
        PostgresCollectionStore(postgres_url, AnnConfig(), limits),
    )
    try:
        await a.create("notes", "m", DIM)
        with pytest.raises(ResourceExhausted):
            await b.create("more", "m", DIM)
        await a.upsert(await a.current("notes"), [doc("d1", 1), doc("d2", 2)])
        with pytest.raises(ResourceExhausted):
            await b.upsert(await b.current("notes"), [doc("d3", 3), doc("d4", 4)])
        await b.upsert(await b.current("notes"), [doc("d1", 5), doc("d3", 3)])  # a replacement adds nothing
        assert len(await a.current("notes")) == 3
        with pytest.raises(ResourceExhausted):
            await a.upsert(await a.current("notes"), [NewDocument("big", "x" * 20_000, {}, doc("big", 1).vector)])
    finally:
        a.close()
        b.close()


async def test_bounds_on_the_one_machine_store(tmp_path: Path) -> None:
    store = CollectionStore(tmp_path, AnnConfig(), CollectionLimits(max_documents=2, max_bytes=10_000))
    try:
        collection = await store.create("notes", "m", DIM)
        await store.upsert(collection, [doc("d1", 1), doc("d2", 2)])
        with pytest.raises(ResourceExhausted):
            await store.upsert(collection, [doc("d3", 3)])
        await store.upsert(collection, [doc("d2", 4)])
        assert len(collection) == 2
    finally:
        store.close()


@pytest.mark.slow
async def test_postgres_away_unavailable_then_back_without_restart() -> None:
    server = PostgresServer()
    server.start()
    try:
        store = PostgresCollectionStore(server.url, AnnConfig())
        await store.create("notes", "m", DIM)
        await store.upsert(await store.current("notes"), [doc("d1", 1)])
        server.stop()
        with pytest.raises(Unavailable):
            await store.current("notes")
        with pytest.raises(Unavailable):
            await store.upsert(store.get("notes"), [doc("d2", 2)])
        server.start()
        await store.upsert(await store.current("notes"), [doc("d2", 2)])
        assert await search_ids(store, "notes", doc("d2", 2)) == ["d2", "d1"]
        store.close()
    finally:
        server.remove()


@pytest.mark.slow
async def test_a_replica_behind_pruned_tombstones_reloads_whole(postgres_url: str) -> None:
    a = PostgresCollectionStore(postgres_url, AnnConfig(), tombstone_versions=3)
    b = PostgresCollectionStore(postgres_url, AnnConfig(), tombstone_versions=3)
    try:
        await a.create("notes", "m", DIM)
        await a.upsert(await a.current("notes"), [doc("d1", 1), doc("d2", 2), doc("d3", 3)])
        assert len(await b.current("notes")) == 3  # b is at version 1
        for i in range(12):  # replace and delete while b looks away
            await a.upsert(await a.current("notes"), [doc("d1", 10 + i)])
        await a.delete(await a.current("notes"), ["d2"])
        import psycopg

        with psycopg.connect(postgres_url) as conn:
            kept = conn.execute("SELECT COUNT(*) FROM removed_documents").fetchone()[0]
        assert kept < 12  # pruned
        collection = await b.current("notes")
        assert sorted(d.id for d in collection._documents.values()) == ["d1", "d3"]
        assert collection.search(doc("d1", 21).vector, 1, {})[0].document.id == "d1"
        assert collection.bytes == (await a.current("notes")).bytes
    finally:
        a.close()
        b.close()
