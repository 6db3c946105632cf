"""VADER sentiment lexicon (the ``vadersentiment`` package): rule-based, no
tokenizer, no training; the offline default of AnalyzeSentiment.

vaderSentiment 3.3.2 is quadratic in the number of words: its negation and idiom
checks lower-case the whole word list again for every sentiment word, and its
"but" check looks each score up with ``list.index`` ("not good " x 4,000 took
3 s). `LinearVader` gives the same scores in linear time: the lower-cased list
is made once per text, and the "but" check keeps the library's exact semantics
(each score is found by value, first occurrence) with a heap of positions per
value.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Sequence

from shared.model import BatchedModel

FRAMEWORK = "vader"


def _analyzer_class() -> type:
    from vaderSentiment import vaderSentiment as vs

    class LinearVader(vs.SentimentIntensityAnalyzer):
        _words: list[str] | None = None
        _lower: list[str] = []

        def _lowered(self, words: list[str]) -> list[str]:
            # One text's word list is the same object for all its checks.
            if self._words is not words:
                self._words, self._lower = words, [str(w).lower() for w in words]
            return self._lower

        def polarity_scores(self, text: str) -> dict[str, float]:
            try:
                return super().polarity_scores(text)
            finally:
                self._words, self._lower = None, []

        # The two checks below are the library's, reading the cached lower-cased list.
        def _negation_check(self, valence: float, words: list[str], start_i: int, i: int) -> float:
            lower = self._lowered(words)
            if start_i == 0 and vs.negated([lower[i - 1]]):
                valence = valence * vs.N_SCALAR
            if start_i == 1:
                if lower[i - 2] == "never" and lower[i - 1] in ("so", "this"):
                    valence = valence * 1.25
                elif lower[i - 2] == "without" and lower[i - 1] == "doubt":
                    pass
                elif vs.negated([lower[i - 2]]):
                    valence = valence * vs.N_SCALAR
            if start_i == 2:
                if (lower[i - 3] == "never" and lower[i - 2] in ("so", "this")) or lower[i - 1] in ("so", "this"):
                    valence = valence * 1.25
                elif lower[i - 3] == "without" and (lower[i - 2] == "doubt" or lower[i - 1] == "doubt"):
                    pass
                elif vs.negated([lower[i - 3]]):
                    valence = valence * vs.N_SCALAR
            return valence

        def _special_idioms_check(self, valence: float, words: list[str], i: int) -> float:
            lower = self._lowered(words)
            onezero = f"{lower[i - 1]} {lower[i]}"
            twoonezero = f"{lower[i - 2]} {lower[i - 1]} {lower[i]}"
            twoone = f"{lower[i - 2]} {lower[i - 1]}"
            threetwoone = f"{lower[i - 3]} {lower[i - 2]} {lower[i - 1]}"
            threetwo = f"{lower[i - 3]} {lower[i - 2]}"
            for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
                if seq in vs.SPECIAL_CASES:
                    valence = vs.SPECIAL_CASES[seq]
                    break
            if len(lower) - 1 > i:
                zeroone = f"{lower[i]} {lower[i + 1]}"
                if zeroone in vs.SPECIAL_CASES:
                    valence = vs.SPECIAL_CASES[zeroone]
            if len(lower) - 1 > i + 1:
                zeroonetwo = f"{lower[i]} {lower[i + 1]} {lower[i + 2]}"
                if zeroonetwo in vs.SPECIAL_CASES:
                    valence = vs.SPECIAL_CASES[zeroonetwo]
            for n_gram in (threetwoone, threetwo, twoone):
                if n_gram in vs.BOOSTER_DICT:
                    valence = valence + vs.BOOSTER_DICT[n_gram]
            return valence

        def _but_check(self, words: list[str], sentiments: list[float]) -> list[float]:
            lower = self._lowered(words)
            if "but" not in lower:
                return sentiments
            bi = lower.index("but")
            # positions[v]: a min-heap of the indices holding value v (stale entries skipped).
            positions: dict[float, list[int]] = defaultdict(list)
            for index, value in enumerate(sentiments):
                positions[value].append(index)  # ascending: already a heap
            for p in range(len(sentiments)):
                sentiment = sentiments[p]
                heap = positions[sentiment]
                while sentiments[heap[0]] != sentiment:
                    heapq.heappop(heap)
                si = heap[0]
                if si == bi:
                    continue
                new = sentiment * (0.5 if si < bi else 1.5)
                sentiments[si] = new
                heapq.heappush(positions[new], si)
            return sentiments

    return LinearVader


class VaderSentiment(BatchedModel):
    def load(self) -> None:
        self.analyzer = _analyzer_class()()

    def warm(self) -> None:
        self.predict(["What a lovely warm-up!"])

    def predict(self, batch: list[str]) -> Sequence[dict[str, float]]:
        """VADER's scores per text: "neg", "neu", "pos" proportions and the "compound" polarity."""
        return [self.analyzer.polarity_scores(text) for text in batch]

    def unload(self) -> None:
        del self.analyzer

    def properties(self) -> dict[str, str]:
        return {"method": "lexicon", "thresholds": "compound <= -0.05 negative, >= 0.05 positive"}
