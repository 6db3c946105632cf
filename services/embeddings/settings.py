"""Settings of the embeddings service (environment prefix LUMEN_EMBEDDINGS_)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.embeddings.collection import CollectionLimits
from shared.model_service import ROOT
from shared.settings import ModelServerSettings, database_url, setting


@dataclass
class EmbeddingsSettings(ModelServerSettings):
    port: int = setting(50054, "TCP port of the embeddings service.")
    max_texts: int = setting(256, "Most texts in one Embed call (and one EmbedStream chunk).")
    max_text_chars: int = setting(8192, "Longest text accepted, in characters.")
    max_call_chars: int = setting(
        16_384,
        "Most characters of all texts of one Embed call (one EmbedStream chunk, one Similarity call, the texts "
        "one UpsertDocuments call embeds) together: "
        "bounds a call's CPU time (MiniLM reads ~0.5 ms a token here; see make bench-limits).",
    )
    max_words: int = setting(1024, "Most words in one GetWordVectors call (and in positive plus negative).")
    max_word_chars: int = setting(256, "Longest word accepted, in characters.")
    max_top_k: int = setting(1000, "Largest top_k of MostSimilarWords and Search.")
    collections_dir: str = setting(
        "", "Folder of the collections database (SQLite, WAL). Empty uses var/collections under the repo root."
    )
    database_url: str = database_url("collections", "collections_dir")
    max_collections: int = setting(1000, "Most collections; creating one more is RESOURCE_EXHAUSTED.")
    max_collection_documents: int = setting(
        200_000, "Most documents in one collection (all are held in memory); past it RESOURCE_EXHAUSTED."
    )
    max_collection_bytes: int = setting(
        512 * 1024 * 1024,
        "Most bytes in one collection (texts, metadata JSON and float32 vectors); past it RESOURCE_EXHAUSTED.",
    )
    max_metadata_bytes: int = setting(
        16 * 1024, "Largest metadata of one document, as JSON bytes; past it that document is RESOURCE_EXHAUSTED."
    )
    max_upsert_documents: int = setting(256, "Most documents in one UpsertDocuments call.")
    max_delete_ids: int = setting(1024, "Most ids in one DeleteDocuments call.")
    max_document_id_chars: int = setting(256, "Longest document id, in characters.")
    ann_threshold: int = setting(
        20000,
        "Documents from which a collection is searched through an approximate (usearch HNSW) index; "
        "below it search is exact. The index is dropped again under half this size.",
    )
    ann_expansion_search: int = setting(
        128, "HNSW search breadth (usearch expansion_search): higher is better recall and slower."
    )

    def collection_limits(self) -> CollectionLimits:
        return CollectionLimits(self.max_collection_documents, self.max_collection_bytes, self.max_collections)

    def collections_path(self) -> Path:
        return Path(self.collections_dir) if self.collections_dir else ROOT / "var" / "collections"
