"""Images for the vision tests: real photographs that packages ship (read at test
time, never committed) and hostile or unusual files made here."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from lumen.common.v1 import common_pb2


def encode(pixels: np.ndarray | Image.Image, fmt: str = "PNG", **options) -> bytes:
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def message(data: bytes) -> common_pb2.Image:
    return common_pb2.Image(content=data)


def china() -> np.ndarray:
    from sklearn.datasets import load_sample_images

    return load_sample_images().images[0]


def flower() -> np.ndarray:
    from sklearn.datasets import load_sample_images

    return load_sample_images().images[1]


def skimage_photo(name: str) -> np.ndarray:
    """scikit-image's bundled photos: astronaut (a person), chelsea (a cat), coffee..."""
    import skimage.data

    return np.ascontiguousarray(getattr(skimage.data, name)())


def astronaut_face_crop(mirrored: bool = False) -> np.ndarray:
    """The astronaut's head and shoulders: her face, without the rest of the photo."""
    pixels = skimage_photo("astronaut")[:300, 80:380]
    return np.ascontiguousarray(pixels[:, ::-1] if mirrored else pixels)


def other_face() -> np.ndarray:
    """A different person: the first face of scikit-image's LFW subset (25 x 25 grey), enlarged."""
    import skimage.data

    face = (skimage.data.lfw_subset()[0] * 255).astype(np.uint8)
    big = np.asarray(Image.fromarray(face).resize((150, 150), Image.Resampling.BICUBIC))
    return np.ascontiguousarray(np.repeat(big[:, :, None], 3, axis=2))


def two_faces() -> np.ndarray:
    """Two real people side by side: the astronaut's head and shoulders and Grace Hopper (matplotlib's photo)."""
    from services.vision.face_check import grace_hopper

    left, right = astronaut_face_crop(), grace_hopper()[100:400, 120:420]
    return np.ascontiguousarray(np.concatenate([left, right], axis=1))


# Hostile and unusual files ------------------------------------------------


def truncated_jpeg() -> bytes:
    data = encode(flower(), "JPEG", quality=90)
    return data[: len(data) // 3]


def text_named_png() -> bytes:
    return b"This is a text file that someone saved as photo.png\n"


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid 1-bit PNG of width x height white pixels, a few hundred KB compressed;
    decoded to RGB it would need width * height * 3 bytes (2.7 GB for 30,000^2)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    row = b"\x00" + b"\xff" * ((width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    rows_per_chunk = 1000
    parts = [compressor.compress(row * rows_per_chunk) for _ in range(height // rows_per_chunk)]
    parts.append(compressor.compress(row * (height % rows_per_chunk)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def one_pixel() -> bytes:
    return encode(np.array([[[200, 30, 30]]], dtype=np.uint8))


def cmyk_jpeg() -> bytes:
    return encode(Image.fromarray(flower()).convert("CMYK"), "JPEG", quality=95)


def grey16_png() -> tuple[bytes, np.ndarray]:
    """A 16-bit grey ramp and its expected 8-bit values."""
    ramp = np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (32, 1))
    return encode(Image.fromarray(ramp)), np.rint(ramp / 257.0).astype(np.uint8)


def alpha_png() -> bytes:
    """Left half opaque red, right half fully transparent (composited: white)."""
    rgba = np.zeros((20, 40, 4), dtype=np.uint8)
    rgba[:, :20] = (255, 0, 0, 255)
    rgba[:, 20:] = (0, 0, 255, 0)
    return encode(rgba)


def animated_gif() -> bytes:
    """Two frames: red, then blue. Only the first is analysed."""
    red = Image.new("RGB", (32, 32), (255, 0, 0))
    blue = Image.new("RGB", (32, 32), (0, 0, 255))
    return encode(red, "GIF", save_all=True, append_images=[blue], duration=100, loop=0)


def exif_rotated_jpeg() -> bytes:
    """Stored 60 wide x 30 high, left half black; EXIF orientation 6 (rotate 90 clockwise to view)."""
    pixels = np.full((30, 60, 3), 255, dtype=np.uint8)
    pixels[:, :30] = 0
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(pixels, "JPEG", exif=exif, quality=95)
