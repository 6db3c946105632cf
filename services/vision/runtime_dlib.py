"""dlib face detection, landmarks and 128-d face embeddings, with the model files of
the `face_recognition_models` package and dlib from the `dlib-bin` wheel.

This is what the `face_recognition` package does (HOG detector upsampled once,
5-point alignment, ResNet descriptor, same person below distance 0.6), called
through dlib directly: `face_recognition_models/__init__.py` imports
`pkg_resources`, which setuptools >= 81 no longer ships, so the model files are
located with importlib (model.json ``path: pkg:face_recognition_models/models``)
and neither package's Python code is imported.

Scores: dlib's HOG detector gives an SVM margin per face; it is reported as its
logistic (0.5 at dlib's own threshold), not as a calibrated probability. Faces with a
margin below ``min_margin`` (default 0.2, score 0.55) are not reported by either model:
at dlib's own 0.0, the mission patch on scikit-image's astronaut portrait is a second
"face" (margin 0.12), and on 26 packaged photos and LFW's 100 face crops no real face
lost by 0.2 outweighs that (figures in the vision README, `python -m services.vision.face_check`).
"""

from __future__ import annotations

import queue
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from services.vision.images import Decoded
from services.vision.results import Box, EmbedQuery, FaceFound, FaceQuery, FaceVector, logistic
from shared.model import BatchedModel, Model

DETECTOR_FRAMEWORK = "dlib-face-detector"
RECOGNITION_FRAMEWORK = "dlib-face-recognition"

LANDMARKS_68 = "shape_predictor_68_face_landmarks.dat"
LANDMARKS_5 = "shape_predictor_5_face_landmarks.dat"
RESNET = "dlib_face_recognition_resnet_model_v1.dat"
MAX_SIDE = 1600  # longest side, in pixels, at which faces are searched (parameter max_side)
MIN_MARGIN = 0.2  # least SVM margin of a reported face (parameter min_margin; dlib's own is 0.0)

# The 68-point (iBUG 300-W) layout, names as face_recognition gives them; left and
# right are as seen in the image.
FEATURES_68 = (
    ("chin", 0, 17),
    ("left_eyebrow", 17, 22),
    ("right_eyebrow", 22, 27),
    ("nose_bridge", 27, 31),
    ("nose_tip", 31, 36),
    ("left_eye", 36, 42),
    ("right_eye", 42, 48),
    ("outer_lips", 48, 60),
    ("inner_lips", 60, 68),
)


class _HogFaces:
    """dlib's frontal face detector: rectangles (in the image's pixels) and margins, largest face first.

    dlib runs the detector without the GIL, so two model instances search two images on two cores
    (12.4 against 23.7 images/s here). A detector loads each image into its scanner, though (two
    threads on one crash the process), so each search borrows one of its own from a pool, built at
    load (~0.2 s each) for every instance. The shape predictors only read their model: they are shared."""

    def __init__(self, parameters: dict[str, Any], instances: int = 1) -> None:
        import dlib

        self._dlib = dlib
        self._pool: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(instances):
            self._pool.put(dlib.get_frontal_face_detector())
        self.upsample = int(parameters.get("upsample", 1))
        self.max_side = int(parameters.get("max_side", MAX_SIDE))
        self.min_margin = float(parameters.get("min_margin", MIN_MARGIN))

    def find(self, image: Decoded) -> list[tuple[Any, float]]:
        # Upsampling a 50-megapixel photo would take minutes and gigabytes: large images are
        # searched at max_side pixels, and the boxes mapped back to full resolution.
        factor = min(1.0, self.max_side / max(image.width, image.height))
        pixels = image.pixels
        if factor < 1.0:
            import cv2

            size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
            pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        with self._detector() as detector:
            rects, margins, _ = detector.run(pixels, self.upsample, self.min_margin)
        if factor < 1.0:
            rects = [
                self._dlib.rectangle(
                    round(r.left() / factor),
                    round(r.top() / factor),
                    round(r.right() / factor),
                    round(r.bottom() / factor),
                )
                for r in rects
            ]
        found = list(zip(rects, margins, strict=True))
        found.sort(key=lambda f: -f[0].area())
        return found

    @contextmanager
    def _detector(self) -> Iterator[Any]:
        try:
            detector = self._pool.get_nowait()
        except queue.Empty:  # more threads than instances (never from the batcher's own)
            detector = self._dlib.get_frontal_face_detector()
        try:
            yield detector
        finally:
            self._pool.put(detector)

    def box(self, rect: Any, image: Decoded) -> Box:
        return Box.from_pixels(rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1, image)

    def rect(self, box: Box, image: Decoded) -> Any:
        left, top, right, bottom = box.to_pixels(image)
        return self._dlib.rectangle(left, top, max(left, right - 1), max(top, bottom - 1))


