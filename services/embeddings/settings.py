"""Settings of the embeddings service (environment prefix LUMEN_EMBEDDINGS_)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import ModelServerSettings, setting


@dataclass
class EmbeddingsSettings(ModelServerSettings):
    port: int = setting(50054, "TCP port of the embeddings service.")
    max_texts: int = setting(256, "Most texts in one Embed call (and one EmbedStream chunk).")
    max_text_chars: int = setting(8192, "Longest text accepted, in characters.")
