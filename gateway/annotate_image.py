"""GatewayService.AnnotateImage: vision's labels, objects and faces of one image, in parallel.

Each feature is one ImageAnalysisService call with the image as a batch of
one (a spec run by gateway.composite); the backend's per-image status (about
"images[0]") is restated as the part's status about "image".
"""

from __future__ import annotations

import math
from typing import Any

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


FEATURES = {
    pb.IMAGE_FEATURE_TYPE_LABELS: Feature(
        "labels",
        pb.LabelsPart,
        "vision",
        VISION,
        "ClassifyImages",
        lambda r, f: vision_pb2.ClassifyImagesRequest(images=[r.image], top_k=f.max_results, **_options(f)),
        lambda result, f: {"labels": result.labels},
        max_results=MAX_RESULTS,
    ),
    pb.IMAGE_FEATURE_TYPE_OBJECTS: Feature(
        "objects",
        pb.ObjectsPart,
        "vision",
        VISION,
        "DetectObjects",
        lambda r, f: vision_pb2.DetectObjectsRequest(images=[r.image], max_results=f.max_results, **_options(f)),
        lambda result, f: {"objects": result.objects},
        max_results=MAX_RESULTS,
    ),
    pb.IMAGE_FEATURE_TYPE_FACES: Feature(
        "faces",
        pb.FacesPart,
        "vision",
        VISION,
        "DetectFaces",
        lambda r, f: vision_pb2.DetectFacesRequest(
            images=[r.image], max_results=f.max_results, landmarks=r.face_landmarks, **_options(f)
        ),
        lambda result, f: {"faces": result.faces},
        max_results=MAX_RESULTS,
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
