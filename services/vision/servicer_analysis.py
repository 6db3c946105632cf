"""lumen.vision.v1.ImageAnalysisService: protos in, one await on the ImageAnalyzer, protos out."""

from __future__ import annotations

import grpc

from lumen.vision.v1 import vision_pb2 as pb
from lumen.vision.v1 import vision_pb2_grpc as pb_grpc
from services.vision import convert
from services.vision.analysis import ImageAnalyzer
from shared.repository_servicer import model_info


class ImageAnalysisServicer(pb_grpc.ImageAnalysisServiceServicer):
    def __init__(self, analyzer: ImageAnalyzer) -> None:
        self.analyzer = analyzer
        self.service = analyzer.repository.service

    async def ClassifyImages(
        self, request: pb.ClassifyImagesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyImagesResponse:
        analysis = await self.analyzer.classify(
            request.images, request.model.name, request.model.version, request.top_k, request.score_threshold
        )
        return pb.ClassifyImagesResponse(
            results=convert.per_image(
                analysis,
                pb.ImageClassification,
                lambda found: {
                    "labels": [pb.ScoredLabel(label_id=s.label_id, label=s.label, score=s.score) for s in found]
                },
            ),
            model=model_info(analysis.entry, self.service),
            usage=convert.usage(analysis),
        )

    async def DetectObjects(
        self, request: pb.DetectObjectsRequest, context: grpc.aio.ServicerContext
    ) -> pb.DetectObjectsResponse:
        analysis = await self.analyzer.detect_objects(
            request.images,
            request.model.name,
            request.model.version,
            convert.optional(request, "score_threshold"),
            request.max_results,
        )
        return pb.DetectObjectsResponse(
            results=convert.per_image(
                analysis,
                pb.ObjectDetection,
                lambda found: {
                    "objects": [
                        pb.DetectedObject(box=convert.box(d.box), label_id=d.label_id, label=d.label, score=d.score)
                        for d in found
                    ]
                },
            ),
            model=model_info(analysis.entry, self.service),
            usage=convert.usage(analysis),
        )

    async def DetectFaces(
        self, request: pb.DetectFacesRequest, context: grpc.aio.ServicerContext
    ) -> pb.DetectFacesResponse:
        analysis = await self.analyzer.detect_faces(
            request.images,
            request.model.name,
            request.model.version,
            convert.optional(request, "score_threshold"),
            request.max_results,
            request.landmarks,
        )
        return pb.DetectFacesResponse(
            results=convert.per_image(
                analysis, pb.FaceDetection, lambda found: {"faces": [convert.face(f) for f in found]}
            ),
            model=model_info(analysis.entry, self.service),
            usage=convert.usage(analysis),
        )
