"""A linear classifier (softmax head) on sentence embeddings.

The set-up trains one on gensim's Pang & Lee polarity sentences (see
setup_models and services/nlp/README.md). ``path`` is the sentence-transformers directory;
the model directory holds ``head.npz`` with ``weights`` (dimension x
classes), ``bias`` (classes) and ``labels``. Embeddings are L2-normalised
before the head, as in training.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from services.nlp.interfaces import ClassScores, TextClassifierModel
from services.nlp.sentence_encoder import SentenceEncoderModel

FRAMEWORK = "sentence-embedding-head"
HEAD_FILE = "head.npz"


def save_head(directory: Path, weights: np.ndarray, bias: np.ndarray, labels: Sequence[str]) -> None:
    np.savez(directory / HEAD_FILE, weights=weights.astype(np.float32), bias=bias.astype(np.float32), labels=labels)


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class EmbeddingHeadClassifier(TextClassifierModel, SentenceEncoderModel):
    def load(self) -> None:
        self.load_encoder(self.config.path)
        with np.load(self.config.directory / self.config.parameters.get("head", HEAD_FILE)) as head:
            self.weights, self.bias = head["weights"], head["bias"]
            self.labels = [str(label) for label in head["labels"]]
        if self.weights.shape != (self.encoder.get_embedding_dimension(), len(self.labels)):
            raise ValueError(f"head weights {self.weights.shape} do not fit the encoder and {len(self.labels)} labels")

    def warm(self) -> None:
        self.predict(["warm-up sentence"])

    def predict(self, batch: list[str]) -> Sequence[ClassScores]:
        vectors, tokens = self.encode(batch)
        probs = softmax(vectors @ self.weights + self.bias)
        return [ClassScores(p, t) for p, t in zip(probs, tokens, strict=True)]

    def properties(self) -> dict[str, str]:
        return {"labels": ",".join(self.labels), "max_seq_length": str(self.context_length)}
