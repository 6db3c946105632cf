"""A next-word model's files loaded here by Keras and decoded by a plain loop
(the last words in, argmax or one seeded torch draw out): the reference the
served Generate / GenerateStream answers are compared with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from shared.word_vocabulary import words


class Reference:
    """The trained model in this process, decoded word by word without the service's code."""

    def __init__(self, directory: Path, context: int) -> None:
        import keras

        self.context = context
        self.model = keras.saving.load_model(directory / "model.keras", compile=False)
        self.words = json.loads((directory / "vocabulary.json").read_text())
        self.index = {w: i for i, w in enumerate(self.words)}

    def ids(self, text_words: list[str]) -> list[int]:
        return [self.index.get(w, 1) for w in text_words]

    def scores(self, ids: list[int]) -> np.ndarray:
        window = np.zeros((1, self.context), dtype=np.int32)
        tail = ids[-self.context :]
        if tail:
            window[0, self.context - len(tail) :] = tail
        logits = np.array(self.model(window, training=False), dtype=np.float32)[0]
        logits[[0, 1]] = -np.inf  # padding and <oov> are never generated
        return logits

    def generate(self, prompt: str, n: int, seed: int | None = None, temperature: float = 1.0, top_k: int = 0) -> str:
        ids = self.ids(words(prompt))
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        out: list[int] = []
        for _ in range(n):
            logits = self.scores(ids + out)
            if generator is None:
                token = int(np.argmax(logits))
            else:
                scores = torch.from_numpy(logits)[None] / temperature
                if top_k:
                    scores[scores < torch.topk(scores, top_k).values[..., -1:]] = -torch.inf
                token = int(torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=generator)[0, 0])
            if self.words[token] == "<eos>":
                break
            out.append(token)
        return "".join(" " + self.words[t] for t in out)
