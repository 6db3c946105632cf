"""Keras next-word models (Embedding + LSTM + a logits layer over the words,
as the training service's ``next-word`` recipe makes them), served by Generate
and GenerateStream on a GenerationScheduler like the causal LMs.

The directory holds ``parameters.file`` (default ``model.keras``) and
``parameters.vocabulary`` (default ``vocabulary.json``, see shared.next_words);
``parameters.context`` is how many words before a position the model reads.
Text is words as shared.next_words splits it (lower-cased, punctuation
dropped); the output is those words, each after a space, so it continues the
prompt. ``<eos>`` ends a generation (finish reason STOP); padding and
``<oov>`` are never generated.

Each scheduler step reads the last ``context`` ids of every running
generation (prompt and output so far, padded in front) in one batched call of
a compiled ``tf.function``, so newcomers join the next step and a prompt of
any length fits (only its last words are read). The next token is the argmax,
or one draw by services.nlp.sampling's TokenChooser (temperature, top-k,
top-p, per-request seeded generator), as for the causal LMs.

``parameters``: ``max_active`` (generations in a step, default 16),
``max_waiting`` (queued beyond those, default 64).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from services.nlp.generation_scheduler import GenerationJob, GenerationScheduler
from services.nlp.interfaces import ScheduledGenerator
from services.nlp.sampling import SamplingParams, TokenChooser
from shared import next_words
from shared.word_vocabulary import WordVocabulary

FRAMEWORK = "keras-next-word"


class KerasNextWord(ScheduledGenerator):
    def load(self) -> None:
        import keras
        import tensorflow as tf
        import torch

        self._torch = torch
        params = self.config.parameters
        path = self.config.path
        self.model = keras.saving.load_model(path / params.get("file", "model.keras"), compile=False)
        self.context_length = int(params.get("context") or self.model.inputs[0].shape[1])
        self.vocabulary = WordVocabulary.load(path / params.get("vocabulary", "vocabulary.json"), self.context_length)
        self.words = sorted(self.vocabulary.index, key=self.vocabulary.index.__getitem__)
        outputs = int(self.model.outputs[0].shape[-1])
        if outputs != len(self.words):
            raise ValueError(f"the model scores {outputs} words; its vocabulary has {len(self.words)}")
        self.eos_ids = frozenset({next_words.EOS_ID})
        self.defaults = {}
        model = self.model
        spec = tf.TensorSpec([None, self.context_length], tf.int32)
        self._serve: Any = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        self.scheduler = GenerationScheduler(
            self.config.name,
            self.step,
            max_active=int(params.get("max_active", 16)),
            max_waiting=int(params.get("max_waiting", 64)),
        )

    def warm(self) -> None:
        self.scheduler.run_sync(self.job(self.encode_prompt("the"), 2, SamplingParams(temperature=0.0), ()))

    def encode_prompt(self, prompt: str) -> list[int]:
        return next_words.prompt_ids(self.vocabulary, prompt)

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(" " + self.words[i] for i in ids if i not in self.eos_ids)

    def room(self, prompt_tokens: int) -> int:
        return sys.maxsize  # only the last context_length words are read: any prompt leaves room

    def prefilled(self, prompt_tokens: int) -> int:
        return min(prompt_tokens, self.context_length)

    def step(self, jobs: list[GenerationJob]) -> None:
        """One word for each of ``jobs`` from one batched call over their last words."""
        windows = next_words.windows([job.prompt_ids + job.generated for job in jobs], self.context_length)
        scores = next_words.mask_never_chosen(self._serve(windows).numpy())
        greedy = np.argmax(scores, axis=1)
        for row, job in enumerate(jobs):
            if job.state is None:
                job.state = TokenChooser(job.sampling, "cpu")
            chooser: TokenChooser = job.state
            if chooser.params.greedy:
                job.accept(int(greedy[row]))
            else:
                job.accept(chooser.choose(None, self._torch.from_numpy(scores[row : row + 1])))

    def unload(self) -> None:
        self.scheduler.close()
        del self.model, self._serve

    def properties(self) -> dict[str, str]:
        return {
            "context_words": str(self.context_length),
            "vocabulary_size": str(len(self.words)),
            "max_active": str(self.scheduler.max_active),
            "scheduling": "continuous-batching",
        }
