"""Image memory bounded on both sides: the centre crop resamples only what it keeps, and one call's
images are bounded together in pixels (checked from the headers, before decoding)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lumen.common.v1 import common_pb2
from services.vision.images import Limits, decode_each
from services.vision.preprocess import resize_center_crop
from shared.errors import ResourceExhausted


def _full_resize_then_crop(pixels: np.ndarray, size: int, padding: int, resample: Image.Resampling) -> np.ndarray:
    """The crop as it was computed before: the whole image resized, then its centre kept."""
    image = Image.fromarray(pixels)
    scale = (size + padding) / min(image.size)
    image = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))), resample)
    left, top = (image.width - size) // 2, (image.height - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)))


@pytest.mark.parametrize("shape", [(480, 640), (640, 480), (37, 53), (1, 1), (1000, 999)])
def test_centre_crop_matches_resizing_the_whole_image(shape: tuple[int, int]) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    got = resize_center_crop(pixels, 224, 32, Image.Resampling.BICUBIC)
    want = _full_resize_then_crop(pixels, 224, 32, Image.Resampling.BICUBIC)
    assert got.shape == want.shape == (224, 224, 3)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_long_thin_image_is_cropped_in_bounded_memory() -> None:
    pixels = np.zeros((10, 100_000, 3), np.uint8)  # the old way resized it to 2,560,000 x 256 (2 GB)
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS (Pillow allocates in C)
    before = _peak_rss_kib()
    out = resize_center_crop(pixels, 224, 32, Image.Resampling.BICUBIC)
    assert out.shape == (224, 224, 3)
    assert _peak_rss_kib() - before < 64 * 1024


def _png(width: int, height: int) -> common_pb2.Image:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (9, 9, 9)).save(out, format="PNG")
    return common_pb2.Image(content=out.getvalue())


def test_one_calls_images_are_bounded_together() -> None:
    limits = Limits(max_pixels=1_000_000, max_call_pixels=2_500_000)
    outcomes = decode_each([_png(1000, 1000), _png(1000, 1000), _png(1000, 1000), _png(10, 10)], "images", limits)
    assert [o.ok for o in outcomes] == [True, True, False, True]
    assert isinstance(outcomes[2].error, ResourceExhausted) and "images[2]" in outcomes[2].error.message
