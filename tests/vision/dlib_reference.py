"""dlib run in process with face_recognition's recipe, for comparison with the service."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from services.vision.runtime_dlib import MIN_MARGIN


def _models() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class DlibReference:
    def __init__(self) -> None:
        import dlib

        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.landmarks = dlib.shape_predictor(str(_models() / "shape_predictor_68_face_landmarks.dat"))
        self.align = dlib.shape_predictor(str(_models() / "shape_predictor_5_face_landmarks.dat"))
        self.encoder = dlib.face_recognition_model_v1(str(_models() / "dlib_face_recognition_resnet_model_v1.dat"))

    def faces(self, pixels: np.ndarray) -> list[tuple[object, float]]:
        """(rectangle, margin), largest first, HOG upsampled once (face_recognition's default),
        margins from the service's default min_margin up."""
        rects, margins, _ = self.detector.run(pixels, 1, MIN_MARGIN)
        return sorted(zip(rects, margins, strict=True), key=lambda f: -f[0].area())

    def embed(self, pixels: np.ndarray, rect: object) -> np.ndarray:
        return np.asarray(self.encoder.compute_face_descriptor(pixels, self.align(pixels, rect), 1), np.float32)

    def largest_embedding(self, pixels: np.ndarray) -> np.ndarray:
        return self.embed(pixels, self.faces(pixels)[0][0])

    @staticmethod
    def normalized(rect: object, pixels: np.ndarray) -> list[float]:
        height, width = pixels.shape[:2]
        return [rect.left() / width, rect.top() / height, (rect.right() + 1) / width, (rect.bottom() + 1) / height]
