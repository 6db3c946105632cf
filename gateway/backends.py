"""Channels to the model services, and their health as the gateway sees it.

Each backend gets one grpc.aio channel with a service config: round_robin over
every address DNS returns (headless Services give one per pod) and retries with
backoff on UNAVAILABLE for idempotent methods. A backend that is down fails
calls at once with UNAVAILABLE (no wait_for_ready) and is used again as soon as
it answers: the channel reconnects on its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared.log import request_id

log = logging.getLogger(__name__)

# Metadata a client sends that the gateway passes on to backends.
FORWARDED_METADATA = ("x-request-id",)


def service_config(retry_services: Sequence[str], attempts: int) -> str:
    config: dict = {"loadBalancingConfig": [{"round_robin": {}}]}
    if attempts > 1 and retry_services:
        config["methodConfig"] = [
            {
                "name": [{"service": s} for s in retry_services],
                "retryPolicy": {
                    "maxAttempts": attempts,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    return json.dumps(config)


@dataclass
class Backend:
    name: str  # "embeddings"
    address: str
    services: tuple[str, ...]  # full names of the services it serves through the gateway
    retry_services: tuple[str, ...]
    channel: grpc.aio.Channel = field(init=False)
    serving: bool = field(default=False, init=False)

    def open(self, max_message_bytes: int, attempts: int) -> None:
        self.channel = grpc.aio.insecure_channel(
            self.address,
            options=[
                ("grpc.service_config", service_config(self.retry_services, attempts)),
                ("grpc.enable_retries", 1),
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                # Notice a dead backend quickly and come back fast when it returns.
                ("grpc.keepalive_time_ms", 20_000),
                ("grpc.initial_reconnect_backoff_ms", 200),
                ("grpc.max_reconnect_backoff_ms", 2_000),
            ],
        )

    async def close(self) -> None:
        await self.channel.close()


def outgoing_metadata(context: grpc.aio.ServicerContext) -> tuple[tuple[str, str], ...]:
    """Metadata for a backend call: the request id and the client's forwardable keys."""
    out = [("x-request-id", request_id.get())]
    for key, value in context.invocation_metadata() or ():
        if key in FORWARDED_METADATA and key != "x-request-id":
            out.append((key, value))
    return tuple(out)


async def watch_health(backend: Backend, on_change) -> None:
    """Follow the backend's grpc.health.v1 Watch stream, reconnecting forever."""
    stub = health_pb2_grpc.HealthStub(backend.channel)
    while True:
        serving = False
        try:
            async for response in stub.Watch(health_pb2.HealthCheckRequest(service=""), wait_for_ready=True):
                serving = response.status == health_pb2.HealthCheckResponse.SERVING
                await on_change(backend, serving)
        except asyncio.CancelledError:
            raise
        except grpc.aio.AioRpcError as exc:
            log.info("backend %s health stream ended: %s", backend.name, exc.code().name)
        if serving or backend.serving:
            await on_change(backend, False)
        await asyncio.sleep(0.5)
