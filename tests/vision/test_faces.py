"""Face detection, landmarks, embeddings and verification through a real service,
against dlib and OpenCV run in process. Faces come from package-shipped photos."""

from __future__ import annotations

import asyncio
import math

import grpc
import grpc.aio
import numpy as np
import pytest

from lumen.common.v1 import common_pb2
from lumen.vision.v1 import vision_pb2 as pb
from tests.vision import samples
from tests.vision.dlib_reference import DlibReference

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dlib_reference() -> DlibReference:
    return DlibReference()


def _box(b: pb.BoundingBox) -> list[float]:
    return [b.x_min, b.y_min, b.x_max, b.y_max]


def _vector(v: common_pb2.Vector) -> np.ndarray:
    return np.frombuffer(v.values_f32, "<f4") if v.values_f32 else np.asarray(v.values, np.float32)


async def test_dlib_faces_and_landmarks_equal_dlib_in_process(analysis, dlib_reference) -> None:
    astronaut = samples.skimage_photo("astronaut")
    response = await analysis.DetectFaces(
        pb.DetectFacesRequest(images=[samples.message(samples.encode(astronaut))], landmarks=True, score_threshold=0)
    )
    faces = response.results[0].faces
    want = sorted(dlib_reference.faces(astronaut), key=lambda f: -f[1])
    assert response.model.name == "dlib-hog-face" and len(faces) == len(want)
    # One face: her mission patch, dlib's margin 0.12 (0.18 as a JPEG), stays below min_margin 0.2.
    assert len(faces) == 1 and faces[0].box.y_max < 0.5
    for face, (rect, margin) in zip(faces, want, strict=True):
        assert np.allclose(_box(face.box), dlib_reference.normalized(rect, astronaut), atol=1e-6)
        assert math.isclose(face.score, 1 / (1 + math.exp(-margin)), abs_tol=1e-6)
    points = [(p.x, p.y) for landmark in faces[0].landmarks for p in landmark.points]
    shape = dlib_reference.landmarks(astronaut, want[0][0])
    assert len(points) == 68
    assert np.allclose(points, [(p.x / 512, p.y / 512) for p in shape.parts()], atol=1e-6)
    assert [landmark.name for landmark in faces[0].landmarks][:2] == ["chin", "left_eyebrow"]


async def test_concurrent_detections_on_two_instances_each_equal_dlib_alone(analysis, dlib_reference) -> None:
    """dlib-hog-face runs two instances (two images searched at once, each with a detector of its own
    from a pool; one shared crashes the process): 24 calls at once over three photos, landmarks
    included, each answer that of its own photo alone."""
    photos = [samples.skimage_photo("astronaut"), samples.two_faces(), samples.other_face()]
    wants = [
        sorted(dlib_reference.normalized(rect, photo) for rect, _ in dlib_reference.faces(photo)) for photo in photos
    ]
    assert [len(want) for want in wants] == [1, 2, 1]
    requests = [
        pb.DetectFacesRequest(images=[samples.message(samples.encode(photo))], landmarks=True) for photo in photos
    ]
    order = [i % len(photos) for i in range(24)]
    responses = await asyncio.gather(*(analysis.DetectFaces(requests[i]) for i in order))
    for i, response in zip(order, responses, strict=True):
        boxes = sorted(_box(face.box) for face in response.results[0].faces)  # the service orders by score
        assert np.allclose(boxes, wants[i], atol=1e-6), i
        assert all(sum(len(mark.points) for mark in face.landmarks) == 68 for face in response.results[0].faces)


async def test_haar_faces_equal_opencv_in_process(analysis) -> None:
    import cv2

    crop = samples.astronaut_face_crop()
    response = await analysis.DetectFaces(
        pb.DetectFacesRequest(
            model=common_pb2.ModelRef(name="opencv-haar-face"),
            images=[samples.message(samples.encode(crop))],
            landmarks=True,
        )
    )
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    rects = cascade.detectMultiScale(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), 1.1, 5, minSize=(30, 30))
    want = sorted([x / 300, y / 300, (x + w) / 300, (y + h) / 300] for x, y, w, h in rects)
    faces = response.results[0].faces
    assert len(want) >= 1 and np.allclose(sorted(_box(f.box) for f in faces), want, atol=1e-6)
    assert all(f.score == 1.0 and not f.landmarks for f in faces)  # Haar gives neither


