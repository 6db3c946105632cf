"""Server bootstrap: real grpc.aio servers on port 0 with the shared interceptor."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from lumen.common.v1 import common_pb2, common_pb2_grpc
from shared.device import parse
from shared.errors import InvalidArgument
from shared.repository import ModelRepository
from shared.repository_servicer import ModelRepositoryServicer
from shared.server import Registration, create_server
from shared.settings import ServerSettings

REPO_SERVICE = "lumen.common.v1.ModelRepositoryService"


def _boom_handler() -> grpc.GenericRpcHandler:
    """A test-only service whose methods fail: one unexpectedly, one with a typed error."""

    async def crash(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise RuntimeError("secret internal detail")

    async def refuse(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise InvalidArgument("texts[0]", "must not be empty")

    return grpc.method_handlers_generic_handler(
        "test.Boom",
        {
            "Crash": grpc.unary_unary_rpc_method_handler(crash),
            "Refuse": grpc.unary_unary_rpc_method_handler(refuse),
        },
    )


@pytest.fixture
async def server(tmp_path: Path):
    repository = ModelRepository(tmp_path, "test", parse("cpu"), {})
    settings = ServerSettings(host="127.0.0.1", port=0)
    running = await create_server(
        settings,
        [
            Registration(
                common_pb2_grpc.add_ModelRepositoryServiceServicer_to_server,
                ModelRepositoryServicer(repository),
                REPO_SERVICE,
            )
        ],
        generic_handlers=[_boom_handler()],
    )
    yield running
    await running.stop(0)


async def test_health_starts_not_serving_then_serving(server) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", REPO_SERVICE):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
            assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
        await server.set_serving(True)
        for name in ("", REPO_SERVICE):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_stopping_ends_health_watch_streams_instead_of_waiting_out_the_grace(server) -> None:
    """A watcher (the gateway keeps one per backend) sees NOT_SERVING, then its stream ends OK:
    a drain with an hour's grace returns at once, for no real call is in flight."""
    await server.set_serving(True)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=REPO_SERVICE))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        await asyncio.wait_for(server.stop(3600), timeout=60)
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert await watch.read() is grpc.aio.EOF
        assert await watch.code() is grpc.StatusCode.OK


async def test_health_check_of_an_unknown_service_is_not_found(server) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="nope"))
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND


async def test_reflection_lists_services(server) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name async for reply in call for s in reply.list_services_response.service}
    assert {REPO_SERVICE, "grpc.health.v1.Health"} <= names


async def test_taken_port_fails_loudly(server) -> None:
    with pytest.raises(RuntimeError, match="Failed to bind"):
        await create_server(ServerSettings(host="127.0.0.1", port=server.port), [])


async def test_request_id_is_echoed_and_errors_are_mapped(server) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = common_pb2_grpc.ModelRepositoryServiceStub(channel)
        call = stub.ListModels(common_pb2.ListModelsRequest(), metadata=(("x-request-id", "abc-123"),))
        await call
        assert ("x-request-id", "abc-123") in list(await call.trailing_metadata())

        # Unknown model: NOT_FOUND naming it.
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetModel(common_pb2.GetModelRequest(model=common_pb2.ModelRef(name="nope")))
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND
        assert "nope" in missing.value.details()

        # A typed error keeps its code and google.rpc details.
        refuse = channel.unary_unary("/test.Boom/Refuse")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await refuse(b"")
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        status = rpc_status.from_call(_SyncView(refused.value))
        bad = error_details_pb2.BadRequest()
        status.details[0].Unpack(bad)
        assert bad.field_violations[0].field == "texts[0]"

        # An unexpected exception is INTERNAL with a generic message, and the server goes on.
        crash = channel.unary_unary("/test.Boom/Crash")
        with pytest.raises(grpc.aio.AioRpcError) as crashed:
            await crash(b"", metadata=(("x-request-id", "r-9"),))
        assert crashed.value.code() is grpc.StatusCode.INTERNAL
        assert "secret" not in crashed.value.details() and "r-9" in crashed.value.details()
        await stub.ListModels(common_pb2.ListModelsRequest())


class _SyncView:
    """Lets grpc_status.rpc_status.from_call read an aio error."""

    def __init__(self, error: grpc.aio.AioRpcError) -> None:
        self._error = error

    def code(self) -> grpc.StatusCode:
        return self._error.code()

    def details(self) -> str | None:
        return self._error.details()

    def trailing_metadata(self):
        return tuple(self._error.trailing_metadata())
