"""The detectors OpenCV ships inside its wheel (opencv-python-headless 4.x; the 5.0
wheel ships neither the cascades nor HOG).

No general (COCO-style) detector that ships its weights inside a package was
found in the registries, so the default object detector is a set of these
classical detectors, each with its own label:
- ``hog-people``: Dalal-Triggs HOG + linear SVM pedestrian detector (upright
  people, at least 64 x 128 pixels). Score: logistic of the SVM margin.
- ``haar``: a Viola-Jones cascade from ``cv2.data.haarcascades`` (full body,
  cat faces, Russian plates, frontal faces...). Cascades give no confidence:
  score 1.0.

model.json parameters:
- objects (framework opencv-objects): ``detectors``: list of
  {"kind": "hog-people" | "haar", "cascade": file, "label_id": n, "label": name,
   "min_neighbors": n, "min_size": [w, h]}.
- faces (framework opencv-haar-face): ``cascade`` (default frontalface_default).
- both: ``max_side``: images are scaled down so their longer side is at most
  this many pixels before detection (default 1024; boxes are normalised, so
  they do not change meaning).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.vision.images import Decoded
from services.vision.results import Box, Detection, FaceFound, FaceQuery, logistic
from shared.model import BatchedModel

OBJECTS_FRAMEWORK = "opencv-objects"
FACES_FRAMEWORK = "opencv-haar-face"


def cascade_file(name: str, directory: Path) -> Path:
    """A cascade shipped with OpenCV (cv2.data.haarcascades) or one in the model directory."""
    import cv2

    for candidate in (directory / name, Path(cv2.data.haarcascades) / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"cascade {name!r} is neither in {directory} nor in OpenCV's data")


def _scaled(image: Decoded, max_side: int) -> np.ndarray:
    import cv2

    pixels = image.pixels
    longer = max(image.width, image.height)
    if longer <= max_side:
        return pixels
    factor = max_side / longer
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)


@dataclass
class _Finder:
    """One detector: pixels (RGB, already scaled) -> (x, y, w, h, score) in those pixels."""

    kind: str
    label_id: int
    label: str
    engine: Any
    min_neighbors: int = 3
    min_size: tuple[int, int] = (24, 24)

    def find(self, rgb: np.ndarray, grey: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        if self.kind == "hog-people":
            if rgb.shape[0] < 128 or rgb.shape[1] < 64:  # smaller than the HOG window
                return []
            rects, weights = self.engine.detectMultiScale(rgb, winStride=(8, 8), padding=(8, 8), scale=1.05)
            return [(*map(float, r), logistic(float(np.ravel(w)[0]))) for r, w in zip(rects, weights, strict=True)]
        rects = self.engine.detectMultiScale(
            grey, scaleFactor=1.1, minNeighbors=self.min_neighbors, minSize=self.min_size
        )
        return [(*map(float, r), 1.0) for r in rects]


def _finder(spec: dict[str, Any], directory: Path) -> _Finder:
    import cv2

    kind = spec.get("kind", "haar")
    if kind == "hog-people":
        engine = cv2.HOGDescriptor()
        engine.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    elif kind == "haar":
        path = cascade_file(str(spec["cascade"]), directory)
        engine = cv2.CascadeClassifier(str(path))
        if engine.empty():
            raise ValueError(f"{path} is not a cascade OpenCV can read")
    else:
        raise ValueError(f"detector kind must be 'hog-people' or 'haar', not {kind!r}")
    return _Finder(
        kind,
        int(spec.get("label_id", 1)),
        str(spec.get("label", kind)),
        engine,
        int(spec.get("min_neighbors", 3)),
        tuple(spec.get("min_size", (24, 24))),  # type: ignore[arg-type]
    )


class _OpenCVModel(BatchedModel):
    finders: list[_Finder]

    def _run(self, image: Decoded) -> list[tuple[_Finder, Box, float]]:
        import cv2

        rgb = _scaled(image, int(self.config.parameters.get("max_side", 1024)))
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        height, width = grey.shape
        found = []
        for finder in self.finders:
            for x, y, w, h, score in finder.find(rgb, grey):
                found.append((finder, Box.normalized(x / width, y / height, (x + w) / width, (y + h) / height), score))
        found.sort(key=lambda item: -item[2])
        return found

    def warm(self) -> None:
        self.predict([self._warm_item()])

    def _warm_item(self) -> Any:
        return Decoded(np.full((256, 256, 3), 128, np.uint8))

    def unload(self) -> None:
        self.finders = []

    def properties(self) -> dict[str, str]:
        return {"detectors": ", ".join(f"{f.label} ({f.kind})" for f in self.finders)}


class OpenCVObjectDetector(_OpenCVModel):
    def load(self) -> None:
        specs = self.config.parameters.get("detectors") or [{"kind": "hog-people", "label": "person"}]
        self.finders = [_finder(spec, self.config.directory) for spec in specs]

    def predict(self, batch: list[Decoded]) -> Sequence[list[Detection]]:
        return [
            [Detection(box, finder.label_id, finder.label, score) for finder, box, score in self._run(image)]
            for image in batch
        ]


class OpenCVFaceDetector(_OpenCVModel):
    """Haar frontal faces: boxes only (no landmarks, no confidence)."""

    def load(self) -> None:
        params = self.config.parameters
        spec = {
            "kind": "haar",
            "cascade": params.get("cascade", "haarcascade_frontalface_default.xml"),
            "label": "face",
            "min_neighbors": params.get("min_neighbors", 5),
            "min_size": params.get("min_size", (30, 30)),
        }
        self.finders = [_finder(spec, self.config.directory)]

    def _warm_item(self) -> Any:
        return FaceQuery(super()._warm_item())

    def predict(self, batch: list[FaceQuery]) -> Sequence[list[FaceFound]]:
        return [[FaceFound(box, score) for _, box, score in self._run(query.image)] for query in batch]
