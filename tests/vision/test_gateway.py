"""The vision services through the gateway: same answers, same errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest

from lumen.vision.v1 import vision_pb2 as pb
from lumen.vision.v1 import vision_pb2_grpc as pb_grpc
from shared.model_service import ModelService
from tests.in_process import gateway_channel as in_process_gateway
from tests.vision import samples

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def gateway_channel(vision_service: ModelService) -> AsyncIterator[grpc.aio.Channel]:
    async with in_process_gateway(vision_address=f"127.0.0.1:{vision_service.port}") as channel:
        yield channel


async def test_classify_and_galleries_through_the_gateway(gateway_channel, analysis) -> None:
    request = pb.ClassifyImagesRequest(
        images=[samples.message(samples.encode(samples.skimage_photo("chelsea"))), samples.message(b"")], top_k=3
    )
    via_gateway = await pb_grpc.ImageAnalysisServiceStub(gateway_channel).ClassifyImages(request)
    direct = await analysis.ClassifyImages(request)
    assert via_gateway.results == direct.results
    assert via_gateway.results[1].status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    faces = pb_grpc.FaceRecognitionServiceStub(gateway_channel)
    await faces.CreateGallery(pb.CreateGalleryRequest(name="via-gateway"))
    listed = await faces.ListGalleries(pb.ListGalleriesRequest())
    assert "via-gateway" in [g.name for g in listed.galleries]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await faces.CreateGallery(pb.CreateGalleryRequest(name="via-gateway"))
    assert refused.value.code() is grpc.StatusCode.ALREADY_EXISTS
    await faces.DeleteGallery(pb.DeleteGalleryRequest(name="via-gateway"))
