"""TensorFlow device string for a model's device, falling back to the CPU when this
TensorFlow build sees no GPU (tensorflow-cpu, or a GPU it cannot use)."""

from __future__ import annotations


def tf_device(device: str) -> str:
    import tensorflow as tf

    if device.startswith("cuda") and tf.config.list_physical_devices("GPU"):
        return "/GPU:0"  # the service's one visible GPU (CUDA_VISIBLE_DEVICES is set per process)
    return "/CPU:0"
