"""VADER sentiment lexicon (the ``vadersentiment`` package): rule-based, no
tokenizer, no training; the offline default of AnalyzeSentiment."""

from __future__ import annotations

from collections.abc import Sequence

from shared.model import BatchedModel

FRAMEWORK = "vader"


class VaderSentiment(BatchedModel):
    def load(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.analyzer = SentimentIntensityAnalyzer()

    def warm(self) -> None:
        self.predict(["What a lovely warm-up!"])

    def predict(self, batch: list[str]) -> Sequence[dict[str, float]]:
        """VADER's scores per text: "neg", "neu", "pos" proportions and the "compound" polarity."""
        return [self.analyzer.polarity_scores(text) for text in batch]

    def unload(self) -> None:
        del self.analyzer

    def properties(self) -> dict[str, str]:
        return {"method": "lexicon", "thresholds": "compound <= -0.05 negative, >= 0.05 positive"}
