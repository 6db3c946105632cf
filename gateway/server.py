"""The gateway process: one address for every lumen service.

Entry point: python -m gateway.server (settings: LUMEN_GATEWAY_*).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from grpc_health.v1 import health_pb2

from gateway.auth import Guard, KeyInterceptor
from gateway.backends import Backend, BackendTls, watch_health
from gateway.forwarding import forwarding_handler
from gateway.key_store import KeyStore
from gateway.meter import open_meter
from gateway.servicer import GatewayServicer
from gateway.settings import GatewaySettings
from gateway.usage_meter import usage_fields
from lumen.embeddings.v1 import embeddings_pb2
from lumen.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from lumen.nlp.v1 import nlp_pb2
from lumen.tabular.v1 import tabular_pb2
from lumen.training.v1 import training_pb2
from lumen.vision.v1 import vision_pb2
from shared.backend_token import client_interceptors
from shared.server import Registration, Service, create_server, run_process

logger = logging.getLogger(__name__)

# Services retried on UNAVAILABLE: reads and idempotent computations only.
# Generation (costly, seeded or not) and mutations (collections, galleries) are not.
IDEMPOTENT_SERVICES = {
    "nlp": ("lumen.nlp.v1.TextAnalysisService", "lumen.nlp.v1.TokenizerService"),
    "vision": ("lumen.vision.v1.ImageAnalysisService",),
    "embeddings": ("lumen.embeddings.v1.EmbeddingService", "lumen.embeddings.v1.WordEmbeddingService"),
    "tabular": ("lumen.tabular.v1.TabularService",),
    "training": (),  # creating a job twice is not idempotent (request_id makes it so, by the caller's choice)
}
BACKEND_FILES = {
    "nlp": nlp_pb2,
    "vision": vision_pb2,
    "embeddings": embeddings_pb2,
    "tabular": tabular_pb2,
    "training": training_pb2,
}
# Backends without a model repository (left out of GatewayService.ListModels).
MODELLESS = frozenset({"training"})
GATEWAY_SERVICE = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name


@dataclass
class Gateway(Service):
    settings: GatewaySettings
    backends: dict[str, Backend]
    watchers: list[asyncio.Task[None]]
    guard: Guard

    async def release(self) -> None:
        """After the drain: stop watching, close the backend channels and the meter."""
        for task in self.watchers:
            task.cancel()
        await asyncio.gather(*self.watchers, return_exceptions=True)
        for backend in self.backends.values():
            await backend.close()
        await self.guard.meter.close()


def backend_tls(settings: GatewaySettings) -> BackendTls | None:
    if not settings.backend_tls_ca_file:
        return None
    return BackendTls(
        settings.backend_tls_ca_file,
        settings.backend_tls_cert_file,
        settings.backend_tls_key_file,
        settings.backend_tls_server_name,
    )


def make_backends(settings: GatewaySettings) -> dict[str, Backend]:
    addresses = {name: getattr(settings, f"{name}_address") for name in BACKEND_FILES}
    tls = backend_tls(settings)
    interceptors = client_interceptors(settings.backend_token_file)
    backends = {}
    for name, module in BACKEND_FILES.items():
        services = tuple(s.full_name for s in module.DESCRIPTOR.services_by_name.values())
        backend = Backend(name, addresses[name], services, IDEMPOTENT_SERVICES[name], name not in MODELLESS)
        backend.open(
            settings.max_message_bytes, settings.retry_attempts, tls, settings.backend_keepalive_s, interceptors
        )
        backends[name] = backend
    return backends


def admin_methods(settings: GatewaySettings) -> list[str]:
    """Full method paths of settings.admin_methods ("Service/Method", package optional), checked to exist."""
    known = {
        f"/{service.full_name}/{method.name}": f"{service.name}/{method.name}"
        for module in BACKEND_FILES.values()
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    out = []
    for name in settings.admin_methods:
        paths = [path for path, short in known.items() if name in (short, path[1:])]
        if not paths:
            raise ValueError(f"LUMEN_GATEWAY_ADMIN_METHODS: no forwarded method {name!r}")
        out.extend(paths)
    return out


def make_guard(settings: GatewaySettings, backends: dict[str, Backend]) -> Guard:
    """Key checks: the permission each service needs, and the key store (None: keys off)."""
    routes = {service: backend.name for backend in backends.values() for service in backend.services}
    routes[GATEWAY_SERVICE] = "gateway"
    store = KeyStore(Path(settings.keys_file), settings.keys_reload_s) if settings.keys_file else None
    if store is None:
        logger.warning("API keys are off (LUMEN_GATEWAY_KEYS_FILE is empty): every call is accepted")
    return Guard(store, routes, open_meter(settings.redis_url), admin_methods(settings))


async def start(settings: GatewaySettings) -> Gateway:
    backends = make_backends(settings)
    guard = make_guard(settings, backends)
    handlers = [
        forwarding_handler(backend, service, settings.default_timeout_s)
        for backend in backends.values()
        for service in BACKEND_FILES[backend.name].DESCRIPTOR.services_by_name.values()
    ]
    servicer = GatewayServicer(backends, settings.default_timeout_s, guard, settings.deadline_margin_ms / 1000)
    server = await create_server(
        settings,
        [Registration(gateway_pb2_grpc.add_GatewayServiceServicer_to_server, servicer, GATEWAY_SERVICE)],
        extra_interceptors=[KeyInterceptor(guard, usage_fields(m.DESCRIPTOR for m in BACKEND_FILES.values()))],
        generic_handlers=handlers,
        extra_service_names=[s for b in backends.values() for s in b.services],
    )
    # The gateway itself serves as soon as it listens (composite calls give
    # partial results); each forwarded service's health follows its backend's.
    serving = health_pb2.HealthCheckResponse.SERVING
    await server.health.set("", serving)
    await server.health.set(GATEWAY_SERVICE, serving)

    async def on_change(backend: Backend, is_serving: bool) -> None:
        if backend.serving != is_serving:
            logger.info("backend %s is %s", backend.name, "SERVING" if is_serving else "NOT_SERVING")
        backend.serving = is_serving
        status = serving if is_serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in (f"backend.{backend.name}", *backend.services):
            await server.health.set(service, status)

    for backend in backends.values():
        await on_change(backend, False)
    watchers = [asyncio.create_task(watch_health(b, on_change)) for b in backends.values()]
    return Gateway(settings, server, backends, watchers, guard)


def main() -> None:
    run_process("gateway", GatewaySettings, start)


if __name__ == "__main__":
    main()
