"""Image commands: classify, detect [--draw out.png]; faces_detect, registered by cli_faces."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from google.rpc import code_pb2

from lumen.cli_output import emit
from lumen.client import Client
from lumen.common.v1 import common_pb2
from lumen.vision.v1 import vision_pb2

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}


def image_files(sources: list[str]) -> list[Path]:
    """The files named, with a folder standing for the images in it (sorted)."""
    files: list[Path] = []
    for source in map(Path, sources):
        if source.is_dir():
            files += sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif source.is_file():
            files.append(source)
        else:
            raise ValueError(f"no such image file or folder: {source}")
    if not files:
        raise ValueError(f"no images in {', '.join(sources)}")
    return files


def _images(files: list[Path]) -> list[common_pb2.Image]:
    return [common_pb2.Image(content=p.read_bytes()) for p in files]


def _status(result: object) -> str | None:
    status = result.status  # type: ignore[attr-defined]
    return f"{code_pb2.Code.Name(status.code)}: {status.message}" if status.code else None


def _classify(client: Client, args: argparse.Namespace) -> None:
    files = image_files(args.images)
    request = vision_pb2.ClassifyImagesRequest(
        model=common_pb2.ModelRef(name=args.model), images=_images(files), top_k=args.top_k
    )
    response = client.call(client.images.ClassifyImages, request)

    def human() -> None:
        print(f"model {response.model.name}")
        for path, result in zip(files, response.results, strict=True):
            labels = _status(result) or ", ".join(f"{lab.label} {lab.score:.3f}" for lab in result.labels)
            print(f"{path}: {labels}")

    emit(args, response, human)


def draw_boxes(source: Path, objects: list[tuple[vision_pb2.BoundingBox, str]], out: Path) -> None:
    """The image with each normalised box outlined and labelled, written as PNG."""
    from PIL import Image, ImageDraw, ImageOps

    with Image.open(source) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")  # the service's coordinates are after EXIF
    pen = ImageDraw.Draw(image)
    width = max(2, round(min(image.size) / 200))
    for box, label in objects:
        xy = (box.x_min * image.width, box.y_min * image.height, box.x_max * image.width, box.y_max * image.height)
        pen.rectangle(xy, outline=(255, 32, 32), width=width)
        left, top, right, bottom = pen.textbbox((xy[0], xy[1]), label)
        pen.rectangle((left, top, right + 4, bottom + 2), fill=(255, 32, 32))
        pen.text((xy[0] + 2, xy[1]), label, fill=(255, 255, 255))
    image.save(out, format="PNG")


def _detect_one(client: Client, args: argparse.Namespace, method: Any, request_type: Any) -> tuple[Path, Any, Any]:
    """One image through a detection RPC (objects or faces): its path, the response and its one result."""
    path = Path(args.image)
    model = common_pb2.ModelRef(name=args.model)
    request = request_type(model=model, images=_images([path]), max_results=args.max_results)
    if args.threshold is not None:
        request.score_threshold = args.threshold
    response = client.call(method, request)
    return path, response, response.results[0]


def _box(b: Any) -> str:
    return f"box [{b.x_min:.3f}, {b.y_min:.3f}, {b.x_max:.3f}, {b.y_max:.3f}]"


def _detect(client: Client, args: argparse.Namespace) -> None:
    path, response, result = _detect_one(client, args, client.images.DetectObjects, vision_pb2.DetectObjectsRequest)
    if args.draw and not result.status.code:
        draw_boxes(path, [(o.box, f"{o.label} {o.score:.2f}") for o in result.objects], Path(args.draw))

    def human() -> None:
        print(f"model {response.model.name}; {path} ({result.width}x{result.height})")
        if error := _status(result):
            print(f"  {error}")
        for o in result.objects:
            print(f"  {o.label:<16} {o.score:.3f}  {_box(o.box)}")
        if args.draw:
            print(f"drew {len(result.objects)} boxes into {args.draw}")

    emit(args, response, human)


def faces_detect(client: Client, args: argparse.Namespace) -> None:
    path, response, result = _detect_one(client, args, client.images.DetectFaces, vision_pb2.DetectFacesRequest)
    if args.draw and not result.status.code:
        draw_boxes(path, [(f.box, f"face {f.score:.2f}") for f in result.faces], Path(args.draw))

    def human() -> None:
        print(f"model {response.model.name}; {path} ({result.width}x{result.height}): {len(result.faces)} faces")
        if error := _status(result):
            print(f"  {error}")
        for f in result.faces:
            print(f"  face {f.score:.3f}  {_box(f.box)}")

    emit(args, response, human)


def add_detect(commands: argparse._SubParsersAction, name: str, help_text: str, run: Any) -> argparse.ArgumentParser:
    """A detection command (objects, faces): one image, --model, --threshold, --max-results, --draw."""
    detect = commands.add_parser(name, help=help_text)
    detect.add_argument("image")
    detect.add_argument("--model", default="")
    detect.add_argument("--threshold", type=float, default=None)
    detect.add_argument("--max-results", type=int, default=0)
    detect.add_argument("--draw", default=None, metavar="OUT.png")
    detect.set_defaults(run=run)
    return detect


def register(commands: argparse._SubParsersAction) -> None:
    classify = commands.add_parser("classify", help="classify image files or the images of a folder")
    classify.add_argument("images", nargs="+")
    classify.add_argument("--model", default="")
    classify.add_argument("--top-k", type=int, default=5)
    classify.set_defaults(run=_classify)
    add_detect(commands, "detect", "detect objects in an image; --draw writes the boxes as PNG", _detect)
