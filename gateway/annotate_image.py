"""GatewayService.AnnotateImage: vision's labels, objects and faces of one image, in parallel.

Each feature is one ImageAnalysisService call with the image as a batch of
one (a spec run by gateway.composite); the backend's per-image status (about
"images[0]") is restated as the part's status about "image".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

from google.protobuf.message import Message

from gateway.composite import Feature, check_features, run_features
from gateway.fanout import check_part_timeout
from gateway.scope import Scope
from lumen.gateway.v1 import gateway_pb2 as pb
from lumen.vision.v1 import vision_pb2, vision_pb2_grpc
from shared.errors import InvalidArgument

MAX_FEATURES = 3
MAX_RESULTS = 1_000
VISION = vision_pb2_grpc.ImageAnalysisServiceStub


def _options(feature: pb.ImageFeature) -> dict[str, Any]:
    """The feature's model and, when set, score_threshold, as backend request fields."""
    threshold = {"score_threshold": feature.score_threshold} if feature.HasField("score_threshold") else {}
    return {"model": feature.model, **threshold}


def _vision(
    field: str, part: type[Message], method: str, count: str, extra: Callable[[Any], dict[str, Any]] = lambda r: {}
) -> Feature:
    """An ImageAnalysisService call on the image as a batch of one: max_results sent as ``count``, the reply's
    ``field`` copied into the part."""
    request_type = getattr(vision_pb2, f"{method}Request")

    def request(r: pb.AnnotateImageRequest, f: pb.ImageFeature) -> Message:
        return cast(Message, request_type(images=[r.image], **{count: f.max_results}, **extra(r), **_options(f)))

    def copied(result: Any, f: pb.ImageFeature) -> dict[str, Any]:
        return {field: getattr(result, field)}

    return Feature(field, part, "vision", VISION, method, request, copied, max_results=MAX_RESULTS)


FEATURES = {
    pb.IMAGE_FEATURE_TYPE_LABELS: _vision("labels", pb.LabelsPart, "ClassifyImages", "top_k"),
    pb.IMAGE_FEATURE_TYPE_OBJECTS: _vision("objects", pb.ObjectsPart, "DetectObjects", "max_results"),
    pb.IMAGE_FEATURE_TYPE_FACES: _vision(
        "faces", pb.FacesPart, "DetectFaces", "max_results", lambda r: {"landmarks": r.face_landmarks}
    ),
}


def validate(request: pb.AnnotateImageRequest) -> None:
    if not request.HasField("image") or request.image.WhichOneof("source") is None:
        raise InvalidArgument("image", "must be set (image.content)")
    check_features(request.features, FEATURES, MAX_FEATURES)
    for i, feature in enumerate(request.features):
        if feature.HasField("score_threshold") and not (
            math.isfinite(feature.score_threshold) and 0.0 <= feature.score_threshold <= 1.0
        ):
            raise InvalidArgument(f"features[{i}].score_threshold", f"must be in [0, 1], got {feature.score_threshold}")
    check_part_timeout(request.part_timeout_ms)


async def annotate_image(scope: Scope, request: pb.AnnotateImageRequest) -> pb.AnnotateImageResponse:
    validate(request)
    response = pb.AnnotateImageResponse()
    parts = await run_features(scope, request, request.features, FEATURES, response, ("images[0]", "image"))
    for part in parts:
        if part.item.width:  # every part decodes the same image the same way
            response.width, response.height = part.item.width, part.item.height
    return response
