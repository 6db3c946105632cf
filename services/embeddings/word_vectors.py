"""Word-vector data plane: validation, vocabulary lookups and nearest words.

Lookups are memory reads, so they skip the dynamic batcher; most_similar scans
the whole vocabulary (a matrix-vector product) and runs on a worker thread so
the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from services.embeddings.runtime_word2vec import TASK, KeyedVectorsModel
from services.embeddings.settings import EmbeddingsSettings
from shared.errors import InvalidArgument, NotFound
from shared.repository import Entry, Lease, ModelRepository
from shared.results import Result
from shared.validation import check_texts, check_top_k


@dataclass(frozen=True)
class Lookup:
    """Vectors of the requested words in order; NOT_FOUND naming ``words[i]`` where the vocabulary lacks one."""

    vectors: list[Result[np.ndarray]]
    entry: Entry


class WordVectors:
    def __init__(self, repository: ModelRepository, settings: EmbeddingsSettings) -> None:
        self.repository = repository
        self.settings = settings

    def model(self, name: str, version: str = "") -> Lease[KeyedVectorsModel]:
        return self.repository.resolve(name, version, TASK, KeyedVectorsModel, capability="word vectors")

    def _check_words(self, words: list[str], field: str) -> None:
        check_texts(words, field, self.settings.max_words, self.settings.max_word_chars)

    def vectors(self, words: list[str], model: str = "", version: str = "") -> Lookup:
        self._check_words(words, "words")
        with self.model(model, version) as lease:
            runtime = lease.model
            keys = [runtime.key(w) for w in words]
            return Lookup(
                [
                    Result.of(runtime.vector(k)) if k is not None else Result.failed(NotFound("word", w, f"words[{i}]"))
                    for i, (w, k) in enumerate(zip(words, keys, strict=True))
                ],
                lease.entry,
            )

    @staticmethod
    def _key(runtime: KeyedVectorsModel, word: str, field: str) -> str:
        key = runtime.key(word)
        if key is None:
            raise NotFound("word", word, field)
        return key

    def _keys(self, runtime: KeyedVectorsModel, words: list[str], field: str) -> list[str]:
        return [self._key(runtime, word, f"{field}[{i}]") for i, word in enumerate(words)]

    async def most_similar(
        self, positive: list[str], negative: list[str], top_k: int, model: str = "", version: str = ""
    ) -> tuple[list[tuple[str, float]], Entry]:
        if not positive and not negative:
            raise InvalidArgument("positive", "give at least one word in positive or negative")
        if len(positive) + len(negative) > self.settings.max_words:
            raise InvalidArgument("positive", f"positive and negative hold at most {self.settings.max_words} words")
        for words, field in ((positive, "positive"), (negative, "negative")):
            if words:
                self._check_words(words, field)
        check_top_k(top_k, "top_k", self.settings.max_top_k)
        with self.model(model, version) as lease:
            runtime = lease.model
            pos, neg = self._keys(runtime, positive, "positive"), self._keys(runtime, negative, "negative")
            return await asyncio.to_thread(runtime.most_similar, pos, neg, top_k), lease.entry

    def similarity(self, word_a: str, word_b: str, model: str = "", version: str = "") -> tuple[float, Entry]:
        for word, field in ((word_a, "word_a"), (word_b, "word_b")):
            if not word.strip():
                raise InvalidArgument(field, "is required")
            if len(word) > self.settings.max_word_chars:
                raise InvalidArgument(field, f"has {len(word)} characters; at most {self.settings.max_word_chars}")
        with self.model(model, version) as lease:
            runtime = lease.model
            key_a, key_b = self._key(runtime, word_a, "word_a"), self._key(runtime, word_b, "word_b")
            return runtime.similarity(key_a, key_b), lease.entry
