"""Face galleries: create, enrol, identify, delete, and survive a restart."""

from __future__ import annotations

import grpc
import grpc.aio
import numpy as np
import pytest

from lumen.common.v1 import common_pb2
from lumen.vision.v1 import vision_pb2 as pb
from lumen.vision.v1 import vision_pb2_grpc as pb_grpc
from services.vision import app
from shared.model_service import start
from tests.vision import samples
from tests.vision.conftest import vision_settings
from tests.vision.dlib_reference import DlibReference

pytestmark = pytest.mark.slow


def png(pixels: np.ndarray) -> common_pb2.Image:
    return samples.message(samples.encode(pixels))


async def _expect(code: grpc.StatusCode, call, field: str = "") -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    assert refused.value.code() is code, refused.value.details()
    assert field in refused.value.details()


async def test_gallery_lifecycle_and_restart(faces, vision_repository, galleries_dir) -> None:
    created = await faces.CreateGallery(pb.CreateGalleryRequest(name="crew"))
    assert (created.gallery.model, created.gallery.dimension, created.gallery.person_count) == (
        "dlib-resnet-face",
        128,
        0,
    )
    await _expect(grpc.StatusCode.ALREADY_EXISTS, faces.CreateGallery(pb.CreateGalleryRequest(name="crew")))
    await _expect(grpc.StatusCode.INVALID_ARGUMENT, faces.CreateGallery(pb.CreateGalleryRequest(name="Crew!")), "name")

    # A photo without a face and bytes that are no image are refused per image; the face is enrolled.
    enrolled = await faces.EnrollPerson(
        pb.EnrollPersonRequest(
            gallery="crew",
            person_id="eileen",
            display_name="Eileen Collins",
            images=[png(samples.astronaut_face_crop()), png(samples.skimage_photo("coffee")), samples.message(b"x")],
        )
    )
    assert enrolled.enrolled == 1 and enrolled.person.face_count == 1
    invalid = grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert [s.code for s in enrolled.statuses] == [0, invalid, invalid]
    assert "images[1]" in enrolled.statuses[1].message and "images[2]" in enrolled.statuses[2].message
    # A photo of two people is never enrolled as one person.
    group = await faces.EnrollPerson(
        pb.EnrollPersonRequest(gallery="crew", person_id="x", images=[png(samples.two_faces())])
    )
    assert group.enrolled == 0 and not group.HasField("person") and "more than one face" in group.statuses[0].message
    other = await faces.EnrollPerson(
        pb.EnrollPersonRequest(gallery="crew", person_id="lfw-0", images=[png(samples.other_face())])
    )
    assert other.enrolled == 1

    # Identify every face of the mirrored full photo: one face (her mission patch is no face), Eileen, nearest first.
    mirrored = np.ascontiguousarray(samples.skimage_photo("astronaut")[:, ::-1])
    identified = await faces.IdentifyFaces(pb.IdentifyFacesRequest(gallery="crew", images=[png(mirrored)], top_k=2))
    reference = DlibReference()
    [face] = identified.results[0].faces
    best = face.candidates
    want = np.linalg.norm(
        reference.largest_embedding(samples.astronaut_face_crop())
        - reference.embed(mirrored, reference.faces(mirrored)[0][0])
    )
    assert best[0].person_id == "eileen" and best[0].match and best[0].display_name == "Eileen Collins"
    assert best[0].distance == pytest.approx(float(want), abs=1e-4)
    assert best[1].person_id == "lfw-0" and not best[1].match
    assert identified.threshold == pytest.approx(0.6)

    # A restart (a new service and gallery store over the same directory) keeps everything acknowledged.
    restarted = await start(
        "vision",
        vision_settings(vision_repository, galleries_dir, models=["dlib-resnet-face"]),
        app.FACTORIES,
        app.registrations,
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{restarted.port}") as channel:
            again = pb_grpc.FaceRecognitionServiceStub(channel)
            persons = await again.ListPersons(pb.ListPersonsRequest(gallery="crew"))
            assert [(p.person_id, p.face_count) for p in persons.persons] == [("eileen", 1), ("lfw-0", 1)]
            gallery = (await again.GetGallery(pb.GetGalleryRequest(name="crew"))).gallery
            assert (gallery.person_count, gallery.face_count) == (2, 2)
            after = await again.IdentifyFaces(
                pb.IdentifyFacesRequest(gallery="crew", images=[png(samples.astronaut_face_crop(True))])
            )
            assert after.results[0].faces[0].candidates[0].person_id == "eileen"
    finally:
        await restarted.stop(0)

    await faces.DeletePerson(pb.DeletePersonRequest(gallery="crew", person_id="eileen"))
    await _expect(
        grpc.StatusCode.NOT_FOUND,
        faces.DeletePerson(pb.DeletePersonRequest(gallery="crew", person_id="eileen")),
        "eileen",
    )
    gone = await faces.IdentifyFaces(
        pb.IdentifyFacesRequest(gallery="crew", images=[png(samples.astronaut_face_crop(True))])
    )
    assert [c.person_id for c in gone.results[0].faces[0].candidates] == ["lfw-0"]
    assert [g.name for g in (await faces.ListGalleries(pb.ListGalleriesRequest())).galleries] == ["crew"]
    await faces.DeleteGallery(pb.DeleteGalleryRequest(name="crew"))
    await _expect(grpc.StatusCode.NOT_FOUND, faces.GetGallery(pb.GetGalleryRequest(name="crew")), "crew")


FACE = [samples.message(samples.encode(samples.astronaut_face_crop()))]
REFUSALS = {
    "enroll-missing-gallery": (
        "EnrollPerson",
        pb.EnrollPersonRequest(gallery="nowhere", person_id="p", images=FACE),
        grpc.StatusCode.NOT_FOUND,
        "nowhere",
    ),
    "enroll-blank-person": (
        "EnrollPerson",
        pb.EnrollPersonRequest(gallery="refusals", person_id=" ", images=FACE),
        grpc.StatusCode.INVALID_ARGUMENT,
        "person_id",
    ),
    "identify-top-k": (
        "IdentifyFaces",
        pb.IdentifyFacesRequest(gallery="refusals", images=FACE, top_k=101),
        grpc.StatusCode.INVALID_ARGUMENT,
        "top_k",
    ),
    "identify-no-images": (
        "IdentifyFaces",
        pb.IdentifyFacesRequest(gallery="refusals"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "images",
    ),
    "identify-unknown-detector": (
        "IdentifyFaces",
        pb.IdentifyFacesRequest(gallery="refusals", images=FACE, detector=common_pb2.ModelRef(name="x")),
        grpc.StatusCode.NOT_FOUND,
        "detector.name",
    ),
    "identify-wrong-task-detector": (
        "IdentifyFaces",
        pb.IdentifyFacesRequest(gallery="refusals", images=FACE, detector=common_pb2.ModelRef(name="digits-cnn")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "detector.name",
    ),
    "list-persons-bad-name": (
        "ListPersons",
        pb.ListPersonsRequest(gallery="../etc"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "gallery",
    ),
}


@pytest.fixture(scope="module")
async def refusals_gallery(faces) -> None:
    await faces.CreateGallery(pb.CreateGalleryRequest(name="refusals"))


@pytest.mark.parametrize("case", sorted(REFUSALS))
async def test_gallery_refusals_name_the_field(faces, refusals_gallery, case: str) -> None:
    method, request, code, field = REFUSALS[case]
    await _expect(code, getattr(faces, method)(request), field)
