"""Choosing the next token: greedy, or sampling with temperature, top-k and
top-p from a per-request random generator.

The warpers are Hugging Face's own, applied in ``generate()``'s order
(temperature, top-k, top-p), followed by softmax and one multinomial draw, so
a seeded request draws the same tokens as ``torch.manual_seed(seed)`` followed
by ``model.generate(do_sample=True, ...)``. Each request has its own
``torch.Generator``: interleaved requests never consume each other's random
numbers, so the same seed gives the same text whatever else runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0  # 0 means greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 disables
    seed: int = 0  # used when sampling

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


class TokenChooser:
    """Picks next tokens for one request; built once, used every step."""

    def __init__(self, params: SamplingParams, device: str) -> None:
        import torch
        from transformers.generation.logits_process import (
            LogitsProcessorList,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        self._torch = torch
        self.params = params
        self.warpers = LogitsProcessorList()
        self.generator: Any = None
        if params.greedy:
            return
        if params.temperature != 1.0:
            self.warpers.append(TemperatureLogitsWarper(params.temperature))
        if params.top_k:
            self.warpers.append(TopKLogitsWarper(top_k=params.top_k, min_tokens_to_keep=1))
        if params.top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(top_p=params.top_p, min_tokens_to_keep=1))
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(params.seed)

    def choose(self, input_ids: Any, logits: Any) -> int:
        """Next token id from (1, vocab) float32 logits; input_ids (1, length) as generate() passes them."""
        torch = self._torch
        if self.params.greedy:
            return int(torch.argmax(logits, dim=-1)[0])
        scores = self.warpers(input_ids, logits)
        probs = torch.nn.functional.softmax(scores, dim=-1)
        return int(torch.multinomial(probs, num_samples=1, generator=self.generator)[0, 0])
