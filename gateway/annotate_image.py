"""GatewayService.AnnotateImage: vision's labels, objects and faces of one image, in parallel.

Each feature is one ImageAnalysisService call with the image as a batch of
one; the backend's per-image status (about "images[0]") is restated as the
part's status about "image".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.rpc import code_pb2

from gateway.fanout import OK, check_part_timeout, renamed, run_parts
from gateway.parts import check_features, fill_parts
from gateway.scope import Scope
from lumen.gateway.v1 import gateway_pb2 as pb
from lumen.vision.v1 import vision_pb2, vision_pb2_grpc
from shared.errors import InvalidArgument

MAX_FEATURES = 3
MAX_RESULTS = 1_000


@dataclass(frozen=True)
class ImageFeature:
    field: str
    part: type
    max_results: int
    run: Callable[[Scope, pb.AnnotateImageRequest, pb.ImageFeature, float], Any]


def _stub(scope: Scope) -> vision_pb2_grpc.ImageAnalysisServiceStub:
    return vision_pb2_grpc.ImageAnalysisServiceStub(scope.channel("vision"))


def _part(part: type, result: Any, reply: Any, **fields: Any) -> tuple[Any, Any]:
    """The part for the single image's ``result``: its findings, or the backend's status about it."""
    if result.status.code != code_pb2.OK:
        return part(status=renamed(result.status, "images[0]", "image")), reply.usage
    return part(status=OK, model=reply.model, **fields), reply.usage


def _threshold(feature: pb.ImageFeature) -> dict[str, float]:
    return {"score_threshold": feature.score_threshold} if feature.HasField("score_threshold") else {}


async def _labels(scope: Scope, request: pb.AnnotateImageRequest, feature: pb.ImageFeature, timeout_s: float):
    reply = await _stub(scope).ClassifyImages(
        vision_pb2.ClassifyImagesRequest(
            model=feature.model, images=[request.image], top_k=feature.max_results, **_threshold(feature)
        ),
        timeout=timeout_s,
        metadata=scope.metadata,
    )
    result = reply.results[0]
    return _part(pb.LabelsPart, result, reply, labels=result.labels), (result.width, result.height)


async def _objects(scope: Scope, request: pb.AnnotateImageRequest, feature: pb.ImageFeature, timeout_s: float):
    reply = await _stub(scope).DetectObjects(
        vision_pb2.DetectObjectsRequest(
            model=feature.model, images=[request.image], max_results=feature.max_results, **_threshold(feature)
        ),
        timeout=timeout_s,
        metadata=scope.metadata,
    )
    result = reply.results[0]
    return _part(pb.ObjectsPart, result, reply, objects=result.objects), (result.width, result.height)


async def _faces(scope: Scope, request: pb.AnnotateImageRequest, feature: pb.ImageFeature, timeout_s: float):
    reply = await _stub(scope).DetectFaces(
        vision_pb2.DetectFacesRequest(
            model=feature.model,
            images=[request.image],
            max_results=feature.max_results,
            landmarks=request.face_landmarks,
            **_threshold(feature),
        ),
        timeout=timeout_s,
        metadata=scope.metadata,
    )
    result = reply.results[0]
    return _part(pb.FacesPart, result, reply, faces=result.faces), (result.width, result.height)


FEATURES = {
    pb.IMAGE_FEATURE_TYPE_LABELS: ImageFeature("labels", pb.LabelsPart, MAX_RESULTS, _labels),
    pb.IMAGE_FEATURE_TYPE_OBJECTS: ImageFeature("objects", pb.ObjectsPart, MAX_RESULTS, _objects),
    pb.IMAGE_FEATURE_TYPE_FACES: ImageFeature("faces", pb.FacesPart, MAX_RESULTS, _faces),
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

    def part(feature: pb.ImageFeature):
        spec = FEATURES[feature.type]
        return lambda timeout_s: spec.run(scope, request, feature, timeout_s)

    results = await run_parts(
        {FEATURES[f.type].field: part(f) for f in request.features}, scope.budget, ("images[0]", "image")
    )
    response = pb.AnnotateImageResponse()
    for result in results.values():
        if isinstance(result, tuple) and result[1][0]:
            response.width, response.height = result[1]  # every part decodes the same image the same way
    fill_parts(
        response,
        {name: r[0] if isinstance(r, tuple) else r for name, r in results.items()},
        {spec.field: spec.part for spec in FEATURES.values()},
    )
    return response
