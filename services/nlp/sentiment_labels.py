"""Reading a classifier's classes as sentiment: which label is positive,
negative or neutral (``parameters.sentiment_labels`` names them, otherwise
labels starting with "pos", "neg", "neu" do, case-insensitively)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from shared.errors import InvalidArgument

POSITIVE, NEGATIVE, NEUTRAL = "positive", "negative", "neutral"


@dataclass(frozen=True)
class Polarity:
    score: float  # P(positive) - P(negative), in [-1, 1]
    label: str  # POSITIVE, NEGATIVE or NEUTRAL


@dataclass(frozen=True)
class SentimentClasses:
    positive: int
    negative: int
    neutral: int | None

    @classmethod
    def of(cls, name: str, labels: Sequence[str], named: Mapping[str, str] | None) -> SentimentClasses:
        found: dict[str, int] = {}
        for index, label in enumerate(labels):
            for polarity in (POSITIVE, NEGATIVE, NEUTRAL):
                wanted = (named or {}).get(polarity)
                if (label == wanted) if wanted else label.lower().startswith(polarity[:3]):
                    found.setdefault(polarity, index)
        if POSITIVE not in found or NEGATIVE not in found:
            raise InvalidArgument(
                "model", f"{name!r} is not a sentiment classifier: no positive and negative class in {list(labels)}"
            )
        return cls(found[POSITIVE], found[NEGATIVE], found.get(NEUTRAL))

    def polarity(self, probs: np.ndarray) -> Polarity:
        score = float(probs[self.positive] - probs[self.negative])
        candidates = {POSITIVE: probs[self.positive], NEGATIVE: probs[self.negative]}
        if self.neutral is not None:
            candidates[NEUTRAL] = probs[self.neutral]
        return Polarity(max(-1.0, min(1.0, score)), max(candidates, key=candidates.__getitem__))


def vader_label(compound: float) -> str:
    """VADER's own thresholds."""
    if compound >= 0.05:
        return POSITIVE
    if compound <= -0.05:
        return NEGATIVE
    return NEUTRAL
