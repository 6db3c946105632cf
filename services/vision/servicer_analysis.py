"""lumen.vision.v1.ImageAnalysisService: protos in, one await on the ImageAnalyzer, protos out."""

from __future__ import annotations

import grpc

from lumen.vision.v1 import vision_pb2 as pb
from lumen.vision.v1 import vision_pb2_grpc as pb_grpc
from services.vision import convert
from services.vision.analysis import ImageAnalyzer, ScoredLabel
from services.vision.results import Detection, FaceFound


def _labels(found: list[ScoredLabel]) -> dict[str, list[pb.ScoredLabel]]:
    return {"labels": [pb.ScoredLabel(label_id=s.label_id, label=s.label, score=s.score) for s in found]}


def _objects(found: list[Detection]) -> dict[str, list[pb.DetectedObject]]:
    return {
        "objects": [
            pb.DetectedObject(box=convert.box(d.box), label_id=d.label_id, label=d.label, score=d.score) for d in found
        ]
    }


def _faces(found: list[FaceFound]) -> dict[str, list[pb.Face]]:
    return {"faces": [convert.face(f) for f in found]}


class ImageAnalysisServicer(pb_grpc.ImageAnalysisServiceServicer):
    def __init__(self, analyzer: ImageAnalyzer) -> None:
        self.analyzer = analyzer
        self.service = analyzer.repository.service

    async def ClassifyImages(
        self, request: pb.ClassifyImagesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyImagesResponse:
        model = request.model
        analysis = await self.analyzer.classify(
            request.images, model.name, model.version, request.top_k, request.score_threshold
        )
        results = convert.per_image(analysis, pb.ImageClassification, _labels)
        return convert.response(pb.ClassifyImagesResponse, analysis, results, self.service)

    async def DetectObjects(
        self, request: pb.DetectObjectsRequest, context: grpc.aio.ServicerContext
    ) -> pb.DetectObjectsResponse:
        options, model = convert.detect(request), request.model
        analysis = await self.analyzer.detect_objects(request.images, model.name, model.version, options)
        results = convert.per_image(analysis, pb.ObjectDetection, _objects)
        return convert.response(pb.DetectObjectsResponse, analysis, results, self.service)

    async def DetectFaces(
        self, request: pb.DetectFacesRequest, context: grpc.aio.ServicerContext
    ) -> pb.DetectFacesResponse:
        options, model, images = convert.detect(request), request.model, request.images
        analysis = await self.analyzer.detect_faces(images, model.name, model.version, options, request.landmarks)
        return convert.response(
            pb.DetectFacesResponse, analysis, convert.per_image(analysis, pb.FaceDetection, _faces), self.service
        )
