"""Keras image classifiers: a `.keras` file or a TensorFlow SavedModel (e.g. from `model.export()`).

Requests never go through ``model.predict()`` (about 100x slower at batch 1):
a `.keras` model is wrapped once in a ``tf.function`` with a fixed input
signature (one trace, batch dimension free), a SavedModel is called through
its already compiled ``serving_default`` signature.

model.json parameters:
- ``labels``: label file (see labels.py), relative to the model directory;
  without it labels are the class ids.
- ``scale`` / ``offset``: input = pixel * scale + offset (default 1/255, 0).
- ``resample``: Pillow filter for resizing to the model's input (default bilinear).
- ``softmax``: apply softmax to the output (for models that end in logits).
- ``input_size``: [height, width] when the model's input shape leaves them open.
Images are stretched to the input size; one input channel means grey (luma).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from services.vision.images import Decoded
from services.vision.labels import LabelMap
from services.vision.preprocess import resampling, resize_to, softmax
from services.vision.tf_device import tf_device
from shared.model import BatchedModel, resolve_path

FRAMEWORK = "keras"


class KerasClassifier(BatchedModel):
    labels: LabelMap

    def load(self) -> None:
        import tensorflow as tf

        self._tf = tf
        params = self.config.parameters
        self.scale = float(params.get("scale", 1 / 255))
        self.offset = float(params.get("offset", 0.0))
        self.apply_softmax = bool(params.get("softmax", False))
        self.resample = resampling(str(params.get("resample", "bilinear")))
        path = self.config.path
        with tf.device(tf_device(self.device)):
            if (path / "saved_model.pb").is_file():
                shape, self._serve = self._load_saved_model(path)
            else:
                shape, self._serve = self._load_keras_file(path)
        size = params.get("input_size") or shape[1:3]
        if len(shape) != 4 or size[0] is None or size[1] is None or shape[3] not in (1, 3):
            raise ValueError(f"{path}: input shape {shape} is not (batch, height, width, 1 or 3); set input_size")
        self.height, self.width, self.channels = int(size[0]), int(size[1]), int(shape[3])
        labels = params.get("labels")
        self.labels = LabelMap.load(resolve_path(str(labels), self.config.directory)) if labels else LabelMap({})

    def _load_keras_file(self, path: Any) -> tuple[list[Any], Callable[[Any], Any]]:
        import keras

        tf = self._tf
        model = keras.saving.load_model(str(path), compile=False)
        shape = list(model.inputs[0].shape)
        spec = tf.TensorSpec([None, *shape[1:]], tf.float32)
        serve = tf.function(lambda x: model(x, training=False), input_signature=[spec], reduce_retracing=True)
        serve.get_concrete_function()  # trace now, not on the first request
        self._keep = model
        return shape, serve

    def _load_saved_model(self, path: Any) -> tuple[list[Any], Callable[[Any], Any]]:
        tf = self._tf
        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures["serving_default"]
        inputs = signature.structured_input_signature[1]
        if len(inputs) != 1:
            raise ValueError(f"{path}: serving_default takes {len(inputs)} inputs; an image classifier takes one")
        ((name, spec),) = inputs.items()
        outputs = sorted(signature.structured_outputs)
        self._keep = loaded  # the signature's variables live as long as this object

        def serve(x: Any) -> Any:
            return signature(**{name: tf.cast(x, spec.dtype)})[outputs[0]]

        return list(spec.shape), serve

    def warm(self) -> None:
        self.predict([Decoded(np.full((32, 32, 3), 128, np.uint8))])

    def prepare(self, items: Sequence[Decoded]) -> list[np.ndarray]:
        """Each image resized and scaled to the model's input (off the model's thread)."""
        out = []
        for image in items:
            pixels = resize_to(image.pixels, self.height, self.width, self.channels, self.resample)
            out.append(pixels.astype(np.float32) * self.scale + self.offset)
        return out

    def predict(self, batch: list[Decoded]) -> Sequence[np.ndarray]:
        return self.predict_prepared(self.prepare(batch))

    def predict_prepared(self, batch: list[np.ndarray]) -> Sequence[np.ndarray]:
        tf = self._tf
        inputs = np.stack(batch)
        with tf.device(tf_device(self.device)):
            outputs = np.asarray(self._serve(tf.constant(inputs)), dtype=np.float32)
        outputs = outputs.reshape(len(batch), -1)
        return list(softmax(outputs) if self.apply_softmax else outputs)

    def unload(self) -> None:
        del self._serve, self._keep

    def properties(self) -> dict[str, str]:
        return {"input": f"{self.height}x{self.width}x{self.channels}", "classes": str(len(self.labels))}
