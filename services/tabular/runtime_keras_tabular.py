"""Keras dense nets on feature rows, as the training service's tabular-dense recipe saves them.

model.json parameters: ``file`` (the .keras file), ``features`` (column names,
in input order), ``labels`` (class of each output), ``mean`` and ``std`` (the
training rows' standardisation, applied here). One compiled ``tf.function``
serves every batch, never ``model.predict``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from shared.model import BatchedModel

FRAMEWORK = "keras-tabular"
TASK = "tabular-classification"


class TabularClassifier(BatchedModel):
    def load(self) -> None:
        import keras
        import tensorflow as tf

        params = self.config.parameters
        self.model = keras.saving.load_model(self.config.path / params.get("file", "model.keras"), compile=False)
        self.features = [str(f) for f in params["features"]]
        self.labels = [str(label) for label in params["labels"]]
        self.mean = np.asarray(params.get("mean", [0.0] * len(self.features)), dtype=np.float32)
        self.std = np.asarray(params.get("std", [1.0] * len(self.features)), dtype=np.float32)
        model = self.model
        spec = tf.TensorSpec([None, len(self.features)], tf.float32)
        self._serve: Any = tf.function(lambda x: model(x, training=False), input_signature=[spec])

    def warm(self) -> None:
        self.predict([self.mean])

    def predict(self, batch: list[np.ndarray]) -> Sequence[np.ndarray]:
        rows = (np.stack(batch).astype(np.float32) - self.mean) / self.std
        return list(self._serve(rows).numpy())

    def unload(self) -> None:
        del self.model, self._serve

    def properties(self) -> dict[str, str]:
        return {"features": ",".join(self.features), "labels": ",".join(self.labels)}
