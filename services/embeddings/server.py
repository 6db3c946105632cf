"""Entry point: python -m services.embeddings.server (settings: LUMEN_EMBEDDINGS_*)."""

from services.embeddings.settings import EmbeddingsSettings
from shared.model_service import main

if __name__ == "__main__":
    main("embeddings", EmbeddingsSettings, "services.embeddings.app")
