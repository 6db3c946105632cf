"""What the nlp data plane asks of runtimes, beyond shared.model.Model.

Runtimes subclass these so that the data plane can check, with isinstance,
that the model a request names can do what the RPC needs (a tokenizer, class
probabilities...) and answer INVALID_ARGUMENT naming "model" when it cannot.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.nlp.generation_scheduler import GenerationJob, GenerationScheduler
from services.nlp.sampling import SamplingParams
from services.nlp.text_stream import TextStream
from shared.errors import FailedPrecondition
from shared.model import BatchedModel, GenerativeModel, Model, ModelConfig


@dataclass(frozen=True)
class ClassScores:
    """One text's scores over the classifier's labels, in the order of ``labels``."""

    scores: np.ndarray  # float32 (n_labels,), each in [0, 1]
    tokens: int  # tokens the model read (0 when it has no tokenizer)


class TextClassifierModel(BatchedModel):
    """A supervised text classifier: fixed labels, one score per label."""

    labels: list[str]
    multi_label: bool = False

    def predict(self, batch: list[str]) -> Sequence[ClassScores]:
        raise NotImplementedError  # each classifier runtime implements it


class TokenizerModel(Model):
    """A model whose Hugging Face tokenizer answers Tokenize and CountTokens.

    Fast tokenizers are not safe to reconfigure (truncation, padding) from two
    threads at once ("Already borrowed"), so every use goes through ``tokenizer_lock``.
    """

    tokenizer: Any
    context_length: int

    def __init__(self, config: ModelConfig, device: str) -> None:
        super().__init__(config, device)
        self.tokenizer_lock = threading.Lock()


class EntityTaggerModel(BatchedModel):
    """Named entities: items are (text, aggregation), aggregation one of
    runtime_hf_entities.STRATEGIES; one ``Tagged`` (runtime_hf_entities) per item."""

    def predict(self, batch: list[tuple[str, str]]) -> Sequence[Any]:
        raise NotImplementedError


class ScheduledGenerator(GenerativeModel):
    """A model that generates one token per step of its own GenerationScheduler:
    what Generate and GenerateStream (and, with a chat template, TransformText)
    need. The runtime builds ``scheduler`` around its ``step(jobs)`` in load()."""

    scheduler: GenerationScheduler
    context_length: int  # tokens of prompt and output together the model can attend to
    eos_ids: frozenset[int]
    defaults: dict[str, float]  # sampling settings the model's own config sets (temperature, top_p, top_k)

    @property
    def has_chat_template(self) -> bool:
        return False

    @abstractmethod
    def encode_prompt(self, prompt: str) -> list[int]:
        """The prompt's token ids, as the model reads them."""

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        raise FailedPrecondition(f"chat: model {self.config.name!r} has no chat template; send a prompt")

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Text of generated ids; decoding a prefix gives a prefix of the text (see text_stream)."""

    def room(self, prompt_tokens: int) -> int:
        """How many new tokens fit after a prompt of ``prompt_tokens`` (<= 0: the prompt is too long)."""
        return self.context_length - prompt_tokens

    def prefilled(self, prompt_tokens: int) -> int:
        """How many of a prompt's tokens the model computes over (what LUMEN_NLP_MAX_PROMPT_TOKENS bounds)."""
        return prompt_tokens

    def job(
        self, prompt_ids: list[int], max_new_tokens: int, sampling: SamplingParams, stops: Sequence[str]
    ) -> GenerationJob:
        return GenerationJob(
            prompt_ids=prompt_ids,
            max_new_tokens=max(1, min(max_new_tokens, self.room(len(prompt_ids)))),
            sampling=sampling,
            stream=TextStream(self.decode, tuple(stops)),
            eos_ids=self.eos_ids,
        )


def context_length_of(tokenizer: Any, model_config: Any, fallback: int = 512) -> int:
    """Longest sequence the model takes: its position table, else the tokenizer's own limit."""
    for attr in ("max_position_embeddings", "n_positions", "max_seq_len"):
        value = getattr(model_config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    # Tokenizers without a limit report a huge sentinel (1e30).
    return int(limit) if isinstance(limit, int) and 0 < limit < 1_000_000 else fallback
