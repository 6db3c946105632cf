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
    """EfficientNet's evaluation crop: shorter side to size + crop_padding, then the centre size x size."""
    image = Image.fromarray(pixels)
    width, height = image.size
    scale = (size + crop_padding) / min(width, height)
    # At least `size` on each side: a 1 x 1 image is stretched, not cropped to nothing.
    image = image.resize((max(size, round(width * scale)), max(size, round(height * scale))), resample)
    width, height = image.size
    left, top = (width - size) // 2, (height - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)))


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
