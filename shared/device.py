"""One device per service process.

`isolate` must run before torch or TensorFlow is imported: it hides every GPU
but the configured one (CUDA_VISIBLE_DEVICES), so frameworks that grab all
visible GPUs cannot touch a neighbour's. Inside the process that GPU is then
``cuda:0``; model info reports the configured, physical name.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass

log = logging.getLogger(__name__)

_CUDA = re.compile(r"^cuda:(\d+)$")


@dataclass(frozen=True)
class Device:
    configured: str  # what the settings say and what model info reports: "cpu" or "cuda:N"
    local: str  # what frameworks in this process use: "cpu" or "cuda:0"

    @property
    def is_gpu(self) -> bool:
        return self.local != "cpu"


def parse(device: str) -> Device:
    device = device.strip().lower()
    if device == "cpu":
        return Device("cpu", "cpu")
    if _CUDA.match(device):
        return Device(device, "cuda:0")
    raise ValueError(f"device must be 'cpu' or 'cuda:N', not {device!r}")


def isolate(device: str) -> Device:
    """Make only ``device`` visible to CUDA frameworks in this process."""
    parsed = parse(device)
    for framework in ("torch", "tensorflow"):
        if framework in sys.modules:
            log.warning("%s was imported before the device was isolated; it may see every GPU", framework)
    match = _CUDA.match(parsed.configured)
    os.environ["CUDA_VISIBLE_DEVICES"] = match.group(1) if match else ""
    # TensorFlow must not reserve the whole GPU up front; it shares it with torch.
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    return parsed
