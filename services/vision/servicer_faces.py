"""lumen.vision.v1.FaceRecognitionService: protos in, one await on the FaceRecognizer, protos out."""

from __future__ import annotations

import dataclasses

import grpc

from lumen.common.v1 import common_pb2
from lumen.vision.v1 import vision_pb2 as pb
from lumen.vision.v1 import vision_pb2_grpc as pb_grpc
from services.vision import convert
from services.vision.faces import FaceRecognizer, IdentifiedFace
from services.vision.galleries import GalleryInfo, PersonInfo
from shared.pages import page
from shared.repository_servicer import model_info
from shared.results import item_messages
from shared.vectors import to_proto


# GalleryInfo and PersonInfo hold exactly the fields of their messages.
def _gallery(info: GalleryInfo) -> pb.Gallery:
    return pb.Gallery(**dataclasses.asdict(info))


def _person(info: PersonInfo) -> pb.Person:
    return pb.Person(**dataclasses.asdict(info))


class FaceRecognitionServicer(pb_grpc.FaceRecognitionServiceServicer):
    def __init__(self, faces: FaceRecognizer) -> None:
        self.faces = faces
        self.service = faces.repository.service

    async def EmbedFaces(
        self, request: pb.EmbedFacesRequest, context: grpc.aio.ServicerContext
    ) -> pb.EmbedFacesResponse:
        analysis = await self.faces.embed(
            request.images,
            request.model.name,
            request.model.version,
            request.detector.name,
            request.detector.version,
            request.max_faces,
        )
        results = item_messages(
            analysis.outcomes,
            pb.ImageFaceEmbeddings,
            lambda found: {
                "faces": [
                    pb.FaceEmbedding(box=convert.box(f.box), embedding=to_proto(f.vector, request.encoding))
                    for f in found.value
                ]
            },
        )
        return convert.response(pb.EmbedFacesResponse, analysis, results, self.service)

    async def VerifyFaces(
        self, request: pb.VerifyFacesRequest, context: grpc.aio.ServicerContext
    ) -> pb.VerifyFacesResponse:
        result = await self.faces.verify(
            request.image_a,
            request.image_b,
            request.model.name,
            request.model.version,
            convert.optional(request, "threshold"),
        )
        return pb.VerifyFacesResponse(
            distance=result.distance,
            same_person=result.distance <= result.threshold,
            threshold=result.threshold,
            face_a=convert.box(result.face_a),
            face_b=convert.box(result.face_b),
            model=model_info(result.entry, self.service),
            usage=common_pb2.Usage(images=2),
        )

    async def CreateGallery(
        self, request: pb.CreateGalleryRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateGalleryResponse:
        info = await self.faces.create_gallery(request.name, request.model.name, request.model.version)
        return pb.CreateGalleryResponse(gallery=_gallery(info))

    async def DeleteGallery(
        self, request: pb.DeleteGalleryRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteGalleryResponse:
        await self.faces.delete_gallery(request.name)
        return pb.DeleteGalleryResponse()

    async def GetGallery(
        self, request: pb.GetGalleryRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetGalleryResponse:
        return pb.GetGalleryResponse(gallery=_gallery(await self.faces.get_gallery(request.name)))

    async def ListGalleries(
        self, request: pb.ListGalleriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListGalleriesResponse:
        found, next_token = page(
            await self.faces.list_galleries(), lambda g: g.name, request.page_size, request.page_token
        )
        return pb.ListGalleriesResponse(galleries=[_gallery(g) for g in found], next_page_token=next_token)

    async def EnrollPerson(
        self, request: pb.EnrollPersonRequest, context: grpc.aio.ServicerContext
    ) -> pb.EnrollPersonResponse:
        result = await self.faces.enroll(request.gallery, request.person_id, request.display_name, request.images)
        return pb.EnrollPersonResponse(
            person=_person(result.person) if result.person else None,
            statuses=[s.status for s in result.statuses],
            enrolled=result.enrolled,
            usage=common_pb2.Usage(images=result.processed),
        )

    async def DeletePerson(
        self, request: pb.DeletePersonRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeletePersonResponse:
        await self.faces.delete_person(request.gallery, request.person_id)
        return pb.DeletePersonResponse()

    async def ListPersons(
        self, request: pb.ListPersonsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPersonsResponse:
        persons = await self.faces.list_persons(request.gallery)
        found, next_token = page(persons, lambda p: p.person_id, request.page_size, request.page_token, request.gallery)
        return pb.ListPersonsResponse(persons=[_person(p) for p in found], next_page_token=next_token)

    async def IdentifyFaces(
        self, request: pb.IdentifyFacesRequest, context: grpc.aio.ServicerContext
    ) -> pb.IdentifyFacesResponse:
        result = await self.faces.identify(
            request.gallery,
            request.images,
            request.detector.name,
            request.detector.version,
            request.top_k,
            convert.optional(request, "threshold"),
            request.max_faces,
        )
        analysis = result.analysis
        threshold = result.threshold

        def identified(face: IdentifiedFace) -> pb.IdentifiedFace:
            return pb.IdentifiedFace(
                box=convert.box(face.box),
                candidates=[
                    pb.IdentityCandidate(**dataclasses.asdict(c), match=c.distance <= threshold)
                    for c in face.candidates
                ],
            )

        results = item_messages(
            analysis.outcomes, pb.FaceIdentification, lambda found: {"faces": [identified(f) for f in found.value]}
        )
        return convert.response(pb.IdentifyFacesResponse, analysis, results, self.service, threshold=threshold)
