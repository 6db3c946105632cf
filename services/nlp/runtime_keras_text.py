"""Keras text classifiers, as the seed built them: Embedding + SimpleRNN or
LSTM + Dense, saved as ``.keras``.

The directory holds the ``.keras`` file (``parameters.file``, default
``model.keras``) and, for models that take word ids, ``vocabulary.json``
(see word_vocabulary). A model whose input is a string tensor (a
TextVectorization layer inside) gets the raw texts. ``parameters.labels``
names the classes; a single sigmoid output is read as P(labels[1]).

Inference goes through one compiled ``tf.function`` traced once for a
(None, max_length) batch, never ``model.predict`` per request, which costs
~100x more at batch 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from services.nlp.interfaces import ClassScores, TextClassifierModel
from shared.word_vocabulary import WordVocabulary

FRAMEWORK = "keras"


class KerasTextClassifier(TextClassifierModel):
    def load(self) -> None:
        import keras
        import tensorflow as tf

        params = self.config.parameters
        path = self.config.path
        file = path / params.get("file", "model.keras") if path.is_dir() else path
        self.model = keras.saving.load_model(file, compile=False)
        self.labels = [str(label) for label in params.get("labels", [])]
        self.takes_strings = self.model.inputs[0].dtype == "string"
        self.vocabulary: WordVocabulary | None = None
        if self.takes_strings:
            spec = tf.TensorSpec([None], tf.string)
        else:
            max_length = int(params.get("max_length") or self.model.inputs[0].shape[1])
            self.vocabulary = WordVocabulary.load(
                path / params.get("vocabulary", "vocabulary.json"),
                max_length,
                lowercase=bool(params.get("lowercase", True)),
                padding=str(params.get("padding", "pre")),
                truncating=str(params.get("truncating", "pre")),
            )
            spec = tf.TensorSpec([None, max_length], tf.int32)
        model = self.model
        self._serve: Any = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        self._logits = params.get("output", "probabilities") == "logits"
        outputs = int(self.model.outputs[0].shape[-1])
        if not self.labels:
            self.labels = [str(i) for i in range(max(outputs, 2))]
        if len(self.labels) != max(outputs, 2):
            raise ValueError(f"{len(self.labels)} labels for a model with {outputs} outputs")

    def warm(self) -> None:
        self.predict(["warm-up sentence"])

    def predict(self, batch: list[str]) -> Sequence[ClassScores]:
        if self.vocabulary is None:
            raw = self._serve(np.asarray(batch, dtype=object)).numpy()
            counts = [0] * len(batch)
        else:
            ids, counts = self.vocabulary.encode(batch)
            raw = self._serve(ids).numpy()
        probs = self._probabilities(raw.astype(np.float32))
        return [ClassScores(p, c) for p, c in zip(probs, counts, strict=True)]

    def _probabilities(self, raw: np.ndarray) -> np.ndarray:
        if raw.shape[-1] == 1:  # one sigmoid unit: P(labels[1])
            p = 1.0 / (1.0 + np.exp(-raw[:, 0])) if self._logits else raw[:, 0]
            return np.stack([1.0 - p, p], axis=1)
        if self._logits:
            shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
            return shifted / shifted.sum(axis=1, keepdims=True)
        return raw

    def unload(self) -> None:
        del self.model, self._serve

    def properties(self) -> dict[str, str]:
        props = {"labels": ",".join(self.labels)}
        if self.vocabulary is not None:
            props |= {"max_length": str(self.vocabulary.max_length), "vocabulary_size": str(len(self.vocabulary))}
        return props