def _file(model: Model, name: str) -> str:
    path = model.config.path / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (is face_recognition_models installed?)")
    return str(path)


class DlibFaceDetector(BatchedModel):
    """HOG face boxes with scores; 68 landmarks on request."""

    def load(self) -> None:
        import dlib

        self._faces = _HogFaces(self.config.parameters, self.config.batching.instances)
        self._landmarks = dlib.shape_predictor(_file(self, LANDMARKS_68))

    def warm(self) -> None:
        self.predict([FaceQuery(Decoded(np.full((160, 160, 3), 128, np.uint8)), landmarks=True)])

    def _landmarks_of(self, rect: Any, image: Decoded) -> dict[str, list[tuple[float, float]]]:
        shape = self._landmarks(image.pixels, rect)
        points = [
            (min(1.0, max(0.0, p.x / image.width)), min(1.0, max(0.0, p.y / image.height))) for p in shape.parts()
        ]
        return {name: points[start:end] for name, start, end in FEATURES_68}

    def predict(self, batch: list[FaceQuery]) -> Sequence[list[FaceFound]]:
        results = []
        for query in batch:
            faces = []
            for rect, margin in self._faces.find(query.image):
                landmarks = self._landmarks_of(rect, query.image) if query.landmarks else {}
                faces.append(FaceFound(self._faces.box(rect, query.image), logistic(margin), landmarks))
            results.append(faces)
        return results

    def unload(self) -> None:
        del self._landmarks

    def properties(self) -> dict[str, str]:
        return {
            "detector": "dlib HOG frontal",
            "landmarks": "68",
            "upsample": str(self._faces.upsample),
            "min_margin": str(self._faces.min_margin),
        }


class DlibFaceRecognition(BatchedModel):
    """128-d ResNet face descriptors; faces of one person lie within about 0.6 of each other."""

    dimension = 128

    def load(self) -> None:
        import dlib

        params = self.config.parameters
        self.threshold = float(params.get("threshold", 0.6))
        self.num_jitters = int(params.get("num_jitters", 1))
        self._dlib = dlib
        self._faces = _HogFaces(params, self.config.batching.instances)
        self._align = dlib.shape_predictor(_file(self, LANDMARKS_5))
        self._encoder = dlib.face_recognition_model_v1(_file(self, RESNET))

    def warm(self) -> None:
        image = Decoded(np.full((160, 160, 3), 128, np.uint8))
        self.predict([EmbedQuery(image, (Box(0.2, 0.2, 0.8, 0.8),))])

    def _embed(self, query: EmbedQuery) -> list[FaceVector]:
        image = query.image
        if query.boxes is None:
            rects = [rect for rect, _ in self._faces.find(image)]
        else:
            rects = [self._faces.rect(box, image) for box in query.boxes]
        if query.max_faces:
            rects = rects[: query.max_faces]
        if not rects:
            return []
        shapes = self._dlib.full_object_detections()
        for rect in rects:
            shapes.append(self._align(image.pixels, rect))
        descriptors = self._encoder.compute_face_descriptor(image.pixels, shapes, self.num_jitters)
        return [
            FaceVector(self._faces.box(rect, image), np.asarray(d, dtype=np.float32))
            for rect, d in zip(rects, descriptors, strict=True)
        ]

    def predict(self, batch: list[EmbedQuery]) -> Sequence[list[FaceVector]]:
        return [self._embed(query) for query in batch]

    def unload(self) -> None:
        del self._encoder, self._align

    def properties(self) -> dict[str, str]:
        return {
            "dimension": str(self.dimension),
            "threshold": str(self.threshold),
            "detector": "dlib HOG frontal",
            "min_margin": str(self._faces.min_margin),
            "num_jitters": str(self.num_jitters),
        }
