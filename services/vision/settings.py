"""Settings of the vision service (environment prefix LUMEN_VISION_)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import ModelServerSettings, setting


@dataclass
class VisionSettings(ModelServerSettings):
    port: int = setting(50053, "TCP port of the vision service.")
