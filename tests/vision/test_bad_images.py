"""Hostile and unusual images through a real service: each gets a clear per-image status
or a correct answer, bad requests get the status naming the field, and the service keeps serving."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lumen.common.v1 import common_pb2
from lumen.vision.v1 import vision_pb2 as pb
from tests.vision import samples

pytestmark = pytest.mark.slow

INVALID = grpc.StatusCode.INVALID_ARGUMENT.value[0]
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
OK = 0

# name -> (encoded bytes, expected status code, expected (width, height) when OK)
CASES = {
    "truncated-jpeg": (samples.truncated_jpeg, INVALID, None),
    "zero-bytes": (lambda: b"", INVALID, None),
    "text-named-png": (samples.text_named_png, INVALID, None),
    "png-bomb-30000x30000": (samples.png_bomb, EXHAUSTED, None),
    "over-16-MiB": (lambda: b"\xff\xd8" + bytes(16 * 1024 * 1024), EXHAUSTED, None),
    "1x1": (samples.one_pixel, OK, (1, 1)),
    "cmyk-jpeg": (samples.cmyk_jpeg, OK, (640, 427)),
    "16-bit-grey": (lambda: samples.grey16_png()[0], OK, (64, 32)),
    "alpha": (samples.alpha_png, OK, (40, 20)),
    "animated-gif": (samples.animated_gif, OK, (32, 32)),
    "exif-rotated": (samples.exif_rotated_jpeg, OK, (30, 60)),
}


async def _still_serving(analysis, vision_channel) -> None:
    health = await health_pb2_grpc.HealthStub(vision_channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    good = await analysis.ClassifyImages(
        pb.ClassifyImagesRequest(images=[samples.message(samples.encode(samples.skimage_photo("coffee")))])
    )
    assert good.results[0].labels[0].label == "espresso"


@pytest.mark.parametrize("rpc", ["ClassifyImages", "DetectObjects", "DetectFaces"])
async def test_each_bad_image_gets_its_own_status(analysis, vision_channel, rpc: str) -> None:
    every = list(CASES) if rpc == "ClassifyImages" else [n for n in CASES if n != "over-16-MiB"][:10]
    # ClassifyImages takes at most 8 images a call (LUMEN_VISION_MAX_CLASSIFY_IMAGES): the cases go in calls of 8.
    for start in range(0, len(every), 8):
        names = every[start : start + 8]
        images = [samples.message(CASES[n][0]()) for n in names]
        request = getattr(pb, f"{rpc}Request")(images=images)
        response = await getattr(analysis, rpc)(request)
        for i, (name, result) in enumerate(zip(names, response.results, strict=True)):
            _, code, size = CASES[name]
            assert result.status.code == code, f"{name}: {result.status}"
            if code == OK:
                assert (result.width, result.height) == size, name
            else:
                assert f"images[{i}]" in result.status.message, name
        assert response.usage.images == sum(CASES[n][1] == OK for n in names)
        classified = {n: r for n, r in zip(names, response.results, strict=True)}
        if rpc == "ClassifyImages" and "1x1" in classified:
            assert len(classified["1x1"].labels) == 5  # a tiny image still gets an answer
    await _still_serving(analysis, vision_channel)


@pytest.mark.parametrize(
    ("request_", "code", "field"),
    [
        (pb.ClassifyImagesRequest(), grpc.StatusCode.INVALID_ARGUMENT, "images"),
        (
            pb.ClassifyImagesRequest(images=[samples.message(samples.one_pixel())] * 9),
            grpc.StatusCode.INVALID_ARGUMENT,
            "images",
        ),
        (
            pb.ClassifyImagesRequest(images=[samples.message(samples.one_pixel())], top_k=1001),
            grpc.StatusCode.INVALID_ARGUMENT,
            "top_k",
        ),
        (
            pb.ClassifyImagesRequest(images=[samples.message(samples.one_pixel())], score_threshold=float("nan")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "score_threshold",
        ),
        (
            pb.ClassifyImagesRequest(
                images=[samples.message(samples.one_pixel())], model=common_pb2.ModelRef(name="no-such-model")
            ),
            grpc.StatusCode.NOT_FOUND,
            "no-such-model",
        ),
        (
            pb.ClassifyImagesRequest(
                images=[samples.message(samples.one_pixel())],
                model=common_pb2.ModelRef(name="efficientnet-lite0", version="9"),
            ),
            grpc.StatusCode.NOT_FOUND,
            "model.version",
        ),
        (
            pb.ClassifyImagesRequest(
                images=[samples.message(samples.one_pixel())], model=common_pb2.ModelRef(name="dlib-hog-face")
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "model.name",
        ),
    ],
    ids=["no-images", "33-images", "top-k", "nan-threshold", "unknown-model", "unknown-version", "wrong-task"],
)
async def test_bad_classify_requests_name_the_field(analysis, vision_channel, request_, code, field) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await analysis.ClassifyImages(request_)
    assert refused.value.code() is code and field in refused.value.details()
    await _still_serving(analysis, vision_channel)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (
            pb.DetectObjectsRequest(images=[samples.message(samples.one_pixel())], score_threshold=1.5),
            "score_threshold",
        ),
        (pb.DetectObjectsRequest(images=[samples.message(samples.one_pixel())], max_results=1001), "max_results"),
        (pb.DetectObjectsRequest(images=[samples.message(samples.one_pixel())] * 17), "images"),
    ],
    ids=["threshold-above-1", "max-results", "17-images"],
)
async def test_bad_detect_requests_name_the_field(analysis, request_, field) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await analysis.DetectObjects(request_)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT and field in refused.value.details()
