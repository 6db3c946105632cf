"""Pixel preparation shared by classifiers: resizing and cropping with Pillow."""

from __future__ import annotations

import numpy as np
from PIL import Image

RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "lanczos": Image.Resampling.LANCZOS,
}


def resampling(name: str) -> Image.Resampling:
    try:
        return RESAMPLING[name]
    except KeyError:
        raise ValueError(f"resample must be one of {sorted(RESAMPLING)}, not {name!r}") from None


def resize_center_crop(pixels: np.ndarray, size: int, crop_padding: int, resample: Image.Resampling) -> np.ndarray:
    """EfficientNet's evaluation crop: shorter side to size + crop_padding, then the centre size x size.

    Only the source region under the crop is resampled (Pillow's ``box``), straight to
    size x size: the result is the same as resizing the whole image first, but memory
    stays size x size whatever the aspect ratio (a 100,000 x 10 image would otherwise
    be resized to 2,560,000 x 256 pixels, 2 GB, before its centre is kept)."""
    image = Image.fromarray(pixels)
    width, height = image.size
    scale = (size + crop_padding) / min(width, height)
    # At least `size` on each side: a 1 x 1 image is stretched, not cropped to nothing.
    scaled_w, scaled_h = max(size, round(width * scale)), max(size, round(height * scale))
    left, top = (scaled_w - size) // 2, (scaled_h - size) // 2
    sx, sy = scaled_w / width, scaled_h / height
    box = (left / sx, top / sy, (left + size) / sx, (top + size) / sy)
    return np.asarray(image.resize((size, size), resample, box=box))


def resize_to(pixels: np.ndarray, height: int, width: int, channels: int, resample: Image.Resampling) -> np.ndarray:
    """Stretch to (height, width); grey (Pillow's ITU-R 601 luma) when the model takes one channel."""
    image = Image.fromarray(pixels)
    if channels == 1:
        image = image.convert("L")
    out = np.asarray(image.resize((width, height), resample))
    return out[:, :, None] if channels == 1 else out


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)
