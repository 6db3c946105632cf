"""Collections data plane: validation, embedding through the Embedder, durable writes, search.

Call-level mistakes (unknown collection, no documents, bad top_k, bad filter,
bad query vector) fail the call with a status naming the field. In an upsert, a
bad document gets its own status and the others are stored. Texts are embedded
by the collection's model through the Embedder, so they share the model's
dynamic batcher with Embed calls.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from google.protobuf import struct_pb2

from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2 as pb
from services.embeddings import collection_metadata
from services.embeddings.collection import Collection, Hit, metadata_bytes
from services.embeddings.collection_store import CollectionStore, NewDocument
from services.embeddings.collection_store_pg import PostgresCollectionStore
from services.embeddings.embedder import Embedder
from services.embeddings.settings import EmbeddingsSettings
from shared.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from shared.repository import Entry
from shared.results import Result
from shared.validation import check_top_k, check_total_chars

NAME = re.compile(r"[a-z0-9_-]{1,64}")


def check_name(name: str, field: str = "name") -> None:
    if not NAME.fullmatch(name):
        raise InvalidArgument(field, f"must be 1 to 64 characters of a-z, 0-9, '_' and '-', got {name!r}")


def parse_vector(vector: common_pb2.Vector, dimension: int, field: str) -> np.ndarray:
    """The unit vector of a caller's Vector, or InvalidArgument naming what is wrong."""
    if vector.values and vector.values_f32:
        raise InvalidArgument(field, "set values or values_f32, not both")
    if vector.values_f32:
        if len(vector.values_f32) % 4:
            raise InvalidArgument(f"{field}.values_f32", "must be float32 components, 4 bytes each")
        values, part = np.frombuffer(vector.values_f32, dtype="<f4").astype(np.float64), "values_f32"
    else:
        values, part = np.asarray(vector.values, dtype=np.float64), "values"
    if values.size == 0:
        raise InvalidArgument(field, "is empty")
    if vector.dimension and vector.dimension != values.size:
        raise InvalidArgument(f"{field}.dimension", f"says {vector.dimension} but {values.size} components were sent")
    if values.size != dimension:
        raise InvalidArgument(field, f"has {values.size} components; the collection's dimension is {dimension}")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise InvalidArgument(f"{field}.{part}[{bad[0]}]", f"must be a finite number, got {values[bad[0]]}")
    norm = float(np.linalg.norm(values))  # float64: float32 components near 1e38 would overflow
    if norm == 0.0:
        raise InvalidArgument(field, "is all zeros; cosine similarity needs a non-zero vector")
    return (values / norm).astype(np.float32)


@dataclass
class _Pending:
    id: str
    text: str
    metadata: dict[str, collection_metadata.Scalar]
    vector: np.ndarray | None


@dataclass(frozen=True)
class UpsertResult:
    statuses: list[Result[None]]  # OK: stored
    upserted: int
    tokens: int


@dataclass(frozen=True)
class Found:
    hits: list[Hit]
    tokens: int
    model: str  # the collection's model
    entry: Entry | None  # the model's entry when it embedded a text query


