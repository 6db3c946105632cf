"""Face recognition data plane: embeddings, verification, galleries and identification.

Faces come from the embedding model's own detector, or from a face-detection
model of the repository when the request names one (its boxes, largest first,
are then embedded). Gallery writes go through GalleryStore and are durable
before the call is answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np

from lumen.common.v1 import common_pb2
from services.vision.analysis import Analysis, ImageAnalyzer, OnImage, Outcome
from services.vision.checks import count_option, distance_threshold, text_length
from services.vision.galleries import (
    MAX_ID_CHARS,
    Candidate,
    GalleryInfo,
    GalleryStore,
    PersonInfo,
    check_gallery_name,
    check_person_id,
)
from services.vision.images import Decoded, decode_message
from services.vision.results import FACE_DETECTION, FACE_EMBEDDING, Box, EmbedQuery, FaceQuery, FaceVector
from shared.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from shared.model import BatchedModel
from shared.repository import Entry, Lease
from shared.results import Result

DEFAULT_MAX_FACES = 100
MAX_FACES = 1000
# Enrolment embeds up to two faces per image: enough to tell "exactly one" from "several".
ENROL_FACES_PER_IMAGE = 2
MAX_TOP_K = 100


@dataclass(frozen=True)
class Verification:
    distance: float
    threshold: float
    face_a: Box
    face_b: Box
    entry: Entry


@dataclass(frozen=True)
class IdentifiedFace:
    box: Box
    candidates: list[Candidate]


@dataclass(frozen=True)
class Identification:
    analysis: Analysis[list[IdentifiedFace]]
    threshold: float


@dataclass(frozen=True)
class Enrolment:
    person: PersonInfo | None
    statuses: list[Result[None]]  # OK: enrolled
    enrolled: int
    processed: int


class FaceRecognizer:
    def __init__(self, analyzer: ImageAnalyzer, store: GalleryStore) -> None:
        self.analyzer = analyzer
        self.repository = analyzer.repository
        self.store = store

    def embedder(self, name: str = "", version: str = "") -> Lease[BatchedModel]:
        return self.analyzer.model(name, version, FACE_EMBEDDING)

    def _face_limit(self, max_faces: int, images: int) -> int:
        """Faces to embed per image within the call's face budget (max_call_faces).

        Unset, the budget is shared out (at most the default per image); a max_faces that
        the images times cannot fit is refused rather than silently cut."""
        budget = self.analyzer.settings.max_call_faces
        count = max(images, 1)
        if max_faces == 0:
            if count > budget:
                raise InvalidArgument("images", f"{count} images; a call embeds at most {budget} faces")
            return min(DEFAULT_MAX_FACES, budget // count)
        limit = count_option(max_faces, "max_faces", DEFAULT_MAX_FACES, MAX_FACES)
        if limit * count > budget:
            raise InvalidArgument(
                "max_faces",
                f"{limit} faces on each of {count} images exceeds the {budget} faces one call may embed; "
                f"at most {max(1, budget // count)} here",
            )
        return limit

    def _threshold(self, lease: Lease[BatchedModel], value: float | None, field: str) -> float:
        return distance_threshold(value, field, float(getattr(lease.model, "threshold", 0.6)))

    async def _embed_decoded(
        self,
        entry: Lease[BatchedModel],
        detector: Lease[BatchedModel] | None,
        images: list[Decoded],
        max_faces: int,
    ) -> list[list[FaceVector]]:
        if not images:
            return []
        boxes: list[tuple[Box, ...] | None] = [None] * len(images)
        if detector is not None:
            found = await detector.predict([FaceQuery(image) for image in images])
            boxes = [tuple(f.box for f in sorted(faces, key=lambda f: -f.box.area)) for faces in found]
        return await entry.predict([EmbedQuery(image, b, max_faces) for image, b in zip(images, boxes, strict=True)])

    def _detector(self, name: str, version: str) -> AbstractContextManager[Lease[BatchedModel] | None]:
        """The face detector the request names, held; none (the embedder's own) when unnamed."""
        return self.analyzer.model(name, version, FACE_DETECTION, "detector") if name else nullcontext()

    async def _embed_all(
        self,
        entry: Lease[BatchedModel],
        detector: Lease[BatchedModel] | None,
        images: Sequence[common_pb2.Image],
        max_faces: int,
    ) -> list[Outcome[list[FaceVector]]]:
        decoded = await self.analyzer.decode(images, self.analyzer.settings.max_images, self.analyzer.detect_limits)
        ready = [d.value for d in decoded if d.ok]
        vectors = iter(await self._embed_decoded(entry, detector, ready, max_faces))
        return [d.map(lambda image: OnImage(image, next(vectors))) for d in decoded]

    async def embed(
        self,
        images: Sequence[common_pb2.Image],
        model: str = "",
        version: str = "",
        detector: str = "",
        detector_version: str = "",
        max_faces: int = 0,
    ) -> Analysis[list[FaceVector]]:
        limit = self._face_limit(max_faces, len(images))
        with self.embedder(model, version) as lease, self._detector(detector, detector_version) as found_by:
            return Analysis(await self._embed_all(lease, found_by, images, limit), lease.entry)

    async def verify(
        self,
        image_a: common_pb2.Image,
        image_b: common_pb2.Image,
        model: str = "",
        version: str = "",
        threshold: float | None = None,
    ) -> Verification:
        with self.embedder(model, version) as lease:
            limit = self._threshold(lease, threshold, "threshold")
            a, b = await asyncio.to_thread(self._decode_pair, image_a, image_b)
            faces_a, faces_b = await self._embed_decoded(lease, None, [a, b], 1)
        for field, faces in (("image_a", faces_a), ("image_b", faces_b)):
            if not faces:
                raise InvalidArgument(field, "holds no face the model's detector could find")
        distance = float(np.linalg.norm(faces_a[0].vector - faces_b[0].vector))
        return Verification(distance, limit, faces_a[0].box, faces_b[0].box, lease.entry)

    def _decode_pair(self, image_a: common_pb2.Image, image_b: common_pb2.Image) -> tuple[Decoded, Decoded]:
        """Both photos share the call's detector pixel budget, as the images of the other face RPCs do
        (two photos at 4 MP each took 2.3 s CPU)."""
        limits = self.analyzer.detect_limits
        budget = [limits.max_call_pixels]
        return decode_message(image_a, "image_a", limits, budget), decode_message(image_b, "image_b", limits, budget)

    # Galleries -------------------------------------------------------------

    async def create_gallery(self, name: str, model: str = "", version: str = "") -> GalleryInfo:
        check_gallery_name(name)
        with self.embedder(model, version) as lease:
            model_name, dimension = lease.entry.config.name, int(getattr(lease.model, "dimension", 0))
        if not dimension:
            raise FailedPrecondition(f"face-embedding model {model_name!r} gives no dimension")
        return await asyncio.to_thread(self.store.create, name, model_name, dimension)

    async def delete_gallery(self, name: str) -> None:
        check_gallery_name(name)
        await asyncio.to_thread(self.store.delete, name)

    async def get_gallery(self, name: str) -> GalleryInfo:
        check_gallery_name(name)
        return await asyncio.to_thread(self.store.get, name)

    async def list_galleries(self) -> list[GalleryInfo]:
        return await asyncio.to_thread(self.store.list)

    async def list_persons(self, gallery: str) -> list[PersonInfo]:
        check_gallery_name(gallery, "gallery")
        return await asyncio.to_thread(self.store.persons, gallery)

    async def delete_person(self, gallery: str, person_id: str) -> None:
        check_gallery_name(gallery, "gallery")
        check_person_id(person_id)
        await asyncio.to_thread(self.store.delete_person, gallery, person_id)

    async def _gallery_model(self, gallery: str) -> Lease[BatchedModel]:
        """The gallery's face-embedding model, held."""
        check_gallery_name(gallery, "gallery")
        info = await asyncio.to_thread(self.store.get, gallery, "gallery")
        try:
            return self.embedder(info.model)
        except NotFound:
            raise FailedPrecondition(
                f"gallery {gallery!r} uses face-embedding model {info.model!r}, which this service does not serve"
            ) from None

    async def enroll(
        self, gallery: str, person_id: str, display_name: str, images: Sequence[common_pb2.Image]
    ) -> Enrolment:
        check_person_id(person_id)
        text_length(display_name, "display_name", MAX_ID_CHARS)
        most = self.analyzer.settings.max_call_faces // ENROL_FACES_PER_IMAGE
        if len(images) > most:
            raise InvalidArgument("images", f"{len(images)} images; one EnrollPerson call takes at most {most}")
        with await self._gallery_model(gallery) as lease:
            outcomes = await self._embed_all(lease, None, images, ENROL_FACES_PER_IMAGE)
        statuses: list[Result[None]] = []
        vectors: list[np.ndarray] = []
        for i, outcome in enumerate(outcomes):
            faces = outcome.value.value if outcome.ok else []
            if outcome.error is not None:
                statuses.append(Result.failed(outcome.error))
            elif len(faces) != 1:
                why = "holds no face the model's detector could find" if not faces else "shows more than one face"
                statuses.append(
                    Result.failed(InvalidArgument(f"images[{i}]", f"{why}; enrolment takes photos of exactly one face"))
                )
            else:
                statuses.append(Result.of(None))
                vectors.append(faces[0].vector)
        person, accepted = await asyncio.to_thread(self.store.enroll, gallery, person_id, display_name, vectors)
        # Images past the per-person face limit are refused, in input order.
        fitted = 0
        for i, status in enumerate(statuses):
            if status.ok:
                fitted += 1
                if fitted > accepted:
                    statuses[i] = Result.failed(
                        ResourceExhausted(
                            f"images[{i}]: person {person_id!r} already has the most faces allowed", f"images[{i}]"
                        )
                    )
        processed = sum(1 for o in outcomes if o.ok)
        return Enrolment(person, statuses, accepted, processed)

    async def identify(
        self,
        gallery: str,
        images: Sequence[common_pb2.Image],
        detector: str = "",
        detector_version: str = "",
        top_k: int = 0,
        threshold: float | None = None,
        max_faces: int = 0,
    ) -> Identification:
        k = count_option(top_k, "top_k", 1, MAX_TOP_K)
        limit = self._face_limit(max_faces, len(images))
        with await self._gallery_model(gallery) as lease, self._detector(detector, detector_version) as found_by:
            match_below = self._threshold(lease, threshold, "threshold")
            outcomes = await self._embed_all(lease, found_by, images, limit)
        entry = lease.entry
        faces = [f for o in outcomes if o.ok for f in o.value.value]
        nearest = iter(await asyncio.to_thread(self.store.nearest, gallery, [f.vector for f in faces], k))
        identified = [
            o.map(lambda found: OnImage(found.image, [IdentifiedFace(f.box, next(nearest)) for f in found.value]))
            for o in outcomes
        ]
        return Identification(Analysis(identified, entry), match_below)
