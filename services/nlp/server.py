"""Entry point: python -m services.nlp.server (settings: LUMEN_NLP_*)."""

from services.nlp.settings import NlpSettings
from shared.model_service import main

if __name__ == "__main__":
    main("nlp", NlpSettings, "services.nlp.app")
