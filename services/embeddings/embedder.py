"""Sentence-embedding data plane: validation, truncation policy, batching, normalisation.

The servicer only converts protos; everything a caller can get wrong is
checked here and raised as a typed error naming the field.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from services.embeddings.runtime_sentence import TASK, Embedded, SentenceTransformerModel
from services.embeddings.settings import EmbeddingsSettings
from shared.errors import InvalidArgument
from shared.repository import Entry, Lease, ModelRepository
from shared.validation import check_texts, check_total_chars
from shared.vectors import l2_normalize


@dataclass(frozen=True)
class Embeddings:
    vectors: np.ndarray  # (n, dimension) float32
    tokens: int
    entry: Entry


class Embedder:
    def __init__(self, repository: ModelRepository, settings: EmbeddingsSettings) -> None:
        self.repository = repository
        self.settings = settings

    def model(self, name: str, version: str = "") -> Lease[SentenceTransformerModel]:
        """The sentence model serving a call, held (``with embedder.model(...) as lease:``)."""
        return self.repository.resolve(name, version, TASK, SentenceTransformerModel, capability="sentence embeddings")

    async def embed(
        self,
        texts: list[str],
        model: str = "",
        version: str = "",
        normalize: bool = False,
        truncate: bool = True,
        field: str = "texts",
        bounded: bool = False,
    ) -> Embeddings:
        """``bounded``: a caller's call, whose texts together must fit max_call_chars (the
        collections' own chunking calls this without it)."""
        check_texts(texts, field, self.settings.max_texts, self.settings.max_text_chars)
        if bounded:
            check_total_chars(texts, field, self.settings.max_call_chars)
        with self.model(model, version) as lease:
            if not truncate:
                await self._refuse_overlong(lease.model, texts, field)
            results: list[Embedded] = await lease.predict(texts)
        vectors = np.stack([r.vector for r in results]).astype(np.float32, copy=False)
        if normalize:
            vectors = l2_normalize(vectors)
        return Embeddings(vectors, sum(r.tokens for r in results), lease.entry)

    async def _refuse_overlong(self, runtime: SentenceTransformerModel, texts: list[str], field: str) -> None:
        counts = await asyncio.to_thread(runtime.token_counts, texts)
        for i, count in enumerate(counts):
            if count > runtime.max_seq_length:
                raise InvalidArgument(
                    f"{field}[{i}]",
                    f"is {count} tokens; the model takes at most {runtime.max_seq_length} "
                    "(set truncation to TRUNCATION_END to cut it)",
                )

    async def similarity(
        self,
        sources: list[str],
        candidates: list[str],
        pairwise: bool,
        cosine: bool,
        model: str = "",
        version: str = "",
    ) -> tuple[np.ndarray, int, Entry]:
        """Scores (rows x columns), tokens used, and the model entry."""
        if pairwise and len(sources) != len(candidates):
            raise InvalidArgument(
                "candidates", f"pairwise needs as many candidates as sources ({len(candidates)} != {len(sources)})"
            )
        check_texts(sources, "sources", self.settings.max_texts, self.settings.max_text_chars)
        check_texts(candidates, "candidates", self.settings.max_texts, self.settings.max_text_chars)
        check_total_chars([*sources, *candidates], "candidates", self.settings.max_call_chars)
        left, right = await asyncio.gather(
            self.embed(sources, model, version, normalize=cosine, field="sources"),
            self.embed(candidates, model, version, normalize=cosine, field="candidates"),
        )
        if pairwise:
            scores = np.sum(left.vectors * right.vectors, axis=1, keepdims=True).T
        else:
            scores = left.vectors @ right.vectors.T
        return scores, left.tokens + right.tokens, left.entry
