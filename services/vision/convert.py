"""Vision results -> protos (lumen.vision.v1); shared by both servicers."""

from __future__ import annotations

from google.protobuf.message import Message
from google.rpc import status_pb2

from lumen.common.v1 import common_pb2
from lumen.vision.v1 import vision_pb2 as pb
from services.vision.analysis import Analysis, Outcome
from services.vision.results import Box, FaceFound
from shared.errors import OK_STATUS, LumenError, status_proto_for


def box(value: Box) -> pb.BoundingBox:
    return pb.BoundingBox(x_min=value.x_min, y_min=value.y_min, x_max=value.x_max, y_max=value.y_max)


def status(error: LumenError | None) -> status_pb2.Status:
    return OK_STATUS if error is None else status_proto_for(error)


def size(outcome: Outcome) -> dict[str, int]:
    """width/height fields of a per-image result (0 when the image was not decoded)."""
    if outcome.image is None:
        return {"width": 0, "height": 0}
    return {"width": outcome.image.width, "height": outcome.image.height}


def usage(analysis: Analysis) -> common_pb2.Usage:
    return common_pb2.Usage(images=analysis.processed)


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
