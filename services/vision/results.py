"""What vision runtimes return, independent of protos: boxes, detections, faces."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from services.vision.images import Decoded

# Tasks a vision model directory may declare in model.json.
CLASSIFICATION = "image-classification"
OBJECT_DETECTION = "object-detection"
FACE_DETECTION = "face-detection"
FACE_EMBEDDING = "face-embedding"


def _unit(value: float) -> float:
    return min(1.0, max(0.0, float(value)))


@dataclass(frozen=True)
class Box:
    """Normalised to [0, 1] of the image's width (x) and height (y)."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float

    @classmethod
    def normalized(cls, x_min: float, y_min: float, x_max: float, y_max: float) -> Box:
        """Clamped to the image and ordered, whatever the model produced."""
        x0, x1 = sorted((_unit(x_min), _unit(x_max)))
        y0, y1 = sorted((_unit(y_min), _unit(y_max)))
        return cls(x0, y0, x1, y1)

    @classmethod
    def from_pixels(cls, left: float, top: float, right: float, bottom: float, image: Decoded) -> Box:
        return cls.normalized(left / image.width, top / image.height, right / image.width, bottom / image.height)

    def to_pixels(self, image: Decoded) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) in whole pixels of ``image``."""
        return (
            round(self.x_min * image.width),
            round(self.y_min * image.height),
            round(self.x_max * image.width),
            round(self.y_max * image.height),
        )

    @property
    def area(self) -> float:
        return (self.x_max - self.x_min) * (self.y_max - self.y_min)


@dataclass(frozen=True)
class Detection:
    box: Box
    label_id: int
    label: str
    score: float  # [0, 1]; 1.0 for detectors that give no confidence


@dataclass(frozen=True)
class FaceFound:
    box: Box
    score: float  # [0, 1]; 1.0 for detectors that give no confidence
    # Feature name -> points (x, y) normalised to [0, 1], in the model's order.
    landmarks: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class FaceVector:
    box: Box
    vector: np.ndarray  # float32 (dimension,)


@dataclass(frozen=True)
class FaceQuery:
    """One item for a face detector: the image and whether landmarks are wanted."""

    image: Decoded
    landmarks: bool = False


@dataclass(frozen=True)
class EmbedQuery:
    """One item for a face-embedding model: the image and, optionally, the faces to embed
    (found by another detector); None lets the model's own detector find them."""

    image: Decoded
    boxes: tuple[Box, ...] | None = None
    max_faces: int = 0  # largest faces first; 0 embeds every face


def logistic(margin: float) -> float:
    """Score in (0, 1) for detectors whose confidence is an SVM margin (dlib HOG, OpenCV HOG).

    Not a calibrated probability: it maps the detector's own threshold (margin 0)
    to 0.5, so the default score_threshold keeps what the detector keeps."""
    return 1.0 / (1.0 + math.exp(-float(margin)))