class Collections:
    def __init__(
        self, store: CollectionStore | PostgresCollectionStore, embedder: Embedder, settings: EmbeddingsSettings
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings

    async def create(self, name: str, model: str = "", version: str = "") -> Collection:
        check_name(name)
        with self.embedder.model(model, version) as lease:
            model_name, dimension = lease.entry.config.name, lease.model.dimension
        return await self.store.create(name, model_name, dimension)

    async def get(self, name: str) -> Collection:
        if not name:
            raise InvalidArgument("name", "is required")
        return await self.store.current(name, "name")

    async def list(self) -> list[Collection]:
        return await self.store.current_all()

    async def delete(self, name: str) -> None:
        if not name:
            raise InvalidArgument("name", "is required")
        await self.store.drop(name)

    async def _collection(self, name: str) -> Collection:
        if not name:
            raise InvalidArgument("collection", "is required")
        return await self.store.current(name)

    def _check_text(self, text: str, field: str, required: bool = True) -> None:
        if required and not text.strip():
            raise InvalidArgument(field, "must not be empty or only whitespace")
        if len(text) > self.settings.max_text_chars:
            raise InvalidArgument(field, f"has {len(text)} characters; at most {self.settings.max_text_chars}")

    def _parse_document(self, doc: pb.Document, field: str, dimension: int) -> _Pending:
        if not doc.id or len(doc.id) > self.settings.max_document_id_chars:
            raise InvalidArgument(f"{field}.id", f"must be 1 to {self.settings.max_document_id_chars} characters")
        metadata = collection_metadata.parse(doc.metadata, f"{field}.metadata")
        size = metadata_bytes(metadata)
        if size > self.settings.max_metadata_bytes:
            raise ResourceExhausted(
                f"{field}.metadata is {size} bytes as JSON; at most {self.settings.max_metadata_bytes}",
                f"{field}.metadata",
            )
        # With a vector the text is optional (stored, not embedded); without one it is what gets embedded.
        has_vector = doc.HasField("vector")
        self._check_text(doc.text, f"{field}.text", required=not has_vector)
        vector = parse_vector(doc.vector, dimension, f"{field}.vector") if has_vector else None
        return _Pending(doc.id, doc.text, metadata, vector)

    async def _embed(self, collection: Collection, texts: list[str]) -> tuple[np.ndarray, int, Entry]:
        """Unit vectors of ``texts`` by the collection's model, in chunks the Embedder accepts."""
        try:
            self.embedder.model(collection.model).release()
        except NotFound:
            raise FailedPrecondition(
                f"model {collection.model!r} of collection {collection.name!r} is not loaded"
            ) from None
        step = self.settings.max_texts
        results = await asyncio.gather(
            *(
                self.embedder.embed(texts[i : i + step], collection.model, normalize=True)
                for i in range(0, len(texts), step)
            )
        )
        vectors = np.concatenate([r.vectors for r in results])
        if vectors.shape[1] != collection.dimension:
            raise FailedPrecondition(
                f"model {collection.model!r} now gives {vectors.shape[1]} dimensions; "
                f"collection {collection.name!r} holds {collection.dimension}"
            )
        return vectors, sum(r.tokens for r in results), results[0].entry

    async def upsert(self, name: str, documents: Sequence[pb.Document]) -> UpsertResult:
        collection = await self._collection(name)
        if not documents:
            raise InvalidArgument("documents", "must hold at least one document")
        if len(documents) > self.settings.max_upsert_documents:
            raise InvalidArgument(
                "documents", f"holds {len(documents)} documents; at most {self.settings.max_upsert_documents} per call"
            )
        statuses: list[Result[None]] = [Result.of(None)] * len(documents)
        pending: dict[str, _Pending] = {}
        for i, doc in enumerate(documents):
            try:
                parsed = self._parse_document(doc, f"documents[{i}]", collection.dimension)
            except (InvalidArgument, ResourceExhausted) as exc:
                statuses[i] = Result.failed(exc)
                continue
            pending.pop(parsed.id, None)  # the same id twice in one call: the last one wins
            pending[parsed.id] = parsed
        tokens = 0
        to_embed = [p for p in pending.values() if p.vector is None]
        # The texts to embed bound the call's cost as Embed's do (256 x 8,192 characters took 32 s CPU).
        check_total_chars([p.text for p in to_embed], "documents", self.settings.max_call_chars)
        if to_embed:
            vectors, tokens, _ = await self._embed(collection, [p.text for p in to_embed])
            for p, vector in zip(to_embed, vectors, strict=True):
                p.vector = vector
        if pending:
            await self.store.upsert(
                collection, [NewDocument(p.id, p.text, p.metadata, p.vector) for p in pending.values()]
            )
        return UpsertResult(statuses, len(pending), tokens)

    async def delete_documents(self, name: str, ids: list[str]) -> int:
        collection = await self._collection(name)
        if not ids:
            raise InvalidArgument("ids", "must hold at least one id")
        if len(ids) > self.settings.max_delete_ids:
            raise InvalidArgument("ids", f"holds {len(ids)} ids; at most {self.settings.max_delete_ids} per call")
        for i, doc_id in enumerate(ids):
            if not doc_id:
                raise InvalidArgument(f"ids[{i}]", "must not be empty")
        return await self.store.delete(collection, ids)

    async def search(
        self,
        name: str,
        top_k: int,
        text: str | None = None,
        vector: common_pb2.Vector | None = None,
        where: struct_pb2.Struct | None = None,
    ) -> Found:
        """Hits best first, the tokens spent embedding a text query, and the model that embedded it."""
        collection = await self._collection(name)
        check_top_k(top_k, "top_k", self.settings.max_top_k)
        equal = collection_metadata.parse(where, "filter") if where is not None else {}
        tokens, entry = 0, None
        if vector is not None:
            query = parse_vector(vector, collection.dimension, "vector")
        elif text is not None:
            self._check_text(text, "text")
            vectors, tokens, entry = await self._embed(collection, [text])
            query = vectors[0]
        else:
            raise InvalidArgument("query", "set text or vector")
        hits = await asyncio.to_thread(collection.search, query, top_k, equal)
        return Found(hits, tokens, collection.model, entry)
