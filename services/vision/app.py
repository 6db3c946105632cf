"""What the vision service serves: its runtimes and its servicers.

Imported only after the device is isolated (see shared.model_service); the
runtimes import torch, TensorFlow, OpenCV and dlib inside load()."""

from __future__ import annotations

from pathlib import Path

from lumen.vision.v1 import vision_pb2, vision_pb2_grpc
from services.vision import runtime_dlib, runtime_efficientnet, runtime_keras, runtime_opencv, runtime_tf_detection
from services.vision.analysis import ImageAnalyzer
from services.vision.faces import FaceRecognizer
from services.vision.galleries import GalleryStore
from services.vision.servicer_analysis import ImageAnalysisServicer
from services.vision.servicer_faces import FaceRecognitionServicer
from services.vision.settings import VisionSettings
from shared.model_service import ROOT
from shared.repository import ModelFactory, ModelRepository
from shared.server import Registration

FACTORIES: dict[str, ModelFactory] = {
    runtime_efficientnet.FRAMEWORK: runtime_efficientnet.EfficientNetLiteModel,
    runtime_keras.FRAMEWORK: runtime_keras.KerasClassifier,
    runtime_tf_detection.FRAMEWORK: runtime_tf_detection.TFDetectionModel,
    runtime_opencv.OBJECTS_FRAMEWORK: runtime_opencv.OpenCVObjectDetector,
    runtime_opencv.FACES_FRAMEWORK: runtime_opencv.OpenCVFaceDetector,
    runtime_dlib.DETECTOR_FRAMEWORK: runtime_dlib.DlibFaceDetector,
    runtime_dlib.RECOGNITION_FRAMEWORK: runtime_dlib.DlibFaceRecognition,
}


def galleries_dir(settings: VisionSettings) -> Path:
    return Path(settings.galleries_dir) if settings.galleries_dir else ROOT / "var" / "galleries"


def registrations(repository: ModelRepository, settings: VisionSettings) -> list[Registration]:  # type: ignore[override]
    services = vision_pb2.DESCRIPTOR.services_by_name
    analyzer = ImageAnalyzer(repository, settings)
    galleries = GalleryStore(galleries_dir(settings), settings.database_url)
    return [
        Registration(
            vision_pb2_grpc.add_ImageAnalysisServiceServicer_to_server,
            ImageAnalysisServicer(analyzer),
            services["ImageAnalysisService"].full_name,
        ),
        Registration(
            vision_pb2_grpc.add_FaceRecognitionServiceServicer_to_server,
            FaceRecognitionServicer(FaceRecognizer(analyzer, galleries)),
            services["FaceRecognitionService"].full_name,
            close=galleries.close,
        ),
    ]
