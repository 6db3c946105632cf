"""Image analysis data plane: classification, object detection, face detection.

Each call checks its fields, decodes every image off the event loop (keeping
each image's own error), sends the decoded ones to the model's dynamic
batcher in one submission, and returns one outcome per input image.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from lumen.common.v1 import common_pb2
from services.vision.checks import count_option, unit_interval
from services.vision.images import Decoded, Limits, check_count, configure_pillow, decode_each
from services.vision.labels import LabelMap
from services.vision.results import (
    CLASSIFICATION,
    FACE_DETECTION,
    OBJECT_DETECTION,
    Detection,
    FaceFound,
    FaceQuery,
)
from services.vision.settings import VisionSettings
from shared.model import BatchedModel
from shared.repository import Entry, Lease, ModelRepository
from shared.results import Result

T = TypeVar("T")

DEFAULT_TOP_K = 5
DEFAULT_MAX_RESULTS = 100
DEFAULT_SCORE_THRESHOLD = 0.5
MAX_RESULTS = 1000


@dataclass(frozen=True)
class OnImage(Generic[T]):
    """What the model found on one decoded image (whose size the answer reports)."""

    image: Decoded
    value: T


Outcome = Result[OnImage[T]]  # one input image's answer, or why it was not processed


@dataclass(frozen=True)
class Detect:
    """A detection call's options as the request gives them (the analyzer checks them)."""

    score_threshold: float | None
    max_results: int


@dataclass(frozen=True)
class ScoredLabel:
    label_id: int
    label: str
    score: float


@dataclass(frozen=True)
class Analysis(Generic[T]):
    outcomes: list[Outcome[T]]
    entry: Entry

    @property
    def processed(self) -> int:
        return sum(1 for o in self.outcomes if o.ok)


def top_labels(probabilities: np.ndarray, labels: LabelMap, top_k: int, threshold: float) -> list[ScoredLabel]:
    order = np.argsort(-probabilities, kind="stable")[:top_k]
    return [
        ScoredLabel(int(i), labels.name(int(i)), float(probabilities[i]))
        for i in order
        if probabilities[i] >= threshold
    ]


class ImageAnalyzer:
    def __init__(self, repository: ModelRepository, settings: VisionSettings) -> None:
        self.repository = repository
        self.settings = settings
        self.limits = Limits(settings.max_image_bytes, settings.max_image_pixels, settings.max_call_pixels)
        # Detectors cost per pixel scanned, so their calls (and each image) get a smaller pixel budget.
        detect = min(settings.max_detect_call_pixels, settings.max_image_pixels)
        self.detect_limits = Limits(settings.max_image_bytes, detect, detect)
        configure_pillow(self.limits)

    async def decode(
        self, images: Sequence[common_pb2.Image], maximum: int, limits: Limits | None = None
    ) -> list[Result[Decoded]]:
        check_count(images, "images", maximum)
        return await asyncio.to_thread(decode_each, images, "images", limits or self.limits)

    def model(self, name: str, version: str, task: str, field: str = "model") -> Lease[BatchedModel]:
        """The model of ``task`` serving a call, held (``with analyzer.model(...) as lease:``)."""
        return self.repository.resolve(name, version, task, BatchedModel, field=field)

    async def run(
        self,
        lease: Lease[BatchedModel],
        images: Sequence[common_pb2.Image],
        maximum: int,
        item: Callable[[Decoded], Any],
        finish: Callable[[Any], T],
        limits: Limits | None = None,
    ) -> Analysis[T]:
        """Decode, batch the decodable images through the held model, keep per-image errors in place."""
        decoded = await self.decode(images, maximum, limits)
        ready = [d.value for d in decoded if d.ok]
        values = iter(await lease.predict([item(d) for d in ready]) if ready else [])
        outcomes = [d.map(lambda image: OnImage(image, finish(next(values)))) for d in decoded]
        return Analysis(outcomes, lease.entry)

    async def classify(
        self,
        images: Sequence[common_pb2.Image],
        model: str = "",
        version: str = "",
        top_k: int = 0,
        score_threshold: float = 0.0,
    ) -> Analysis[list[ScoredLabel]]:
        k = count_option(top_k, "top_k", DEFAULT_TOP_K, MAX_RESULTS)
        threshold = unit_interval(score_threshold, "score_threshold", 0.0)
        with self.model(model, version, CLASSIFICATION) as lease:
            labels = getattr(lease.model, "labels", LabelMap({}))
            return await self.run(
                lease,
                images,
                self.settings.max_classify_images,
                lambda d: d,
                lambda p: top_labels(p, labels, k, threshold),
            )

    async def _detect(
        self,
        images: Sequence[common_pb2.Image],
        name: str,
        version: str,
        task: str,
        options: Detect,
        item: Callable[[Decoded], Any],
        keep: Callable[[Any, float, int], T],
    ) -> Analysis[T]:
        """A detector's call: options checked, the images through the held model at the detectors' pixel
        budget, ``keep`` (what was found, threshold, limit) of each answer."""
        threshold = unit_interval(options.score_threshold, "score_threshold", DEFAULT_SCORE_THRESHOLD)
        limit = count_option(options.max_results, "max_results", DEFAULT_MAX_RESULTS, MAX_RESULTS)
        with self.model(name, version, task) as lease:

            def finish(found: Any) -> T:
                return keep(found, threshold, limit)

            return await self.run(lease, images, self.settings.max_images, item, finish, self.detect_limits)

    async def detect_objects(
        self, images: Sequence[common_pb2.Image], model: str, version: str, options: Detect
    ) -> Analysis[list[Detection]]:
        def keep(found: list[Detection], threshold: float, limit: int) -> list[Detection]:
            return [d for d in found if d.score >= threshold][:limit]

        return await self._detect(images, model, version, OBJECT_DETECTION, options, lambda d: d, keep)

    async def detect_faces(
        self, images: Sequence[common_pb2.Image], model: str, version: str, options: Detect, landmarks: bool
    ) -> Analysis[list[FaceFound]]:
        def keep(found: list[FaceFound], threshold: float, limit: int) -> list[FaceFound]:
            return sorted((f for f in found if f.score >= threshold), key=lambda f: -f.score)[:limit]  # best first

        query = functools.partial(FaceQuery, landmarks=landmarks)
        return await self._detect(images, model, version, FACE_DETECTION, options, query, keep)
