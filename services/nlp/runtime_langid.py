"""Language identification with ``py3langid`` (its bundled naive-Bayes model;
``properties.languages`` counts its labels) with normalised probabilities as confidence.

A restriction to candidate languages is applied by renormalising the full
distribution over the candidates, which equals py3langid's own
``set_languages`` (a softmax over the kept columns) without mutating the
shared identifier from several threads.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.model import BatchedModel

FRAMEWORK = "py3langid"


class LangidModel(BatchedModel):
    def load(self) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self.identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        self.languages = frozenset(self.identifier.labels)

    def warm(self) -> None:
        self.predict(["This is a warm-up sentence."])

    def predict(self, batch: list[str]) -> Sequence[list[tuple[str, float]]]:
        """Every language with its probability, most likely first, per text."""
        return [[(lang, float(p)) for lang, p in self.identifier.rank(text)] for text in batch]

    def unload(self) -> None:
        del self.identifier

    def properties(self) -> dict[str, str]:
        return {"languages": str(len(self.languages))}


def restrict(ranking: Sequence[tuple[str, float]], allowed: frozenset[str]) -> list[tuple[str, float]]:
    """The ranking over ``allowed`` only, renormalised to sum to 1."""
    kept = [(lang, p) for lang, p in ranking if lang in allowed]
    total = sum(p for _, p in kept)
    if total <= 0:
        return [(lang, 1.0 / len(kept)) for lang, _ in kept] if kept else []
    return [(lang, p / total) for lang, p in kept]
