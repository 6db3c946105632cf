"""A small object detector exported here as a TF2 SavedModel with the TF Object
Detection API's signature, to test the tf-detection runtime end to end.

What it is, honestly: not a learned model. It is a tf.function that finds, in
the image it is given, the region of strongly red, green and blue pixels (one
class each: that channel above 150 while the other two stay below 100) and
returns the bounding box of each region, its class id (1 red, 2 green, 3 blue)
and, as score, the fraction of the box that the colour fills; an absent colour
scores 0. Every output is computed from the pixels, so the service's decoding,
signature handling, box normalisation, label map, threshold and max_results
are tested against real computation.
"""

from __future__ import annotations

from pathlib import Path

LABEL_MAP = """item { id: 1 name: "red" display_name: "red region" }
item { id: 2 name: "green" display_name: "green region" }
item { id: 3 name: "blue" display_name: "blue region" }
"""


def _module():  # type: ignore[no-untyped-def]
    import tensorflow as tf

    class ColourRegions(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")])
        def detect(self, input_tensor):  # type: ignore[no-untyped-def]
            pixels = tf.cast(input_tensor[0], tf.float32)
            height, width = tf.shape(pixels)[0], tf.shape(pixels)[1]
            ys = tf.cast(tf.tile(tf.range(height)[:, None], [1, width]), tf.float32)
            xs = tf.cast(tf.tile(tf.range(width)[None, :], [height, 1]), tf.float32)
            h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
            boxes, scores = [], []
            for channel in range(3):
                others = tf.reduce_max(tf.gather(pixels, [c for c in range(3) if c != channel], axis=2), axis=2)
                mask = tf.logical_and(pixels[:, :, channel] > 150.0, others < 100.0)
                count = tf.reduce_sum(tf.cast(mask, tf.float32))
                found = count > 0
                y0 = tf.reduce_min(tf.where(mask, ys, h))
                y1 = tf.reduce_max(tf.where(mask, ys, -1.0)) + 1.0
                x0 = tf.reduce_min(tf.where(mask, xs, w))
                x1 = tf.reduce_max(tf.where(mask, xs, -1.0)) + 1.0
                box = tf.stack([y0 / h, x0 / w, y1 / h, x1 / w])
                boxes.append(tf.where(found, box, tf.zeros(4)))
                scores.append(tf.where(found, count / tf.maximum((y1 - y0) * (x1 - x0), 1.0), 0.0))
            scores_t = tf.stack(scores)
            order = tf.argsort(scores_t, direction="DESCENDING", stable=True)
            return {
                "detection_boxes": tf.gather(tf.stack(boxes), order)[None],
                "detection_classes": tf.cast(order + 1, tf.float32)[None],
                "detection_scores": tf.gather(scores_t, order)[None],
                "num_detections": tf.constant([3.0]),
            }

    return ColourRegions()


def export(directory: Path) -> Path:
    """Write the SavedModel (``saved_model/``) and its label map; returns the model directory."""
    import tensorflow as tf

    module = _module()
    tf.saved_model.save(module, str(directory / "saved_model"), signatures={"serving_default": module.detect})
    (directory / "label_map.pbtxt").write_text(LABEL_MAP)
    return directory