async def test_embeddings_equal_dlib_in_process(faces, dlib_reference) -> None:
    crop, other = samples.astronaut_face_crop(), samples.other_face()
    response = await faces.EmbedFaces(
        pb.EmbedFacesRequest(
            images=[samples.message(samples.encode(p)) for p in (crop, other, samples.skimage_photo("coffee"))],
            encoding=common_pb2.VECTOR_ENCODING_F32_BYTES,
        )
    )
    assert response.model.name == "dlib-resnet-face" and response.usage.images == 3
    for pixels, result in zip((crop, other), response.results[:2], strict=True):
        ((rect, _),) = dlib_reference.faces(pixels)
        (face,) = result.faces
        assert face.embedding.dimension == 128
        assert np.abs(_vector(face.embedding) - dlib_reference.embed(pixels, rect)).max() < 1e-5
        assert np.allclose(_box(face.box), dlib_reference.normalized(rect, pixels), atol=1e-6)
    assert not response.results[2].faces and response.results[2].status.code == 0  # no face in a coffee cup


async def test_embeddings_of_faces_found_by_another_detector(faces, dlib_reference) -> None:
    import cv2

    crop = samples.astronaut_face_crop()
    response = await faces.EmbedFaces(
        pb.EmbedFacesRequest(
            detector=common_pb2.ModelRef(name="opencv-haar-face"), images=[samples.message(samples.encode(crop))]
        )
    )
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    ((x, y, w, h),) = cascade.detectMultiScale(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), 1.1, 5, minSize=(30, 30))
    want = dlib_reference.embed(crop, dlib_reference.dlib.rectangle(int(x), int(y), int(x + w - 1), int(y + h - 1)))
    (face,) = response.results[0].faces
    assert np.abs(_vector(face.embedding) - want).max() < 1e-5
    # Same person by either detector's box.
    assert np.linalg.norm(want - dlib_reference.largest_embedding(crop)) < 0.6


async def test_verify_same_and_different_people(faces, dlib_reference) -> None:
    crop, mirrored, other = samples.astronaut_face_crop(), samples.astronaut_face_crop(True), samples.other_face()
    same = await faces.VerifyFaces(
        pb.VerifyFacesRequest(
            image_a=samples.message(samples.encode(crop, "JPEG", quality=95)),
            image_b=samples.message(samples.encode(mirrored)),
        )
    )
    assert same.same_person and same.threshold == pytest.approx(0.6)
    a = dlib_reference.largest_embedding(np.asarray(_jpeg_roundtrip(crop)))
    assert same.distance == pytest.approx(
        float(np.linalg.norm(a - dlib_reference.largest_embedding(mirrored))), abs=1e-4
    )
    different = await faces.VerifyFaces(
        pb.VerifyFacesRequest(
            image_a=samples.message(samples.encode(crop)), image_b=samples.message(samples.encode(other))
        )
    )
    assert not different.same_person and different.distance > 0.6
    strict = await faces.VerifyFaces(
        pb.VerifyFacesRequest(
            image_a=samples.message(samples.encode(crop)),
            image_b=samples.message(samples.encode(other)),
            threshold=2.0,
        )
    )
    assert strict.same_person and strict.threshold == 2.0


def _jpeg_roundtrip(pixels: np.ndarray) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(samples.encode(pixels, "JPEG", quality=95))).convert("RGB"))


@pytest.mark.parametrize(
    ("a", "b", "threshold", "code", "field"),
    [
        ("coffee", "face", None, grpc.StatusCode.INVALID_ARGUMENT, "image_a"),
        ("face", "empty", None, grpc.StatusCode.INVALID_ARGUMENT, "image_b"),
        ("face", "text", None, grpc.StatusCode.INVALID_ARGUMENT, "image_b"),
        ("face", "face", float("nan"), grpc.StatusCode.INVALID_ARGUMENT, "threshold"),
        ("face", "face", 0.0, grpc.StatusCode.INVALID_ARGUMENT, "threshold"),
    ],
)
async def test_verify_refusals_name_the_field(faces, a, b, threshold, code, field) -> None:
    images = {
        "coffee": samples.message(samples.encode(samples.skimage_photo("coffee"))),
        "face": samples.message(samples.encode(samples.astronaut_face_crop())),
        "empty": common_pb2.Image(),
        "text": samples.message(samples.text_named_png()),
    }
    request = pb.VerifyFacesRequest(image_a=images[a], image_b=images[b])
    if threshold is not None:
        request.threshold = threshold
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await faces.VerifyFaces(request)
    assert refused.value.code() is code and field in refused.value.details()


