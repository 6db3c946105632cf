"""Start-up of a model service: settings, device, repository, server, models.

The order matters: the device is isolated before torch or TensorFlow can be
imported (the service's app module is imported only after), the port is bound
before models load (probes see NOT_SERVING while they do), and health turns
SERVING only once every model is loaded and warm.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lumen.common.v1 import common_pb2, common_pb2_grpc
from shared import device as devices
from shared import offline
from shared.backend_token import server_interceptors
from shared.caches import point_caches
from shared.repository import ModelFactory, ModelRepository
from shared.repository_servicer import ModelRepositoryServicer
from shared.server import Registration, Service, configure_process, create_server, serve_forever
from shared.settings import ModelServerSettings, load

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]


class App(Protocol):
    """What a service's app module provides."""

    FACTORIES: dict[str, ModelFactory]

    def registrations(self, repository: ModelRepository, settings: ModelServerSettings) -> list[Registration]: ...


@dataclass
class ModelService(Service):
    settings: ModelServerSettings
    name: str
    repository: ModelRepository
    registrations: Sequence[Registration] = ()

    async def release(self) -> None:
        """After the drain: free the models, then close what the servicers hold open."""
        await self.repository.close()
        for registration in self.registrations:
            if registration.close is not None:
                await asyncio.to_thread(registration.close)


def repository_root(name: str, settings: ModelServerSettings) -> Path:
    return Path(settings.model_repository) if settings.model_repository else ROOT / "var" / "models" / name


async def start(
    name: str,
    settings: ModelServerSettings,
    factories: dict[str, ModelFactory],
    registrations: Callable[[ModelRepository, ModelServerSettings], Sequence[Registration]],
) -> ModelService:
    """Bind, load every model, then report SERVING. Used by main() and by tests."""
    device = devices.parse(settings.device)
    repository = ModelRepository(repository_root(name, settings), name, device, factories)
    regs = [
        Registration(
            common_pb2_grpc.add_ModelRepositoryServiceServicer_to_server,
            ModelRepositoryServicer(repository),
            common_pb2.DESCRIPTOR.services_by_name["ModelRepositoryService"].full_name,
        ),
        *registrations(repository, settings),
    ]
    server = await create_server(settings, regs, extra_interceptors=server_interceptors(settings.backend_token_file))
    await repository.load_all(settings.models)
    ready = repository.all_ready()
    await server.set_serving(ready)
    if not ready:
        logger.error("some models failed to load; health stays NOT_SERVING (see ListModels)")
    return ModelService(settings, server, name, repository, regs)


def main(name: str, settings_cls: type[ModelServerSettings], app_module: str) -> None:
    """Entry point of a model service process."""
    offline.apply()  # before any model library is imported
    settings = load(settings_cls, f"LUMEN_{name.upper()}")
    configure_process(name, settings)
    devices.isolate(settings.device)  # before the app (and torch/TensorFlow) is imported
    point_caches(settings.cache_dir)  # likewise: libraries read these variables on import
    if settings.torch_threads > 0:
        import torch

        torch.set_num_threads(settings.torch_threads)
    app: App = importlib.import_module(app_module)
    serve_forever(settings, lambda: start(name, settings, app.FACTORIES, app.registrations))
