"""Prints every setting of every component: `make settings`."""

from __future__ import annotations

import importlib

from shared.settings import describe

COMPONENTS = {
    "LUMEN_GATEWAY": "gateway.settings:GatewaySettings",
    "LUMEN_NLP": "services.nlp.settings:NlpSettings",
    "LUMEN_VISION": "services.vision.settings:VisionSettings",
    "LUMEN_EMBEDDINGS": "services.embeddings.settings:EmbeddingsSettings",
}


def main() -> None:
    for prefix, target in COMPONENTS.items():
        module, _, name = target.partition(":")
        print(f"# {prefix}_*\n{describe(getattr(importlib.import_module(module), name), prefix)}\n")


if __name__ == "__main__":
    main()
