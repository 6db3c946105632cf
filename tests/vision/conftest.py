"""A real vision service (port 0, in process) over a repository made by its set-up
script, plus two models exported here: the digits CNN as a SavedModel and the
colour-region detector (see colour_detector.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc.aio
import pytest

from lumen.vision.v1 import vision_pb2_grpc as pb_grpc
from services.vision import app, setup_models
from services.vision.settings import VisionSettings
from shared.model import write_config
from shared.model_service import ModelService, start
from tests.vision import colour_detector


@pytest.fixture(scope="session")
def vision_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import keras

    repository = tmp_path_factory.mktemp("vision-models")
    setup_models.main(repository)
    # The same digits CNN as a SavedModel (Keras 3 model.export), served by the same runtime.
    keras.saving.load_model(repository / "digits-cnn" / "model.keras").export(
        str(repository / "digits-savedmodel" / "saved"), verbose=False
    )
    write_config(
        repository,
        "digits-savedmodel",
        {
            "task": "image-classification",
            "framework": "keras",
            "path": "saved",
            "parameters": {"labels": "../digits-cnn/labels.json", "scale": 1 / 255, "resample": "box"},
        },
    )
    colour_detector.export(repository / "colour-regions")
    write_config(
        repository,
        "colour-regions",
        {
            "task": "object-detection",
            "framework": "tf-detection",
            "path": "saved_model",
            "parameters": {"label_map": "label_map.pbtxt"},
        },
    )
    return repository


@pytest.fixture(scope="session")
def galleries_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("galleries")


def vision_settings(repository: Path, galleries: Path, **overrides: object) -> VisionSettings:
    return VisionSettings(
        host="127.0.0.1", port=0, model_repository=str(repository), galleries_dir=str(galleries), **overrides
    )


@pytest.fixture(scope="session")
async def vision_service(vision_repository: Path, galleries_dir: Path) -> AsyncIterator[ModelService]:
    service = await start("vision", vision_settings(vision_repository, galleries_dir), app.FACTORIES, app.registrations)
    yield service
    await service.stop(0)


@pytest.fixture(scope="session")
async def vision_channel(vision_service: ModelService) -> AsyncIterator[grpc.aio.Channel]:
    options = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{vision_service.port}", options=options) as channel:
        yield channel


@pytest.fixture(scope="session")
def analysis(vision_channel: grpc.aio.Channel) -> pb_grpc.ImageAnalysisServiceStub:
    return pb_grpc.ImageAnalysisServiceStub(vision_channel)


@pytest.fixture(scope="session")
def faces(vision_channel: grpc.aio.Channel) -> pb_grpc.FaceRecognitionServiceStub:
    return pb_grpc.FaceRecognitionServiceStub(vision_channel)
