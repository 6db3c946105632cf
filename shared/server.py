"""gRPC server bootstrap shared by the gateway and the model services.

`create_server` binds and starts a grpc.aio server with health, reflection,
the lumen interceptor and SO_REUSEPORT off (a taken port fails loudly), and
returns it with its port, so tests can bind port 0. `run_until_signal` waits
for SIGTERM or SIGINT, then drains: health turns NOT_SERVING, new calls are
refused with UNAVAILABLE (shared.admission), in-flight calls get ``grace_period_s``
to finish (health Watch streams end at once: shared.health), then grpc stops.
`Service` is what a started server process holds, and `serve_forever` the end of
every ``main()``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from shared import log as logs
from shared import metrics, tracing
from shared.admission import Admission
from shared.decoding import ParseInterceptor
from shared.health import HealthServicer
from shared.interceptors import ServerInterceptor
from shared.settings import ServerSettings, load

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registration:
    """A servicer to add: ``add(servicer, server)`` and its full service name.

    ``close``, when given, runs once the server has stopped and drained (e.g. to
    close the database the servicer writes to)."""

    add: Callable[[Any, grpc.aio.Server], None]
    servicer: Any
    service_name: str
    close: Callable[[], None] | None = None


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: HealthServicer
    service_names: tuple[str, ...]
    admission: Admission

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", *self.service_names):
            await self.health.set(name, status)

    async def stop(self, grace_s: float) -> None:
        """Refuse new calls, let in-flight ones finish within ``grace_s``, then stop."""
        await self.health.enter_graceful_shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        await self.admission.drain(grace_s)
        await self.server.stop(max(0.0, deadline - loop.time()))


def channel_options(settings: ServerSettings) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
    ]


def server_credentials(settings: ServerSettings) -> grpc.ServerCredentials | None:
    """TLS credentials when tls_cert_file is set (client certificates required with tls_client_ca_file)."""
    if not settings.tls_cert_file:
        return None
    if not settings.tls_key_file:
        raise ValueError("tls_cert_file is set but tls_key_file is not")
    key, chain = Path(settings.tls_key_file).read_bytes(), Path(settings.tls_cert_file).read_bytes()
    client_ca = Path(settings.tls_client_ca_file).read_bytes() if settings.tls_client_ca_file else None
    return grpc.ssl_server_credentials([(key, chain)], root_certificates=client_ca, require_client_auth=bool(client_ca))


async def create_server(
    settings: ServerSettings,
    registrations: Sequence[Registration],
    extra_interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    generic_handlers: Sequence[grpc.GenericRpcHandler] = (),
    extra_service_names: Sequence[str] = (),
) -> RunningServer:
    """Start a server on settings.host:settings.port; health starts NOT_SERVING."""
    admission = Admission(
        settings.max_concurrent_rpcs, settings.max_request_bytes_in_flight, settings.shed_retry_after_s
    )
    server = grpc.aio.server(
        # ParseInterceptor last (innermost): requests are parsed after the checks that
        # need no payload, and bytes that do not parse answer INVALID_ARGUMENT.
        interceptors=[ServerInterceptor(admission), *extra_interceptors, ParseInterceptor(admission)],
        options=[
            ("grpc.so_reuseport", 0),
            # Let clients (the gateway) keepalive-ping every 10 s or more, so a vanished
            # peer is noticed in seconds instead of gRPC's default 5 minutes.
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            # A fixed per-call window instead of BDP probing, which grew it to most of a 16 MiB
            # body before an unauthenticated call was refused (8 such calls: +17 to +99 MB, +5 fixed).
            ("grpc.http2.bdp_probe", 0),
            ("grpc.http2.lookahead_bytes", settings.stream_window_bytes),
            *channel_options(settings),
        ],
        # No maximum_concurrent_rpcs: grpc's own cap would refuse health checks too, and
        # without RetryInfo; shared.admission sheds instead.
    )
    for registration in registrations:
        registration.add(registration.servicer, server)
    if generic_handlers:
        server.add_generic_rpc_handlers(tuple(generic_handlers))
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = tuple(r.service_name for r in registrations) + tuple(extra_service_names)
    if settings.reflection:
        reflection.enable_server_reflection((*names, reflection.SERVICE_NAME, health.SERVICE_NAME), server)
    address = f"{settings.host}:{settings.port}"
    credentials = server_credentials(settings)
    # Both raise RuntimeError when the port is taken.
    port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    running = RunningServer(server, port, health_servicer, names, admission)
    await running.set_serving(False)
    await server.start()
    log.info("listening on %s:%d%s", settings.host, port, " (TLS)" if credentials else "")
    return running


async def run_until_signal(
    running: RunningServer, grace_s: float, on_stop: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Serve until SIGTERM/SIGINT, then drain and stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    serving = asyncio.create_task(running.server.wait_for_termination())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    log.info("stopping: draining in-flight calls for up to %.1fs", grace_s)
    await running.stop(grace_s)
    if on_stop is not None:
        await on_stop()
    serving.cancel()
    stopping.cancel()
    tracing.disable()  # send the spans still batched
    log.info("stopped")


@dataclass
class Service:
    """A started lumen server and what it holds; subclasses add their parts and free them in ``release``."""

    settings: ServerSettings
    server: RunningServer

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self, grace_s: float | None = None) -> None:
        await self.server.stop(self.settings.grace_period_s if grace_s is None else grace_s)
        await self.release()

    async def release(self) -> None:
        """After the drain: free what the service holds (nothing here)."""


def configure_process(name: str, settings: ServerSettings) -> None:
    """Logging and tracing of a server process, first thing in its ``main()``."""
    logs.configure(name, settings.log_level, settings.log_format)
    tracing.configure(name, settings.otlp_endpoint)


def serve_forever(settings: ServerSettings, start: Callable[[], Awaitable[Service]]) -> None:
    """The end of a server process's ``main()``: metrics, start, serve until a signal, drain, release."""
    metrics.serve_metrics(settings.metrics_port)

    async def serve() -> None:
        service = await start()
        await run_until_signal(service.server, settings.grace_period_s, on_stop=service.release)

    asyncio.run(serve())


S = TypeVar("S", bound=ServerSettings)


def run_process(name: str, settings_cls: type[S], start: Callable[[S], Awaitable[Service]]) -> None:
    """The ``main()`` of a server process: its settings from LUMEN_<NAME>_*, logging and tracing, then serve."""
    settings = load(settings_cls, f"LUMEN_{name.upper()}")
    configure_process(name, settings)
    serve_forever(settings, lambda: start(settings))
