"""TLS from clients to the gateway and mTLS from the gateway to a backend, with certificates made
here by the openssl CLI (tests.certs). The backend is a real lumen server (shared.server) serving an empty
model repository: enough for ListModels and health to cross the mTLS hop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lumen.common.v1 import common_pb2, common_pb2_grpc
from lumen.gateway.v1 import gateway_pb2 as pb
from lumen.gateway.v1 import gateway_pb2_grpc as pb_grpc
from shared.device import parse
from shared.repository import ModelRepository
from shared.repository_servicer import ModelRepositoryServicer
from shared.server import Registration, RunningServer, create_server
from shared.settings import ServerSettings
from tests.certs import CLIENT, SERVER, make_certs, needs_openssl
from tests.gateway.conftest import running_gateway

pytestmark = needs_openssl
OK = 0


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certs(tmp_path_factory.mktemp("certs"), {"server": SERVER, "gateway-client": CLIENT})


@pytest.fixture(scope="module")
async def backend(certs: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    """A backend that accepts only clients with a certificate signed by the test CA."""
    settings = ServerSettings(
        host="127.0.0.1",
        port=0,
        tls_cert_file=str(certs / "server.pem"),
        tls_key_file=str(certs / "server.key"),
        tls_client_ca_file=str(certs / "ca.pem"),
    )
    repository = ModelRepository(tmp_path_factory.mktemp("empty-repo"), "embeddings", parse("cpu"), {})
    service = common_pb2.DESCRIPTOR.services_by_name["ModelRepositoryService"].full_name
    running = await create_server(
        settings,
        [
            Registration(
                common_pb2_grpc.add_ModelRepositoryServiceServicer_to_server,
                ModelRepositoryServicer(repository),
                service,
            )
        ],
    )
    await running.set_serving(True)
    yield running
    await running.stop(0)


def gateway_settings(certs: Path, backend: RunningServer, client_cert: bool) -> dict:
    mine = {
        "backend_tls_cert_file": str(certs / "gateway-client.pem"),
        "backend_tls_key_file": str(certs / "gateway-client.key"),
    }
    return {
        "embeddings_address": f"127.0.0.1:{backend.port}",
        "tls_cert_file": str(certs / "server.pem"),
        "tls_key_file": str(certs / "server.key"),
        "backend_tls_ca_file": str(certs / "ca.pem"),
        "backend_tls_server_name": "lumen-backend",
        **(mine if client_cert else {}),
    }


def tls_channel(certs: Path, port: int) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(root_certificates=(certs / "ca.pem").read_bytes())
    return grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials)


async def embeddings_status(channel: grpc.aio.Channel) -> int:
    reply = await pb_grpc.GatewayServiceStub(channel).ListModels(pb.ListModelsRequest(service="embeddings"), timeout=10)
    return reply.backends[0].status.code


async def test_tls_clients_and_mtls_backends(certs: Path, backend: RunningServer) -> None:
    async with running_gateway(**gateway_settings(certs, backend, client_cert=True)) as gateway:
        async with tls_channel(certs, gateway.port) as channel:
            assert await embeddings_status(channel) == OK
            # The backend's health reaches the gateway over mTLS too.
            health = health_pb2_grpc.HealthStub(channel)
            for _ in range(100):
                reply = await health.Check(health_pb2.HealthCheckRequest(service="backend.embeddings"))
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    break
                await asyncio.sleep(0.1)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as plain:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await embeddings_status(plain)
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_backend_refuses_a_gateway_without_client_certificate(certs: Path, backend: RunningServer) -> None:
    async with (
        running_gateway(**gateway_settings(certs, backend, client_cert=False)) as gateway,
        tls_channel(certs, gateway.port) as channel,
    ):
        assert await embeddings_status(channel) == grpc.StatusCode.UNAVAILABLE.value[0]
