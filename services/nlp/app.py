"""What the nlp service serves. For now: its model repository only
(lumen.common.v1.ModelRepositoryService); the nlp RPCs come with their issue."""

from __future__ import annotations

from shared.repository import ModelFactory, ModelRepository
from shared.server import Registration
from shared.settings import ModelServerSettings

FACTORIES: dict[str, ModelFactory] = {}


def registrations(repository: ModelRepository, settings: ModelServerSettings) -> list[Registration]:
    return []
