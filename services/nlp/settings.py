"""Settings of the nlp service (environment prefix LUMEN_NLP_)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import ModelServerSettings, setting


@dataclass
class NlpSettings(ModelServerSettings):
    port: int = setting(50052, "TCP port of the nlp service.")
