"""Face commands: faces detect | enroll | identify | verify | galleries."""

from __future__ import annotations

import argparse
from pathlib import Path

from google.rpc import code_pb2

from lumen.cli_output import emit
from lumen.cli_vision import add_detect, faces_detect, image_files
from lumen.client import Client
from lumen.client_pages import every_page
from lumen.common.v1 import common_pb2
from lumen.vision.v1 import vision_pb2


def _image(path: str) -> common_pb2.Image:
    return common_pb2.Image(content=Path(path).read_bytes())


def _enroll(client: Client, args: argparse.Namespace) -> None:
    files = image_files(args.images)
    request = vision_pb2.EnrollPersonRequest(
        gallery=args.gallery,
        person_id=args.person,
        display_name=args.name,
        images=[common_pb2.Image(content=p.read_bytes()) for p in files],
    )
    response = client.call(client.faces.EnrollPerson, request)

    def human() -> None:
        print(f"enrolled {response.enrolled} of {len(files)} images for {response.person.person_id}")
        for path, status in zip(files, response.statuses, strict=False):
            if status.code:
                print(f"  {path}: {code_pb2.Code.Name(status.code)}: {status.message}")

    emit(args, response, human)


def _identify(client: Client, args: argparse.Namespace) -> None:
    request = vision_pb2.IdentifyFacesRequest(gallery=args.gallery, images=[_image(args.image)], top_k=args.top_k)
    if args.threshold is not None:
        request.threshold = args.threshold
    response = client.call(client.faces.IdentifyFaces, request)

    def human() -> None:
        result = response.results[0]
        if result.status.code:
            print(f"{code_pb2.Code.Name(result.status.code)}: {result.status.message}")
        for face in result.faces:
            b = face.box
            best = face.candidates[0] if face.candidates else None
            who = f"{best.person_id} (distance {best.distance:.3f})" if best and best.match else "unknown"
            print(f"face [{b.x_min:.3f}, {b.y_min:.3f}, {b.x_max:.3f}, {b.y_max:.3f}]: {who}")

    emit(args, response, human)


def _verify(client: Client, args: argparse.Namespace) -> None:
    request = vision_pb2.VerifyFacesRequest(image_a=_image(args.image_a), image_b=_image(args.image_b))
    if args.threshold is not None:
        request.threshold = args.threshold
    response = client.call(client.faces.VerifyFaces, request)
    verdict = "same person" if response.same_person else "different people"
    emit(
        args,
        response,
        lambda: print(f"{verdict} (distance {response.distance:.3f}, threshold {response.threshold:.3f})"),
    )


def _galleries(client: Client, args: argparse.Namespace) -> None:
    if args.action == "list":
        galleries = every_page(client.call, client.faces.ListGalleries, vision_pb2.ListGalleriesRequest(), "galleries")
        response = vision_pb2.ListGalleriesResponse(galleries=galleries)
        rows = galleries
    elif args.action == "create":
        response = client.call(client.faces.CreateGallery, vision_pb2.CreateGalleryRequest(name=args.name))
        rows = [response.gallery]
    elif args.action == "get":
        response = client.call(client.faces.GetGallery, vision_pb2.GetGalleryRequest(name=args.name))
        rows = [response.gallery]
    else:
        response = client.call(client.faces.DeleteGallery, vision_pb2.DeleteGalleryRequest(name=args.name))
        emit(args, response, lambda: print(f"deleted {args.name}"))
        return

    def human() -> None:
        for g in rows:
            print(f"{g.name:<24} {g.model:<20} {g.person_count:>6} people {g.face_count:>6} faces")

    emit(args, response, human)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("faces", help="faces: detect, enroll, identify, verify, galleries")
    faces = parser.add_subparsers(dest="faces_command", required=True)
    add_detect(faces, "detect", "detect faces in an image; --draw writes the boxes as PNG", faces_detect)
    enroll = faces.add_parser("enroll", help="enroll a person's face images (files or a folder) in a gallery")
    enroll.add_argument("images", nargs="+")
    enroll.add_argument("--gallery", required=True)
    enroll.add_argument("--person", required=True, help="person id")
    enroll.add_argument("--name", default="", help="display name")
    enroll.set_defaults(run=_enroll)
    identify = faces.add_parser("identify", help="who is in an image, by a gallery")
    identify.add_argument("image")
    identify.add_argument("--gallery", required=True)
    identify.add_argument("--top-k", type=int, default=1)
    identify.add_argument("--threshold", type=float, default=None)
    identify.set_defaults(run=_identify)
    verify = faces.add_parser("verify", help="are the faces of two images the same person")
    verify.add_argument("image_a")
    verify.add_argument("image_b")
    verify.add_argument("--threshold", type=float, default=None)
    verify.set_defaults(run=_verify)
    galleries = faces.add_parser("galleries", help="galleries: list, create NAME, get NAME, delete NAME")
    galleries.add_argument("action", choices=["list", "create", "get", "delete"])
    galleries.add_argument("name", nargs="?", default="")
    galleries.set_defaults(run=_galleries)
