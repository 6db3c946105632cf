"""What the face detectors find on real photos that packages ship: the vision README's figures.

``python -m services.vision.face_check`` runs the face-detection models as served (configs
written by setup_models, loaded by their runtimes), plus dlib at its own threshold (min_margin
0) for comparison, over:
- 18 photos: scikit-image's astronaut (one face) and camera (one face, turned to his camera),
  matplotlib's grace_hopper (one face), and 15 without a face (rocket, coffee, chelsea, cat,
  hubble_deep_field, immunohistochemistry, retina, logo, coins, horse, colorwheel, page, moon,
  and scikit-learn's china and flower);
- scikit-image's LFW subset: 100 face crops and 100 non-face crops, 25 x 25 grey, enlarged
  to 150 x 150.
It prints each detector's claims per photo (score and box) and its LFW counts.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from services.vision.app import FACTORIES
from services.vision.images import Decoded
from services.vision.results import FaceQuery
from services.vision.setup_models import write_packaged
from shared.model import ModelConfig

FACES = {"astronaut": 1, "camera": 1, "grace_hopper": 1}
NO_FACE = [
    "rocket",
    "coffee",
    "chelsea",
    "cat",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "logo",
    "coins",
    "horse",
    "colorwheel",
    "page",
    "moon",
]


def _rgb(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        pixels = (pixels * 255).round().astype(np.uint8)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, :3])


def grace_hopper() -> np.ndarray:
    """matplotlib's sample photo of Grace Hopper (512 x 600): one face."""
    import matplotlib

    with Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg") as photo:
        return _rgb(np.asarray(photo.convert("RGB")))


def photos() -> dict[str, np.ndarray]:
    import skimage.data
    from sklearn.datasets import load_sample_images

    out = {name: _rgb(getattr(skimage.data, name)()) for name in ("astronaut", "camera", *NO_FACE)}
    out["grace_hopper"] = grace_hopper()
    china, flower = load_sample_images().images
    out["china"], out["flower"] = _rgb(china), _rgb(flower)
    return out


def lfw_crops(side: int = 150) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(100 face crops, 100 non-face crops) of scikit-image's LFW subset, enlarged to ``side``."""
    import skimage.data

    crops = [
        _rgb(np.asarray(Image.fromarray(_rgb(c)[:, :, 0]).resize((side, side), Image.Resampling.BICUBIC)))
        for c in skimage.data.lfw_subset()
    ]
    return crops[:100], crops[100:]


def detectors(repository: Path) -> dict[str, object]:
    write_packaged(repository)
    out = {}
    for name, overrides in (
        ("dlib-hog-face", {}),
        ("dlib-hog-face min_margin=0", {"min_margin": 0.0}),
        ("opencv-haar-face", {}),
    ):
        config = ModelConfig.from_directory(repository / name.split()[0])
        config.parameters.update(overrides)
        model = FACTORIES[config.framework](config, "cpu")
        model.load()
        out[name] = model
    return out


def main() -> None:
    images = photos()
    faces, non_faces = lfw_crops()
    with tempfile.TemporaryDirectory() as directory:
        for name, model in detectors(Path(directory)).items():
            found = {n: model.predict([FaceQuery(Decoded(p))])[0] for n, p in images.items()}  # type: ignore[attr-defined]
            wrong = sum(max(0, len(f) - FACES.get(n, 0)) for n, f in found.items())
            right = sum(min(len(f), FACES.get(n, 0)) for n, f in found.items())
            print(f"{name}: {right + wrong} claims on {len(images)} photos, {right} right, {wrong} wrong")
            for photo, claims in found.items():
                if claims or photo in FACES:
                    boxes = ", ".join(f"{c.score:.3f} at {c.box.to_pixels(Decoded(images[photo]))}" for c in claims)
                    print(f"  {photo} ({FACES.get(photo, 0)} face): {boxes or 'none'}")
            hit = sum(bool(model.predict([FaceQuery(Decoded(c))])[0]) for c in faces)  # type: ignore[attr-defined]
            false = sum(bool(model.predict([FaceQuery(Decoded(c))])[0]) for c in non_faces)  # type: ignore[attr-defined]
            print(f"  LFW subset: a face found on {hit} of 100 face crops, on {false} of 100 non-face crops")


if __name__ == "__main__":
    main()