async def test_large_photos_are_searched_scaled_down_with_full_size_boxes(analysis, dlib_reference) -> None:
    """A 2,000 x 2,000 photo is searched at 1,600 pixels (not upsampled to 4,000); the face is where
    dlib finds it in the original 512 x 512 photo."""
    from PIL import Image

    astronaut = samples.skimage_photo("astronaut")
    large = np.asarray(Image.fromarray(astronaut).resize((2000, 2000), Image.Resampling.BICUBIC))
    response = await analysis.DetectFaces(
        pb.DetectFacesRequest(images=[samples.message(samples.encode(large, "JPEG", quality=90))], max_results=1)
    )
    (face,) = response.results[0].faces
    rect, _ = dlib_reference.faces(astronaut)[0]
    assert (response.results[0].width, response.results[0].height) == (2000, 2000)
    assert np.allclose(_box(face.box), dlib_reference.normalized(rect, astronaut), atol=0.02)


def _faces_grid(columns: int, rows: int) -> np.ndarray:
    """The astronaut's face at 150 x 150, tiled: one photo with many real faces."""
    from PIL import Image

    face = np.asarray(Image.fromarray(samples.astronaut_face_crop()).resize((150, 150)))
    return np.ascontiguousarray(np.tile(face, (rows, columns, 1)))


async def test_a_call_embeds_at_most_its_face_budget(analysis, faces) -> None:
    """LUMEN_VISION_MAX_CALL_FACES (8) bounds the faces one call embeds (each ~0.09 s CPU): unset
    max_faces shares it out, a max_faces or an image count the budget cannot fit is refused naming
    the field, and EnrollPerson (two faces per image) takes at most 4 images. The service keeps
    serving after each refusal."""
    grid = samples.message(samples.encode(_faces_grid(4, 3), "JPEG", quality=90))
    found = await analysis.DetectFaces(pb.DetectFacesRequest(images=[grid]))
    assert len(found.results[0].faces) > 8
    one = await faces.EmbedFaces(pb.EmbedFacesRequest(images=[grid]))
    assert len(one.results[0].faces) == 8
    shared = await faces.EmbedFaces(pb.EmbedFacesRequest(images=[grid] * 4))
    assert [len(r.faces) for r in shared.results] == [2] * 4
    refusals = [
        (faces.EmbedFaces, pb.EmbedFacesRequest(images=[grid] * 2, max_faces=5), "max_faces"),
        (faces.EmbedFaces, pb.EmbedFacesRequest(images=[grid] * 9), "images"),
        (faces.IdentifyFaces, pb.IdentifyFacesRequest(gallery="any", images=[grid] * 4, max_faces=3), "max_faces"),
        (faces.EnrollPerson, pb.EnrollPersonRequest(gallery="any", person_id="p", images=[grid] * 5), "images"),
    ]
    for method, request, field in refusals:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await method(request)
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT and field in refused.value.details()
    again = await faces.EmbedFaces(pb.EmbedFacesRequest(images=[grid], max_faces=8))
    assert len(again.results[0].faces) == 8


async def test_verify_photos_share_the_calls_pixel_budget(faces) -> None:
    """Two 1,500 x 1,500 photos (2.25 MP each) exceed the face RPCs' 4 MP a call: RESOURCE_EXHAUSTED
    naming the second, before any detector runs; one of them with a small photo is verified."""
    from PIL import Image

    big = np.asarray(Image.fromarray(samples.astronaut_face_crop()).resize((1500, 1500)))
    photo, small = (
        samples.message(samples.encode(big, "JPEG")),
        samples.message(samples.encode(samples.astronaut_face_crop())),
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await faces.VerifyFaces(pb.VerifyFacesRequest(image_a=photo, image_b=photo))
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED and "image_b" in refused.value.details()
    same = await faces.VerifyFaces(pb.VerifyFacesRequest(image_a=photo, image_b=small))
    assert same.distance < same.threshold
