"""Named entities from any Hugging Face token-classification directory
(``AutoModelForTokenClassification``, e.g. a BERT fine-tuned on CoNLL-2003).

Runs transformers' own token-classification pipeline, so sub-word merging
(none, simple, first, average, max) is exactly Hugging Face's. Texts longer
than the model's window are read in windows overlapping by ``parameters.stride``
tokens (default a quarter of the window) for every strategy but NONE, which
the pipeline only runs on the first window.

The default entity model is spaCy's en_core_web_sm (runtime_spacy); this
runtime serves the Hugging Face models a user mounts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from services.nlp.interfaces import EntityTaggerModel, TokenizerModel, context_length_of

FRAMEWORK = "transformers-token-classification"
STRATEGIES = ("none", "simple", "first", "average", "max")


@dataclass(frozen=True)
class FoundEntity:
    text: str
    start: int  # code points, inclusive
    end: int  # code points, exclusive
    label: str
    score: float


@dataclass(frozen=True)
class Tagged:
    entities: list[FoundEntity]
    tokens: int  # tokens read, once per window


class HfEntityTagger(TokenizerModel, EntityTaggerModel):
    def load(self) -> None:
        from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

        path = str(self.config.path)
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForTokenClassification.from_pretrained(path, local_files_only=True)
        self.context_length = context_length_of(self.tokenizer, model.config)
        self.tokenizer.model_max_length = min(self.tokenizer.model_max_length, self.context_length)
        self.stride = int(self.config.parameters.get("stride", self.tokenizer.model_max_length // 4))
        if not self.tokenizer.is_fast:
            # Character offsets (and FIRST/AVERAGE/MAX merging) need a fast tokenizer's offset mapping.
            raise ValueError("token classification needs a fast tokenizer (tokenizer.json) for character offsets")
        self.pipeline = pipeline("token-classification", model=model, tokenizer=self.tokenizer, device=self.device)

    def warm(self) -> None:
        self.predict([("Ada Lovelace was born in London.", "simple")])

    def predict(self, batch: list[tuple[str, str]]) -> Sequence[Tagged]:
        """Items are (text, strategy), strategy one of STRATEGIES."""
        groups: dict[str, list[int]] = defaultdict(list)
        for i, (_, strategy) in enumerate(batch):
            groups[strategy].append(i)
        found: dict[int, list[FoundEntity]] = {}
        with self.tokenizer_lock:
            for strategy, rows in groups.items():
                texts = [batch[i][0] for i in rows]
                windows = {"stride": self.stride} if strategy != "none" else {}
                outputs = self.pipeline(texts, aggregation_strategy=strategy, **windows)
                for i, entities in zip(rows, outputs, strict=True):
                    found[i] = [_entity(batch[i][0], e) for e in entities]
            tokens = [self._tokens_read(text, strategy) for text, strategy in batch]
        return [Tagged(sorted(found[i], key=lambda e: (e.start, e.end)), tokens[i]) for i in range(len(batch))]

    def _tokens_read(self, text: str, strategy: str) -> int:
        windowed = strategy != "none"
        encoded = self.tokenizer(
            text,
            truncation=True,
            max_length=self.tokenizer.model_max_length,
            stride=self.stride if windowed else 0,
            return_overflowing_tokens=windowed,
        )["input_ids"]
        return sum(len(ids) for ids in encoded) if windowed else len(encoded)

    def unload(self) -> None:
        del self.pipeline

    def properties(self) -> dict[str, str]:
        labels = self.pipeline.model.config.id2label
        return {
            "labels": ",".join(str(labels[i]) for i in range(len(labels))),
            "max_seq_length": str(self.context_length),
            "stride": str(self.stride),
        }


def _entity(text: str, raw: dict) -> FoundEntity:
    start, end = int(raw["start"]), int(raw["end"])
    label = str(raw.get("entity_group") or raw.get("entity"))
    return FoundEntity(text[start:end], start, end, label, float(raw["score"]))
