"""Small Keras CNN on a zip of images (one folder per class), served by vision
ClassifyImages through its Keras runtime.

Images are prepared the way that runtime prepares a request: decoded to RGB,
stretched to ``image_size`` square with the same Pillow filter (grey by Pillow's
luma when ``grayscale`` is 1), pixels / 255; model.json carries the filter, the
scale and the labels, so served answers are the held-out answers measured here.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from lumen.training.v1 import training_pb2
from services.training.recipes import data, hypers, keras_fit
from services.training.recipes.base import Hyper, Recipe, TrainContext, TrainingFailed, TrainOutput

RESAMPLE = "bilinear"
SCALE = 1 / 255


def read_images(path: Path, size: int, channels: int) -> tuple[list[str], np.ndarray, list[str]]:
    """(entry names, float32 pixels (n, size, size, channels), labels), entries in name order."""
    from PIL import Image

    from services.vision.preprocess import resampling, resize_to

    entries, pixels, labels = [], [], []
    with zipfile.ZipFile(path) as archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            if info.is_dir() or info.filename.startswith("__MACOSX/"):
                continue
            with Image.open(io.BytesIO(archive.read(info))) as image:
                rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
            pixels.append(resize_to(rgb, size, size, channels, resampling(RESAMPLE)).astype(np.float32) * SCALE)
            entries.append(info.filename)
            labels.append(info.filename.split("/")[0])
    if not entries:
        raise TrainingFailed("the archive holds no images")
    return entries, np.stack(pixels), labels


def train(ctx: TrainContext) -> TrainOutput:
    import keras

    size, channels = ctx.int("image_size"), 1 if ctx.int("grayscale") else 3
    _, x, labels = read_images(ctx.dataset, size, channels)
    classes, y = data.class_ids(labels)
    train_idx, test_idx = data.split(labels, ctx.validation_split, ctx.seed)
    keras_fit.seed_everything(ctx.seed)
    filters = ctx.int("filters")

    def body() -> list[Any]:
        return [
            keras.Input(shape=(size, size, channels)),
            keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(filters * 2, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
        ]

    model, predicted = keras_fit.fit_classifier(ctx, body, len(classes), x, y, (train_idx, test_idx))
    model.save(ctx.out_dir / "model.keras")
    (ctx.out_dir / "labels.json").write_text(json.dumps(classes) + "\n")
    return TrainOutput(
        framework="keras",
        parameters={"labels": "labels.json", "scale": SCALE, "resample": RESAMPLE},
        metrics=data.heldout_metrics(predicted, y[test_idx], len(train_idx)),
        path="model.keras",
        files=("labels",),
    )


RECIPE = Recipe(
    name="cnn-image",
    description="Two-convolution Keras CNN on a zip of images, one folder per class; serves ClassifyImages.",
    formats=(training_pb2.DATASET_FORMAT_IMAGE_ZIP,),
    service="vision",
    task="image-classification",
    hyperparameters=(
        hypers.epochs(10, 500, "images"),
        Hyper("image_size", 32, 4, 512, "Images are stretched to this many pixels square."),
        Hyper("grayscale", 0, 0, 1, "1: one grey channel (Pillow luma); 0: RGB."),
        Hyper("filters", 16, 1, 512, "Filters of the first convolution (the second has twice as many)."),
        hypers.batch_size(32, "Images"),
        hypers.adam_learning_rate(0.001),
        hypers.dropout(0.3, "before the output layer"),
    ),
    train=train,
)
