"""Channels to the model services, and their health as the gateway sees it.

Each backend gets one grpc.aio channel with a service config: round_robin over
every address DNS returns (headless Services give one per pod) and retries with
backoff on UNAVAILABLE for idempotent methods. A backend that is down fails
calls at once with UNAVAILABLE (no wait_for_ready) and is used again as soon as
it answers: the channel reconnects on its own. With backend_tls_* settings the
channels use TLS, and mTLS when the gateway has a client certificate.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.auth import KEY_DATASET_BYTES_METADATA, KEY_ID_METADATA, KEY_TRAINING_JOBS_METADATA, current_key
from shared import tracing
from shared.grpc_types import Context
from shared.log import request_id

log = logging.getLogger(__name__)

# What a client sends that backends are meant to see too when the gateway does not trace: its W3C
# trace context. When it traces, backends get the gateway's own span instead (a child of the client's).
# (x-request-id is always sent: the one the gateway's interceptor took or made.)
FORWARDED_METADATA = tracing.TRACE_KEYS


def service_config(retry_services: Sequence[str], attempts: int) -> str:
    config: dict[str, Any] = {"loadBalancingConfig": [{"round_robin": {}}]}
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


@dataclass(frozen=True)
class BackendTls:
    """TLS to the backends: the CA that signs their certificates, and the gateway's own for mTLS."""

    ca_file: str
    cert_file: str = ""
    key_file: str = ""
    server_name: str = ""

    def credentials(self) -> grpc.ChannelCredentials:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("backend_tls_cert_file and backend_tls_key_file go together")
        return grpc.ssl_channel_credentials(
            root_certificates=Path(self.ca_file).read_bytes(),
            private_key=Path(self.key_file).read_bytes() if self.key_file else None,
            certificate_chain=Path(self.cert_file).read_bytes() if self.cert_file else None,
        )


@dataclass
class Backend:
    name: str  # "embeddings"
    address: str
    services: tuple[str, ...]  # full names of the services it serves through the gateway
    retry_services: tuple[str, ...]
    serves_models: bool = True  # has a ModelRepositoryService (the training service has none)
    channel: grpc.aio.Channel = field(init=False)
    serving: bool = field(default=False, init=False)

    def open(
        self,
        max_message_bytes: int,
        attempts: int,
        tls: BackendTls | None = None,
        keepalive_s: int = 20,
        interceptors: Sequence[Any] = (),
    ) -> None:
        options: list[tuple[str, Any]] = [
            ("grpc.service_config", service_config(self.retry_services, attempts)),
            ("grpc.enable_retries", 1),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            # A restarted backend container comes back at a new address under the same name: re-resolve
            # within a second of a failed connection instead of gRPC's default 30 s.
            ("grpc.dns_min_time_between_resolutions_ms", 1000),
            # Notice a silently vanished backend (node lost, network cut; a crashed process resets
            # its connections and is noticed at once). The interval must not be shorter than the
            # backends' minimum ping interval (lumen servers allow 10 s, shared/server.py; stock
            # gRPC servers 5 minutes): a backend pinged more often answers GOAWAY too_many_pings
            # and drops every call on that connection.
            ("grpc.keepalive_time_ms", keepalive_s * 1000),
            ("grpc.keepalive_timeout_ms", 20_000),
            # Come back fast when a backend returns.
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2_000),
        ]
        if tls is None:
            self.channel = grpc.aio.insecure_channel(self.address, options=options, interceptors=interceptors)
            return
        if tls.server_name:
            options.append(("grpc.ssl_target_name_override", tls.server_name))
        self.channel = grpc.aio.secure_channel(
            self.address, tls.credentials(), options=options, interceptors=interceptors
        )

    async def close(self) -> None:
        await self.channel.close()


def outgoing_metadata(context: Context) -> tuple[tuple[str, str], ...]:
    """Metadata for a backend call: the request id and the client's forwardable keys."""
    out = [("x-request-id", request_id.get())]
    key = current_key()
    if key is not None:  # who is calling, for backends that keep per-caller records (training jobs)
        out += [
            (KEY_ID_METADATA, key.id),
            (KEY_TRAINING_JOBS_METADATA, str(key.training_jobs)),
            (KEY_DATASET_BYTES_METADATA, str(key.dataset_bytes)),
        ]
    if tracing.enabled():
        tracing.inject(out)
        return tuple(out)
    for name, value in context.invocation_metadata() or ():
        if name in FORWARDED_METADATA and isinstance(value, str):  # trace keys: never -bin, so str
            out.append((name, value))
    return tuple(out)


async def watch_health(backend: Backend, on_change: Callable[[Backend, bool], Awaitable[None]]) -> None:
    """Follow the backend's grpc.health.v1 Watch stream, reconnecting forever."""
    stub = health_pb2_grpc.HealthStub(backend.channel)
    while True:
        serving = False
        try:
            request = health_pb2.HealthCheckRequest(service="")
            watch = stub.Watch(request, wait_for_ready=True)  # type: ignore[attr-defined]  # its stub lacks Watch
            async for response in watch:
                serving = response.status == health_pb2.HealthCheckResponse.SERVING
                await on_change(backend, serving)
        except asyncio.CancelledError:
            raise
        except grpc.aio.AioRpcError as exc:
            log.info("backend %s health stream ended: %s", backend.name, exc.code().name)
        if serving or backend.serving:
            await on_change(backend, False)
        await asyncio.sleep(0.5)
