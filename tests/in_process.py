"""An in-process gateway for tests: port 0, backends where nothing listens unless given."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc.aio

from gateway import server as gateway_server
from gateway.settings import GatewaySettings
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
