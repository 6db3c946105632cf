"""Encoder-decoder text-to-text models (T5, BART, Marian...) through
``AutoModelForSeq2SeqLM.generate``.

What a directory can do is stated in ``parameters``:
- ``tasks``: the TextTask names it serves, e.g. ["summarize"] for BART-CNN,
  ["translate"] for Marian; default all three.
- ``prefixes``: input prefix per task, with {source}, {target} (language
  names) and {instruction} filled in, e.g. T5's
  {"summarize": "summarize: ", "translate": "translate {source} to {target}: "}.
- ``source_language`` / ``target_language``: a Marian model's fixed pair; a
  request for another pair gets INVALID_ARGUMENT.

One request's texts run as one padded batch; generate() draws from torch's
global random generator, so seeded calls hold a lock while they run.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.nlp.generation_scheduler import LENGTH, STOP, STOP_SEQUENCE
from services.nlp.interfaces import TokenizerModel, context_length_of
from services.nlp.sampling import SamplingParams
from services.nlp.transform_prompts import language_name
from shared.errors import InvalidArgument
from shared.model import GenerativeModel

FRAMEWORK = "transformers-seq2seq"
ALL_TASKS = ("summarize", "translate", "rewrite")


@dataclass(frozen=True)
class Transformed:
    text: str
    finish_reason: str
    stop_sequence: str
    output_tokens: int


class Seq2SeqModel(TokenizerModel, GenerativeModel):
    def load(self) -> None:
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self._torch = torch
        path = str(self.config.path)
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(path, local_files_only=True)
        self.model.to(self.device).eval()
        self.context_length = context_length_of(self.tokenizer, self.model.config)
        params = self.config.parameters
        self.tasks = tuple(params.get("tasks", ALL_TASKS))
        self.prefixes: dict[str, str] = dict(params.get("prefixes", {}))
        self.source_language = str(params.get("source_language", ""))
        self.target_language = str(params.get("target_language", ""))
        self._lock = threading.Lock()

    def warm(self) -> None:
        task = self.tasks[0]
        prompt = self.render(task, "Warm-up text.", "", self.source_language, self.target_language or "en")
        self.transform([self.encode(prompt)], 2, SamplingParams(temperature=0.0), ())

    def render(self, task: str, text: str, instruction: str, source: str, target: str) -> str:
        """The model input for ``task``; INVALID_ARGUMENT when the model cannot do it."""
        if task not in self.tasks:
            raise InvalidArgument("model", f"{self.config.name!r} does not {task}; it serves {', '.join(self.tasks)}")
        if self.target_language and target and target != self.target_language:
            raise InvalidArgument("target_language", f"{self.config.name!r} only produces {self.target_language!r}")
        if self.source_language and source and source != self.source_language:
            raise InvalidArgument("source_language", f"{self.config.name!r} only reads {self.source_language!r}")
        source = source or self.source_language
        names = {
            "source": language_name(source, "source_language") if source else "",
            "target": language_name(target, "target_language") if target else "",
            "instruction": instruction.strip(),
        }
        return self.prefixes.get(task, "").format(**names) + text

    def encode(self, text: str) -> list[int]:
        with self.tokenizer_lock:
            return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def transform(
        self, inputs: list[list[int]], max_new_tokens: int, sampling: SamplingParams, stops: Sequence[str]
    ) -> list[Transformed]:
        torch = self._torch
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        width = max(len(ids) for ids in inputs)
        input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids in inputs], device=self.device)
        mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in inputs], device=self.device)
        options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": not sampling.greedy}
        if not sampling.greedy:
            options |= {"temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k}
        with self._lock, torch.inference_mode():
            if not sampling.greedy:
                torch.manual_seed(sampling.seed)
            out = self.model.generate(input_ids=input_ids, attention_mask=mask, **options)
        return [self._finish(row, stops) for row in out.tolist()]

    def _finish(self, row: list[int], stops: Sequence[str]) -> Transformed:
        start = self.model.generation_config.decoder_start_token_id
        ids = row[1:] if row and row[0] == start else row
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        pad = self.model.generation_config.pad_token_id
        produced = []
        reason = LENGTH
        for token in ids:
            produced.append(token)
            if token in eos_ids:
                reason = STOP
                break
        text = self.tokenizer.decode([t for t in produced if t not in eos_ids and t != pad], skip_special_tokens=True)
        hits = [(text.find(s), s) for s in stops if s in text]
        if hits:
            index, stop = min(hits)
            return Transformed(text[:index], STOP_SEQUENCE, stop, len(produced))
        return Transformed(text, reason, "", len(produced))

    def unload(self) -> None:
        del self.model

    def properties(self) -> dict[str, str]:
        props = {"tasks": ",".join(self.tasks), "max_seq_length": str(self.context_length)}
        if self.target_language:
            props["languages"] = f"{self.source_language}->{self.target_language}"
        return props
