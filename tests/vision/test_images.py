"""Image decoding: formats, orientation, modes, and refusals naming the field (no models)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from PIL import Image

from lumen.common.v1 import common_pb2
from services.vision.images import Limits, decode, decode_each
from shared.errors import InvalidArgument, ResourceExhausted
from tests.vision import samples

LIMITS = Limits()


@pytest.mark.parametrize(
    ("fmt", "options", "tolerance"),
    [("PNG", {}, 0), ("BMP", {}, 0), ("WEBP", {"lossless": True}, 0), ("JPEG", {"quality": 95}, 6)],
)
def test_formats_decode_to_the_same_rgb(fmt: str, options: dict, tolerance: float) -> None:
    pixels = samples.flower()[::4, ::4].copy()
    decoded = decode(samples.encode(pixels, fmt, **options), "images[0]", LIMITS)
    assert decoded.pixels.dtype == np.uint8 and decoded.pixels.shape == pixels.shape
    assert np.abs(decoded.pixels.astype(int) - pixels).mean() <= tolerance


def test_gif_gives_its_first_frame() -> None:
    decoded = decode(samples.animated_gif(), "images[0]", LIMITS)
    assert decoded.pixels.shape == (32, 32, 3)
    assert tuple(decoded.pixels[16, 16]) == (255, 0, 0)


def test_exif_orientation_is_applied() -> None:
    decoded = decode(samples.exif_rotated_jpeg(), "images[0]", LIMITS)
    # Stored 60 x 30 with the left half black; rotated 90 degrees clockwise: 30 x 60, top half black.
    assert (decoded.width, decoded.height) == (30, 60)
    assert decoded.pixels[:25].mean() < 20 and decoded.pixels[35:].mean() > 235


def test_cmyk_becomes_rgb() -> None:
    decoded = decode(samples.cmyk_jpeg(), "images[0]", LIMITS)
    assert decoded.pixels.shape == samples.flower().shape
    assert np.abs(decoded.pixels.astype(int) - samples.flower()).mean() < 12


def test_16_bit_grey_is_scaled_not_clipped() -> None:
    data, expected = samples.grey16_png()
    decoded = decode(data, "images[0]", LIMITS)
    assert np.array_equal(decoded.pixels[:, :, 0], expected)
    assert np.array_equal(decoded.pixels[:, :, 0], decoded.pixels[:, :, 2])


def test_alpha_is_composited_on_white() -> None:
    decoded = decode(samples.alpha_png(), "images[0]", LIMITS)
    assert tuple(decoded.pixels[10, 5]) == (255, 0, 0)
    assert tuple(decoded.pixels[10, 35]) == (255, 255, 255)


def test_palette_with_transparency_and_1x1() -> None:
    palette = Image.fromarray(samples.flower()[:40, :40]).convert("P", palette=Image.Palette.ADAPTIVE)
    palette.info["transparency"] = 0
    assert decode(samples.encode(palette), "images[0]", LIMITS).pixels.shape == (40, 40, 3)
    one = decode(samples.one_pixel(), "images[0]", LIMITS)
    assert one.pixels.shape == (1, 1, 3) and tuple(one.pixels[0, 0]) == (200, 30, 30)


@pytest.mark.parametrize(
    "data",
    [b"", samples.text_named_png(), samples.truncated_jpeg(), b"\x89PNG\r\n\x1a\n" + b"\x00" * 40],
    ids=["zero-bytes", "text-named-png", "truncated-jpeg", "png-signature-only"],
)
def test_undecodable_is_invalid_argument_naming_the_field(data: bytes) -> None:
    with pytest.raises(InvalidArgument) as refused:
        decode(data, "images[3]", LIMITS)
    assert refused.value.violations[0][0] == "images[3]"


def test_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = samples.png_bomb()
    assert len(bomb) < 1_000_000  # 900 million pixels in well under a megabyte
    assert struct.unpack(">II", bomb[16:24]) == (30_000, 30_000)  # IHDR width, height
    with pytest.raises(ResourceExhausted) as refused:
        decode(bomb, "images[0]", LIMITS)
    assert "images[0]" in refused.value.message and "pixels" in refused.value.message


def test_pixel_and_byte_limits() -> None:
    data = samples.encode(samples.flower())  # 427 x 640
    with pytest.raises(ResourceExhausted, match="pixels"):
        decode(data, "images[0]", Limits(max_pixels=427 * 640 - 1))
    with pytest.raises(ResourceExhausted, match="bytes"):
        decode(data, "images[0]", Limits(max_bytes=len(data) - 1))
    assert decode(data, "images[0]", Limits(max_bytes=len(data), max_pixels=427 * 640)).width == 640


def test_each_image_keeps_its_own_error() -> None:
    images = [samples.message(samples.one_pixel()), common_pb2.Image(), samples.message(b"nope")]
    outcomes = decode_each(images, "images", LIMITS)
    assert outcomes[0].value.width == 1
    assert isinstance(outcomes[1].error, InvalidArgument) and outcomes[1].error.violations[0][0] == "images[1]"
    assert isinstance(outcomes[2].error, InvalidArgument) and outcomes[2].error.violations[0][0] == "images[2]"
