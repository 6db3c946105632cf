"""Words of a next-word model, shared by the training recipe that makes one and
the nlp runtime that serves it, so both read text the same way.

Words are shared.word_vocabulary's (lower-cased, punctuation dropped). The
vocabulary file lists ``<pad>`` (id 0), ``<oov>`` (1), ``<eos>`` (2, the end of
a document) and then the most frequent training words. The model reads the
last ``context`` ids before a position (fewer at the start of a document,
padded in front with 0) and scores every id for the word there. Padding and
``<oov>`` are never chosen as the next word: their scores are masked out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from shared.word_vocabulary import OOV, PAD, WordVocabulary, words

EOS = "<eos>"
PAD_ID, OOV_ID, EOS_ID = 0, 1, 2
NEVER_CHOSEN = (PAD_ID, OOV_ID)


def build_vocabulary(documents: Iterable[Sequence[str]], max_words: int, context: int) -> WordVocabulary:
    counts = Counter(w for document in documents for w in document)
    vocab = [PAD, OOV, EOS, *(w for w, _ in counts.most_common(max_words - 3))]
    return WordVocabulary({w: i for i, w in enumerate(vocab)}, context)


def ids(vocabulary: WordVocabulary, text_words: Sequence[str]) -> list[int]:
    return [vocabulary.index.get(w, OOV_ID) for w in text_words]


def prompt_ids(vocabulary: WordVocabulary, prompt: str) -> list[int]:
    return ids(vocabulary, words(prompt))


def windows(sequences: Sequence[Sequence[int]], context: int) -> np.ndarray:
    """(len(sequences), context) int32: each sequence's last ``context`` ids, padded in front."""
    out = np.zeros((len(sequences), context), dtype=np.int32)
    for row, sequence in enumerate(sequences):
        tail = list(sequence)[-context:]
        if tail:
            out[row, context - len(tail) :] = tail
    return out


def examples(documents: Sequence[Sequence[int]], context: int) -> tuple[np.ndarray, np.ndarray]:
    """Every position after a document's first word, and its end: (windows before it, the id there or EOS)."""
    before: list[Sequence[int]] = []
    targets: list[int] = []
    for document in documents:
        full = [*document, EOS_ID]
        for i in range(1, len(full)):
            before.append(full[max(0, i - context) : i])
            targets.append(full[i])
    return windows(before, context), np.asarray(targets, dtype=np.int64)


def mask_never_chosen(scores: np.ndarray) -> np.ndarray:
    """``scores`` (..., vocabulary) with padding and <oov> at -inf (a copy)."""
    out = np.array(scores, dtype=np.float32)
    out[..., list(NEVER_CHOSEN)] = -np.inf
    return out
