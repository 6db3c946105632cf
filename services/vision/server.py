"""Entry point: python -m services.vision.server (settings: LUMEN_VISION_*)."""

from services.vision.settings import VisionSettings
from shared.model_service import main

if __name__ == "__main__":
    main("vision", VisionSettings, "services.vision.app")
