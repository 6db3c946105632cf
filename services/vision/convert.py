"""Vision results -> protos (lumen.vision.v1); shared by both servicers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf.message import Message

from lumen.common.v1 import common_pb2
from lumen.vision.v1 import vision_pb2 as pb
from services.vision.analysis import Analysis, Detect
from services.vision.results import Box, FaceFound
from shared.repository_servicer import model_info
from shared.results import item_messages

T = TypeVar("T")
P = TypeVar("P")


def box(value: Box) -> pb.BoundingBox:
    return pb.BoundingBox(x_min=value.x_min, y_min=value.y_min, x_max=value.x_max, y_max=value.y_max)


def per_image(analysis: Analysis[T], message: Callable[..., P], fields: Callable[[T], dict[str, Any]]) -> list[P]:
    """One result message per input image: its status, and its size and ``fields`` where it was analysed."""
    return item_messages(
        analysis.outcomes,
        message,
        lambda found: {"width": found.image.width, "height": found.image.height, **fields(found.value)},
    )


def usage(analysis: Analysis) -> common_pb2.Usage:
    return common_pb2.Usage(images=analysis.processed)


def response(kind: Callable[..., P], analysis: Analysis, results: list[Any], service: str, **more: Any) -> P:
    """A per-image RPC's response: ``results`` (one per image), the model that ran, the images it processed."""
    return kind(results=results, model=model_info(analysis.entry, service), usage=usage(analysis), **more)


def face(found: FaceFound) -> pb.Face:
    return pb.Face(
        box=box(found.box),
        score=found.score,
        landmarks=[
            pb.Landmark(name=name, points=[pb.Point(x=x, y=y) for x, y in points])
            for name, points in found.landmarks.items()
        ],
    )


def optional(message: Message, field: str) -> float | None:
    """The value of a proto3 ``optional`` scalar, None when unset."""
    return getattr(message, field) if message.HasField(field) else None


def detect(request: pb.DetectObjectsRequest | pb.DetectFacesRequest) -> Detect:
    """A detection request's options."""
    return Detect(optional(request, "score_threshold"), request.max_results)
