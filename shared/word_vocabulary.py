"""Word-level text to ids for Keras text models, as the seed prepared them:
Keras' old ``Tokenizer`` (lower-case, punctuation filtered, split on spaces)
and ``pad_sequences`` (pad and truncate at the front by default).

The vocabulary file is a JSON list: index i holds the word of id i; id 0 is
padding and id 1 the out-of-vocabulary token.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Keras Tokenizer's default `filters`.
FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
PAD, OOV = "<pad>", "<oov>"
_TABLE = str.maketrans(dict.fromkeys(FILTERS, " "))


def words(text: str, lowercase: bool = True) -> list[str]:
    if lowercase:
        text = text.lower()
    return text.translate(_TABLE).split()


@dataclass(frozen=True)
class WordVocabulary:
    index: dict[str, int]
    max_length: int
    lowercase: bool = True
    padding: str = "pre"  # where pad ids go: "pre" or "post"
    truncating: str = "pre"  # which end is cut from long texts: "pre" or "post"

    @classmethod
    def build(cls, texts: Iterable[str], max_words: int, max_length: int, **options: object) -> WordVocabulary:
        counts = Counter(w for t in texts for w in words(t))
        vocab = [PAD, OOV, *(w for w, _ in counts.most_common(max_words - 2))]
        return cls({w: i for i, w in enumerate(vocab)}, max_length, **options)  # type: ignore[arg-type]  # options: the bool/str fields below max_length

    @classmethod
    def load(cls, path: Path, max_length: int, **options: object) -> WordVocabulary:
        vocab = json.loads(path.read_text())
        return cls({w: i for i, w in enumerate(vocab)}, max_length, **options)  # type: ignore[arg-type]  # options: the bool/str fields below max_length

    def save(self, path: Path) -> None:
        ordered = sorted(self.index, key=self.index.__getitem__)
        path.write_text(json.dumps(ordered, ensure_ascii=False))

    def __len__(self) -> int:
        return len(self.index)

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """(len(texts), max_length) int32 ids, and each text's id count after truncation."""
        out = np.zeros((len(texts), self.max_length), dtype=np.int32)
        counts = []
        for row, text in enumerate(texts):
            ids = [self.index.get(w, 1) for w in words(text, self.lowercase)]
            if len(ids) > self.max_length:
                ids = ids[-self.max_length :] if self.truncating == "pre" else ids[: self.max_length]
            if ids:
                if self.padding == "pre":
                    out[row, -len(ids) :] = ids
                else:
                    out[row, : len(ids)] = ids
            counts.append(len(ids))
        return out, counts
