"""An in-process gateway for tests (port 0, backends where nothing listens unless given), and
in-process model services for it to call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc.aio

from gateway import server as gateway_server
from gateway.settings import GatewaySettings
from shared.model_service import ModelService, start
from tools.suite import free_port


def down_address() -> str:
    """An address where nothing listens: connections are refused at once."""
    return f"127.0.0.1:{free_port()}"


@asynccontextmanager
async def running_gateway(**overrides: Any) -> AsyncIterator[gateway_server.Gateway]:
    """A gateway in this process; backends default to addresses where nothing listens."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "nlp_address": down_address(),
        "vision_address": down_address(),
        "embeddings_address": down_address(),
        "tabular_address": down_address(),
        "training_address": down_address(),
        "default_timeout_s": 10.0,
        **overrides,
    }
    gateway = await gateway_server.start(GatewaySettings(**values))
    try:
        yield gateway
    finally:
        await gateway.stop(0)


@asynccontextmanager
async def gateway_channel(**overrides: Any) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to `running_gateway(**overrides)`."""
    async with (
        running_gateway(**overrides) as gateway,
        grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel,
    ):
        yield channel


async def start_model_services(
    root: Path, prepare: dict[str, Callable[[Path], object]], models: dict[str, list[str]] | None = None
) -> dict[str, ModelService]:
    """The model services named in ``prepare`` (embeddings, nlp, vision) in this process on port 0, each
    over a repository under ``root`` that ``prepare[name]`` writes (the service's own set-up code),
    loading ``models[name]`` (default: every model there)."""
    from services.embeddings import app as embeddings_app
    from services.embeddings.settings import EmbeddingsSettings
    from services.nlp import app as nlp_app
    from services.nlp.settings import NlpSettings
    from services.vision import app as vision_app
    from services.vision.settings import VisionSettings

    kinds: dict[str, tuple[Any, Any, dict[str, str]]] = {
        "embeddings": (embeddings_app, EmbeddingsSettings, {"collections_dir": str(root / "collections")}),
        "nlp": (nlp_app, NlpSettings, {}),
        "vision": (vision_app, VisionSettings, {"galleries_dir": str(root / "galleries")}),
    }
    started: dict[str, ModelService] = {}
    for name, write in prepare.items():
        (root / name).mkdir()
        write(root / name)
        app, settings_cls, extra = kinds[name]
        settings = settings_cls(
            host="127.0.0.1", port=0, model_repository=str(root / name), models=(models or {}).get(name, []), **extra
        )
        started[name] = await start(name, settings, app.FACTORIES, app.registrations)
    return started
