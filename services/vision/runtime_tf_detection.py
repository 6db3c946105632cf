"""TF2 object-detection SavedModels: the TF Object Detection API's export signature.

``serving_default`` takes one image tensor (1, height, width, 3), uint8 (or
float, cast) and returns ``detection_boxes`` (1, N, 4) as normalised
[y_min, x_min, y_max, x_max], ``detection_classes`` (1, N) label-map ids,
``detection_scores`` (1, N) in [0, 1] and ``num_detections`` (1,). Images run
one at a time (these models take batch 1 at any size).

model.json parameters: ``label_map`` (a .pbtxt, .json or .txt file relative to
the model directory; ids as in the file).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from services.vision.images import Decoded
from services.vision.labels import LabelMap
from services.vision.results import Box, Detection
from services.vision.tf_device import tf_device
from shared.model import BatchedModel, resolve_path

FRAMEWORK = "tf-detection"
OUTPUTS = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")


class TFDetectionModel(BatchedModel):
    def load(self) -> None:
        import tensorflow as tf

        self._tf = tf
        with tf.device(tf_device(self.device)):
            self._loaded = tf.saved_model.load(str(self.config.path))
        signature = self._loaded.signatures["serving_default"]
        missing = [o for o in OUTPUTS if o not in signature.structured_outputs]
        if missing:
            raise ValueError(f"{self.config.path}: serving_default lacks {', '.join(missing)}")
        inputs = signature.structured_input_signature[1]
        if len(inputs) != 1:
            raise ValueError(f"{self.config.path}: serving_default takes {len(inputs)} inputs; a detector takes one")
        ((self._input_name, self._input_spec),) = inputs.items()
        self._signature = signature
        label_map = self.config.parameters.get("label_map")
        self.labels = LabelMap.load(resolve_path(str(label_map), self.config.directory)) if label_map else LabelMap({})

    def warm(self) -> None:
        self.predict([Decoded(np.full((64, 64, 3), 128, np.uint8))])

    def _detect(self, image: Decoded) -> list[Detection]:
        tf = self._tf
        tensor = tf.cast(tf.constant(image.pixels[None]), self._input_spec.dtype)
        out: dict[str, Any] = self._signature(**{self._input_name: tensor})
        count = int(np.asarray(out["num_detections"]).reshape(-1)[0])
        boxes = np.asarray(out["detection_boxes"]).reshape(-1, 4)[:count]
        classes = np.asarray(out["detection_classes"]).reshape(-1)[:count]
        scores = np.asarray(out["detection_scores"]).reshape(-1)[:count]
        detections = []
        for (y_min, x_min, y_max, x_max), label_id, score in zip(boxes, classes, scores, strict=True):
            label = round(float(label_id))
            detections.append(
                Detection(Box.normalized(x_min, y_min, x_max, y_max), label, self.labels.name(label), float(score))
            )
        detections.sort(key=lambda d: -d.score)
        return detections

    def predict(self, batch: list[Decoded]) -> Sequence[list[Detection]]:
        with self._tf.device(tf_device(self.device)):
            return [self._detect(image) for image in batch]

    def unload(self) -> None:
        del self._signature, self._loaded

    def properties(self) -> dict[str, str]:
        return {"classes": str(len(self.labels)), "signature": "tf-object-detection-api"}
