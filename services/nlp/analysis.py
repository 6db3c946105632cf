"""Text-analysis data plane: classification (supervised and zero-shot),
sentiment, language, entities. Checks what callers can get wrong (typed errors
naming the field), picks the model, runs it through its dynamic batcher."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from services.nlp import tasks
from services.nlp.interfaces import ClassScores, EntityTaggerModel, TextClassifierModel
from services.nlp.runtime_hf_entities import STRATEGIES, Tagged
from services.nlp.runtime_langid import LangidModel, restrict
from services.nlp.runtime_vader import VaderSentiment
from services.nlp.runtime_zero_shot import Embedded, EmbeddingZeroShot
from services.nlp.sentiment_labels import Polarity, SentimentClasses, vader_label
from services.nlp.settings import NlpSettings
from shared.errors import InvalidArgument
from shared.model import BatchedModel, Model
from shared.repository import Entry, Lease, ModelRepository
from shared.results import Checked, Result
from shared.validation import check_count, check_each_text, check_total_chars

T = TypeVar("T")
M = TypeVar("M", bound=Model)
Ranked = list[tuple[str, float]]  # (label, score), best first

MAX_CLASSIFY, MAX_ZERO_SHOT, MAX_LABELS, MAX_LABEL_CHARS = 64, 32, 64, 256
MAX_LANGUAGE_TEXTS, MAX_LANGUAGES, MAX_CANDIDATE_LANGUAGES = 256, 10, 200
MAX_ENTITY_TEXTS, MAX_TEMPLATE_CHARS = 32, 512
DEFAULT_TEMPLATE = "This example is {}."


@dataclass(frozen=True)
class Answer(Generic[T]):
    results: list[Result[T]]
    tokens: int
    entry: Entry


@dataclass(frozen=True)
class SentimentResult:
    polarity: Polarity
    classes: Ranked  # the model's own classes, highest first


def ranked(labels: list[str], scores: np.ndarray, top_k: int) -> Ranked:
    order = np.argsort(-scores, kind="stable")[:top_k]
    return [(labels[i], float(scores[i])) for i in order]


@dataclass(frozen=True)
class Takes(Generic[M]):
    """The models an RPC takes: tasks, the runtime kind, the setting naming its default, what it needs."""

    tasks: str | tuple[str, ...]
    kind: type[M]
    default: str  # NlpSettings field
    capability: str = ""


CLASSIFY = Takes(tasks.CLASSIFIERS, TextClassifierModel, "default_classifier", "class scores")
ZERO_SHOT = Takes(tasks.ZERO_SHOT, EmbeddingZeroShot, "default_zero_shot", "zero-shot scoring")
SENTIMENT = Takes((tasks.SENTIMENT, tasks.TEXT_CLASSIFICATION), BatchedModel, "default_sentiment")
LANGUAGE = Takes(tasks.LANGUAGE_DETECTION, LangidModel, "default_language", "language ranking")
ENTITIES = Takes(tasks.TOKEN_CLASSIFICATION, EntityTaggerModel, "default_entities", "token classification")


class TextAnalysis:
    def __init__(self, repository: ModelRepository, settings: NlpSettings) -> None:
        self.repository = repository
        self.settings = settings

    def _hold(self, takes: Takes[M], name: str, version: str) -> Lease[M]:
        default = str(getattr(self.settings, takes.default))
        return self.repository.resolve(
            name, version, takes.tasks, takes.kind, default=default, capability=takes.capability
        )

    def _check(self, texts: list[str], maximum: int) -> Checked:
        """The call's texts: their count and total length bound the call, each text is checked on its own."""
        check_count(texts, "texts", maximum)
        check_total_chars(texts, "texts", self.settings.max_call_chars)
        return check_each_text(texts, "texts", self.settings.max_text_chars)

    async def classify(self, texts: list[str], name: str, version: str, top_k: int) -> Answer[Ranked]:
        checked = self._check(texts, MAX_CLASSIFY)
        check_total_chars(texts, "texts", self.settings.max_encoder_chars)
        top_k = top_k or 5
        if top_k > 1000:
            raise InvalidArgument("top_k", f"must be between 1 and 1000, got {top_k}")
        with self._hold(CLASSIFY, name, version) as lease:
            scores: list[ClassScores] = await lease.predict(checked.pick(texts)) if checked.valid else []
            results = [ranked(lease.model.labels, s.scores, top_k) for s in scores]
            return Answer(checked.merge(len(texts), results), sum(s.tokens for s in scores), lease.entry)

    async def zero_shot(
        self,
        texts: list[str],
        labels: list[str],
        name: str,
        version: str,
        template: str,
        multi_label: bool,
        top_k: int,
    ) -> Answer[Ranked]:
        checked = self._check(texts, MAX_ZERO_SHOT)
        _check_labels(labels)
        # The labels ride in the encoder's batch with the texts: both count.
        check_total_chars([*texts, *labels], "texts", self.settings.max_encoder_chars)
        if template and (len(template) > MAX_TEMPLATE_CHARS or template.count("{}") != 1):
            raise InvalidArgument(
                "hypothesis_template", f"must hold exactly one '{{}}' in at most {MAX_TEMPLATE_CHARS} characters"
            )
        if top_k > MAX_LABELS:
            raise InvalidArgument("top_k", f"must be between 0 and {MAX_LABELS}, got {top_k}")
        with self._hold(ZERO_SHOT, name, version) as lease:
            valid = checked.pick(texts)
            # Labels ride in the same batch as the texts: one pass of the encoder.
            embedded: list[Embedded] = await lease.predict(valid + labels) if valid else []
            text_vectors = np.stack([e.vector for e in embedded[: len(valid)]]) if valid else np.zeros((0, 1))
            label_vectors = np.stack([e.vector for e in embedded[len(valid) :]]) if valid else np.zeros((0, 1))
            scores = lease.model.scores(text_vectors, label_vectors, multi_label) if valid else []
        results = [ranked(labels, row, top_k or len(labels)) for row in scores]
        return Answer(checked.merge(len(texts), results), sum(e.tokens for e in embedded), lease.entry)

    async def sentiment(self, texts: list[str], name: str, version: str) -> Answer[SentimentResult]:
        checked = self._check(texts, MAX_CLASSIFY)
        with self._hold(SENTIMENT, name, version) as lease:
            entry, model = lease.entry, lease.model
            valid = checked.pick(texts)
            if isinstance(model, VaderSentiment):
                raw: list[dict[str, float]] = await lease.predict(valid) if valid else []
                return Answer(checked.merge(len(texts), [_vader_result(r) for r in raw]), 0, entry)
            if not isinstance(model, TextClassifierModel):
                raise InvalidArgument(
                    "model.name", f"{entry.config.name!r} ({entry.config.framework}) has no sentiment classes"
                )
            check_total_chars(texts, "texts", self.settings.max_encoder_chars)
            labels = model.labels
            classes = SentimentClasses.of(entry.config.name, labels, entry.config.parameters.get("sentiment_labels"))
            scores: list[ClassScores] = await lease.predict(valid) if valid else []
        results = [SentimentResult(classes.polarity(s.scores), ranked(labels, s.scores, len(labels))) for s in scores]
        return Answer(checked.merge(len(texts), results), sum(s.tokens for s in scores), entry)

    async def languages(
        self, texts: list[str], name: str, version: str, top_k: int, candidates: list[str]
    ) -> Answer[Ranked]:
        checked = self._check(texts, MAX_LANGUAGE_TEXTS)
        top_k = top_k or 1
        if top_k > MAX_LANGUAGES:
            raise InvalidArgument("top_k", f"must be between 1 and {MAX_LANGUAGES}, got {top_k}")
        check_count(candidates, "candidate_languages", MAX_CANDIDATE_LANGUAGES, minimum=0)
        with self._hold(LANGUAGE, name, version) as lease:
            for i, code in enumerate(candidates):
                if code not in lease.model.languages:
                    raise InvalidArgument(
                        f"candidate_languages[{i}]", f"{code!r} is not a language {lease.entry.config.name} knows"
                    )
            rankings: list[Ranked] = await lease.predict(checked.pick(texts)) if checked.valid else []
        if candidates:
            rankings = [restrict(r, frozenset(candidates)) for r in rankings]
        return Answer(checked.merge(len(texts), [r[:top_k] for r in rankings]), 0, lease.entry)

    async def entities(
        self, texts: list[str], name: str, version: str, strategy: str, min_score: float
    ) -> Answer[Tagged]:
        checked = self._check(texts, MAX_ENTITY_TEXTS)
        check_total_chars(texts, "texts", self.settings.max_entity_chars)
        if strategy not in STRATEGIES:
            raise InvalidArgument("aggregation", f"unknown aggregation {strategy!r}")
        if math.isnan(min_score) or not 0.0 <= min_score <= 1.0:
            raise InvalidArgument("min_score", f"must be in [0, 1], got {min_score}")
        with self._hold(ENTITIES, name, version) as lease:
            valid = checked.pick(texts)
            tagged: list[Tagged] = await lease.predict([(t, strategy) for t in valid]) if valid else []
        kept = [Tagged([e for e in t.entities if e.score >= min_score], t.tokens) for t in tagged]
        return Answer(checked.merge(len(texts), kept), sum(t.tokens for t in tagged), lease.entry)


def _check_labels(labels: list[str]) -> None:
    check_count(labels, "candidate_labels", MAX_LABELS)
    seen: set[str] = set()
    for i, label in enumerate(labels):
        if not label.strip() or len(label) > MAX_LABEL_CHARS:
            raise InvalidArgument(f"candidate_labels[{i}]", f"must be 1 to {MAX_LABEL_CHARS} characters, not blank")
        if label in seen:
            raise InvalidArgument(f"candidate_labels[{i}]", f"{label!r} is given twice")
        seen.add(label)


def _vader_result(scores: dict[str, float]) -> SentimentResult:
    compound = float(scores["compound"])
    classes = sorted(((k, float(scores[k])) for k in ("neg", "neu", "pos")), key=lambda kv: -kv[1])
    return SentimentResult(Polarity(compound, vader_label(compound)), classes)
