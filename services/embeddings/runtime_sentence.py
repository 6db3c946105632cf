"""Sentence-transformers runtime: any sentence-transformers model directory."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shared.model import BatchedModel

TASK = "sentence-embedding"
FRAMEWORK = "sentence-transformers"


@dataclass(frozen=True)
class Embedded:
    vector: np.ndarray  # float32, shape (dimension,)
    tokens: int  # tokens the model saw, after truncation


class SentenceTransformerModel(BatchedModel):
    def load(self) -> None:
        from sentence_transformers import SentenceTransformer

        self._st = SentenceTransformer(str(self.config.path), device=self.device, local_files_only=True)
        self._st.eval()
        self.dimension = int(self._st.get_embedding_dimension())
        self.max_seq_length = int(self._st.max_seq_length)
        # A fast tokenizer's call sets its truncation and padding state: two threads at once (two
        # instances, or token_counts beside a batch) fail with "Already borrowed". Forward passes overlap.
        self._tokenizing = threading.Lock()

    def warm(self) -> None:
        self.predict(["warm-up sentence"] * min(8, self.config.batching.max_batch_size))

    def _features(self, texts: list[str]) -> dict:
        # One tokenizer pass, padded and truncated to max_seq_length, as encode() does.
        prepare = getattr(self._st, "preprocess", None) or self._st.tokenize
        with self._tokenizing:
            return prepare(texts)

    def predict(self, batch: list[str]) -> Sequence[Embedded]:
        import torch
        from sentence_transformers.util import batch_to_device

        features = batch_to_device(self._features(batch), self._st.device)
        with torch.inference_mode():
            out = self._st(features)
        vectors = out["sentence_embedding"].float().cpu().numpy()
        tokens = features["attention_mask"].sum(dim=1).cpu().tolist()
        return [Embedded(v, int(t)) for v, t in zip(vectors, tokens, strict=True)]

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text before truncation (special tokens included)."""
        with self._tokenizing:
            encoded = self._st.tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def unload(self) -> None:
        del self._st

    def properties(self) -> dict[str, str]:
        return {"dimension": str(self.dimension), "max_seq_length": str(self.max_seq_length)}
