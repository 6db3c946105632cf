"""Object detection through a real service: a TF detection SavedModel exported here and
OpenCV's shipped detectors, each against the same detector run in process."""

from __future__ import annotations

import numpy as np
import pytest

from lumen.common.v1 import common_pb2
from lumen.vision.v1 import vision_pb2 as pb
from tests.vision import samples

pytestmark = pytest.mark.slow

COLOUR = common_pb2.ModelRef(name="colour-regions")


def _box(b: pb.BoundingBox) -> list[float]:
    return [b.x_min, b.y_min, b.x_max, b.y_max]


def _two_rectangles() -> np.ndarray:
    """200 wide x 100 high, grey, a red rectangle (x 20..59, y 10..49) and a blue one (x 120..179, y 60..89)."""
    pixels = np.full((100, 200, 3), 128, dtype=np.uint8)
    pixels[10:50, 20:60] = (230, 20, 20)
    pixels[60:90, 120:180] = (20, 20, 230)
    return pixels


async def test_tf_detection_savedmodel_boxes_labels_and_threshold(analysis) -> None:
    image = samples.message(samples.encode(_two_rectangles()))
    response = await analysis.DetectObjects(pb.DetectObjectsRequest(model=COLOUR, images=[image]))
    objects = response.results[0].objects
    assert response.model.framework == "tf-detection"
    assert [o.label for o in objects] == ["red region", "blue region"]  # green scores 0 < 0.5
    assert [o.label_id for o in objects] == [1, 3]
    assert np.allclose(_box(objects[0].box), [0.1, 0.1, 0.3, 0.5], atol=1e-6)
    assert np.allclose(_box(objects[1].box), [0.6, 0.6, 0.9, 0.9], atol=1e-6)
    assert np.allclose([o.score for o in objects], 1.0)
    everything = await analysis.DetectObjects(
        pb.DetectObjectsRequest(model=COLOUR, images=[image], score_threshold=0.0)
    )
    assert [o.label for o in everything.results[0].objects] == ["red region", "blue region", "green region"]
    first = await analysis.DetectObjects(pb.DetectObjectsRequest(model=COLOUR, images=[image], max_results=1))
    assert [o.label for o in first.results[0].objects] == ["red region"]


async def test_tf_detection_equals_the_savedmodel_in_process(analysis, vision_repository) -> None:
    import tensorflow as tf

    signature = tf.saved_model.load(str(vision_repository / "colour-regions" / "saved_model")).signatures[
        "serving_default"
    ]
    photos = [samples.flower(), samples.china(), samples.skimage_photo("coffee")]
    response = await analysis.DetectObjects(
        pb.DetectObjectsRequest(
            model=COLOUR, images=[samples.message(samples.encode(p)) for p in photos], score_threshold=0.0
        )
    )
    for pixels, result in zip(photos, response.results, strict=True):
        out = signature(input_tensor=tf.constant(pixels[None]))
        scores = out["detection_scores"].numpy()[0]
        boxes = out["detection_boxes"].numpy()[0][:, [1, 0, 3, 2]]  # to x_min, y_min, x_max, y_max
        assert np.allclose([o.score for o in result.objects], scores, atol=1e-6)
        assert np.allclose([_box(o.box) for o in result.objects], boxes, atol=1e-6)
        assert [o.label_id for o in result.objects] == out["detection_classes"].numpy()[0].astype(int).tolist()


def _opencv_in_process(pixels: np.ndarray) -> list[tuple[str, list[float]]]:
    """The three OpenCV detectors of opencv-objects + opencv-people-plates, called directly."""
    import cv2

    height, width = pixels.shape[:2]
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    found = []
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    rects, _ = hog.detectMultiScale(pixels, winStride=(8, 8), padding=(8, 8), scale=1.05)
    found += [("person", r) for r in rects]
    for label, cascade, size in (
        ("cat face", "haarcascade_frontalcatface_extended.xml", (48, 48)),
        ("license plate", "haarcascade_russian_plate_number.xml", (60, 20)),
    ):
        classifier = cv2.CascadeClassifier(cv2.data.haarcascades + cascade)
        found += [(label, r) for r in classifier.detectMultiScale(grey, 1.1, 5, minSize=size)]
    return sorted((label, [x / width, y / height, (x + w) / width, (y + h) / height]) for label, (x, y, w, h) in found)


async def test_default_detector_claims_nothing_on_photos_without_its_objects(analysis) -> None:
    names = ("rocket", "retina", "logo", "coffee", "astronaut")
    photos = [samples.skimage_photo(n)[..., :3] for n in names] + [samples.china(), samples.flower()]
    response = await analysis.DetectObjects(
        pb.DetectObjectsRequest(images=[samples.message(samples.encode(p)) for p in photos], score_threshold=0.0)
    )
    assert response.model.name == "opencv-objects"
    assert [[o.label for o in r.objects] for r in response.results] == [[]] * len(photos)


async def test_opencv_detectors_equal_opencv_in_process(analysis) -> None:
    photos = [samples.skimage_photo("astronaut"), samples.skimage_photo("chelsea"), samples.china()]
    images = [samples.message(samples.encode(p)) for p in photos]
    default, others = [
        await analysis.DetectObjects(
            pb.DetectObjectsRequest(images=images, score_threshold=0.0, model=common_pb2.ModelRef(name=name))
        )
        for name in ("opencv-objects", "opencv-people-plates")
    ]
    assert sum(len(r.objects) for r in others.results) > 0  # something to compare
    for pixels, one, two in zip(photos, default.results, others.results, strict=True):
        got = sorted((o.label, _box(o.box)) for o in [*one.objects, *two.objects])
        want = _opencv_in_process(pixels)
        assert [g[0] for g in got] == [w[0] for w in want]
        assert np.allclose([g[1] for g in got], [w[1] for w in want], atol=1e-6) if want else not got
        scores = [o.score for o in two.objects]
        assert all(0.0 < s <= 1.0 for s in scores) and scores == sorted(scores, reverse=True)
