"""The linear VADER gives the library's exact scores, and its work grows linearly (counted, not timed)."""

from __future__ import annotations

import random

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from services.nlp.runtime_vader import _analyzer_class

_PHRASES = "not good bad but never so this without doubt kind of sort of no nor or least at very great happy sad"
WORDS = [*_PHRASES.split(" "), "the", "a", "movie", "isn't", "GREAT", "!!", "?", ":)", "😀", "cut", "mustard", "yeah"]


def test_scores_equal_the_library_on_random_texts() -> None:
    library, linear = SentimentIntensityAnalyzer(), _analyzer_class()()
    rng = random.Random(11)
    for _ in range(1500):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40)))
        assert linear.polarity_scores(text) == library.polarity_scores(text), text


def test_word_list_is_lowered_once_per_text(monkeypatch) -> None:
    """The library lowers the whole list per sentiment word (quadratic); ours once per text."""
    linear = _analyzer_class()()
    lowered = []
    original = type(linear)._lowered

    def counting(self, words):
        if self._words is not words:
            lowered.append(len(words))
        return original(self, words)

    monkeypatch.setattr(type(linear), "_lowered", counting)
    linear.polarity_scores("not good but " * 2000)
    assert lowered == [6000]
