"""Image decoding: encoded bytes in, an 8-bit RGB array out, or a typed error naming the field.

Pillow decodes JPEG, PNG, WebP, BMP and GIF (first frame of anything
animated). EXIF orientation is applied first, so sizes and coordinates refer
to the image as a person sees it. Every mode ends as 8-bit RGB: CMYK and
palette images are converted, 16-bit grey is scaled (not clipped) to 8 bits,
alpha is composited on white.

Limits are checked before the expensive step: the byte count before
opening, and width x height from the header before any pixel is decoded, so a
30,000 x 30,000 PNG of a few kilobytes (a decompression bomb) is refused
without allocating its 2.7 GB. One call's images are also bounded together
(``max_call_pixels``), so the decoded arrays a call holds stay within a budget in
bytes (3 per pixel), not only in a count of images.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lumen.common.v1 import common_pb2
from shared.errors import InvalidArgument, LumenError, ResourceExhausted
from shared.results import Result

# (Camera JPEGs with extra frames, "MPO", open through the JPEG plugin.)
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF")
_PILLOW_BOMB_ERRORS = (Image.DecompressionBombError,)
# Everything Pillow raises on corrupt data (SyntaxError and struct.error included).
_DECODE_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError)


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 16 * 1024 * 1024
    max_pixels: int = 16_000_000
    max_call_pixels: int = 32_000_000


def configure_pillow(limits: Limits) -> None:
    """Align Pillow's own bomb guard with ours. It is a process-wide setting checked
    inside Image.open (a refusal above twice the value); our check after open is exact."""
    Image.MAX_IMAGE_PIXELS = limits.max_pixels


@dataclass(frozen=True)
class Decoded:
    """An image ready for models: (height, width, 3) uint8 RGB, EXIF orientation applied."""

    pixels: np.ndarray

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


def decode(data: bytes, field: str, limits: Limits, budget: list[int] | None = None) -> Decoded:
    """Decode one encoded image; InvalidArgument or ResourceExhausted naming ``field`` when refused.

    ``budget``, when given, holds the pixels the call may still decode; this image's are
    taken from it (checked from the header, before decoding)."""
    if not data:
        raise InvalidArgument(field, "is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise ResourceExhausted(f"{field} is {len(data)} bytes; the limit is {limits.max_bytes} bytes", subject=field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            _check_pixels(image.size, field, limits)
            _take(budget, image.size, field, limits)
            image.load()  # decodes the first frame only
            return Decoded(_to_rgb(_oriented(image)))
    except _PILLOW_BOMB_ERRORS as exc:  # Pillow's guard inside open(), above twice our limit
        raise ResourceExhausted(
            f"{field} has too many pixels ({exc}); the limit is {limits.max_pixels}", subject=field
        ) from None
    except LumenError:
        raise
    except MemoryError:
        raise ResourceExhausted(f"{field} is too large to decode", subject=field) from None
    except _DECODE_ERRORS as exc:
        raise InvalidArgument(field, f"could not be decoded as JPEG, PNG, WebP, BMP or GIF ({_reason(exc)})") from None


def _check_pixels(size: tuple[int, int], field: str, limits: Limits) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise InvalidArgument(field, f"has no pixels ({width} x {height})")
    if width * height > limits.max_pixels:
        raise ResourceExhausted(
            f"{field} is {width} x {height} = {width * height} pixels; the limit is {limits.max_pixels}",
            subject=field,
        )


def _take(budget: list[int] | None, size: tuple[int, int], field: str, limits: Limits) -> None:
    if budget is None:
        return
    pixels = size[0] * size[1]
    if pixels > budget[0]:
        raise ResourceExhausted(
            f"{field}: the call's images together exceed {limits.max_call_pixels} pixels "
            f"(this one has {pixels}; send fewer or smaller images per call)",
            subject=field,
        )
    budget[0] -= pixels


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, UnidentifiedImageError):
        return "not a recognised image format"
    return text[:200]


def _oriented(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag; a broken EXIF block leaves the image as stored."""
    try:
        return ImageOps.exif_transpose(image)
    except (ValueError, TypeError, KeyError, SyntaxError, OSError):
        return image


def _to_rgb(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode == "RGB":
        rgb = image
    elif mode.startswith("I;16") or mode == "I":
        # 16-bit grey: Pillow's convert() would clip at 255; scale the full range instead.
        grey = np.asarray(image).astype(np.float32)
        grey = np.clip(np.rint(grey / 257.0), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    elif mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info):
        # Pasted on white through the alpha channel: the same pixels as alpha_composite
        # on an opaque white background, with two fewer full-size RGBA copies.
        rgba = image.convert("RGBA")
        rgb = Image.new("RGB", rgba.size, (255, 255, 255))
        rgb.paste(rgba, mask=rgba.getchannel("A"))
        del rgba
    else:  # L, 1, P, CMYK, YCbCr, LAB, HSV, F
        rgb = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def check_count(images: Sequence[common_pb2.Image], field: str, maximum: int) -> None:
    if not images:
        raise InvalidArgument(field, "must hold at least one image")
    if len(images) > maximum:
        raise InvalidArgument(field, f"holds {len(images)} images; at most {maximum} per call")


def decode_message(image: common_pb2.Image, field: str, limits: Limits, budget: list[int] | None = None) -> Decoded:
    """Decode a lumen.common.v1.Image (its ``content`` source)."""
    if image.WhichOneof("source") != "content":
        raise InvalidArgument(field, "has no source; set content to the encoded image bytes")
    return decode(image.content, field, limits, budget)


def decode_each(images: Sequence[common_pb2.Image], field: str, limits: Limits) -> list[Result[Decoded]]:
    """Decode every image, keeping each one's error in its place (batch RPCs answer per image)."""
    outcomes: list[Result[Decoded]] = []
    budget = [limits.max_call_pixels]
    for i, image in enumerate(images):
        try:
            outcomes.append(Result.of(decode_message(image, f"{field}[{i}]", limits, budget)))
        except LumenError as exc:
            outcomes.append(Result.failed(exc))
    return outcomes
