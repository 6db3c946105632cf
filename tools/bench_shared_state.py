"""Embedded vs shared state, same run: search and upsert latency of the collection stores
(SQLite vs PostgreSQL), read-after-write across two PostgreSQL stores, and gateway admission
(memory vs Redis). Real servers on loopback (tools/state_servers.py); a benchmark, not a test.

    .venv/bin/python -m tools.bench_shared_state [--documents 5000] [--searches 500]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from gateway.key_store import ApiKey
from gateway.meter import MemoryMeter, RedisMeter
from services.embeddings.collection_index import AnnConfig
from services.embeddings.collection_store import CollectionStore, NewDocument
from services.embeddings.collection_store_pg import PostgresCollectionStore
from tools.state_servers import PostgresServer, RedisServer

DIM = 384


def documents(n: int, start: int = 0) -> list[NewDocument]:
    rng = np.random.default_rng(start)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        NewDocument(f"d{start + i}", f"document {start + i}", {"group": f"g{i % 10}"}, vectors[i]) for i in range(n)
    ]


def ms(samples: list[float]) -> str:
    p50 = statistics.median(samples) * 1e3
    p99 = sorted(samples)[int(0.99 * (len(samples) - 1))] * 1e3
    return f"p50 {p50:.3f} ms, p99 {p99:.3f} ms"


async def search_latency(store: CollectionStore | PostgresCollectionStore, queries: np.ndarray) -> list[float]:
    out = []
    for query in queries:
        started = time.perf_counter()
        collection = await store.current("bench")  # what every Search does first
        await asyncio.to_thread(collection.search, query, 10, {})
        out.append(time.perf_counter() - started)
    return out


async def upsert_latency(store: CollectionStore | PostgresCollectionStore, batches: int, size: int) -> list[float]:
    out = []
    for b in range(batches):
        batch = documents(size, 10_000_000 + b * size)
        started = time.perf_counter()
        await store.upsert(await store.current("bench"), batch)
        out.append(time.perf_counter() - started)
    return out


async def main(n_documents: int, n_searches: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="lumen-bench-state-"))
    postgres, redis = PostgresServer(), RedisServer(root / "redis")
    postgres.start()
    redis.start()
    try:
        sqlite = CollectionStore(root / "sqlite", AnnConfig())
        shared = PostgresCollectionStore(postgres.url, AnnConfig())
        other = PostgresCollectionStore(postgres.url, AnnConfig())
        data = documents(n_documents)
        for store in (sqlite, shared):
            await store.create("bench", "m", DIM)
            for i in range(0, len(data), 256):
                await store.upsert(await store.current("bench"), data[i : i + 256])
        await other.current("bench")
        queries = np.stack([d.vector for d in documents(n_searches, 99)])
        print(f"collections: {n_documents} documents of {DIM} dims, {n_searches} searches top 10, exact")
        for name, store in (("sqlite (embedded)", sqlite), ("postgresql (shared)", shared)):
            await search_latency(store, queries[:20])  # warm
            print(f"  search   {name:<20} {ms(await search_latency(store, queries))}")
        for name, store in (("sqlite (embedded)", sqlite), ("postgresql (shared)", shared)):
            print(f"  upsert32 {name:<20} {ms(await upsert_latency(store, 30, 32))}")
        # Read-after-write: each write acknowledged by one store, searched at once through the other.
        seen = 0
        for i in range(100):
            doc = documents(1, 20_000_000 + i)[0]
            await shared.upsert(await shared.current("bench"), [doc])
            hits = (await other.current("bench")).search(doc.vector, 1, {})
            seen += hits[0].document.id == doc.id
        print(f"  read-after-write across two stores: {seen}/100 visible to the very next search")
        for store in (sqlite, shared, other):
            store.close()

        key = ApiKey(id="bench", sha256="0" * 64, calls_per_period=10**9, rate_per_s=1e6, burst=10**6)
        method = "/lumen.embeddings.v1.EmbeddingService/Embed"
        print("gateway admission (quota + rate + count), then settle:")
        for name, meter in (("memory", MemoryMeter()), ("redis", RedisMeter(redis.url))):
            samples = []
            for _ in range(1000):
                started = time.perf_counter()
                await meter.admit(key, method, True)
                await meter.settle(key, method, True, None)
                samples.append(time.perf_counter() - started)
            print(f"  {name:<8} {ms(samples)}")
            await meter.close()
    finally:
        redis.stop()
        postgres.remove()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--searches", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.documents, args.searches))
