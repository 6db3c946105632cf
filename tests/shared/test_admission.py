"""Admission on a real grpc.aio server: calls past the cap, or past the request-byte budget,
are shed with RESOURCE_EXHAUSTED and RetryInfo; health still answers; slots come back."""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health_pb2 import HealthCheckRequest as Msg
from grpc_status import rpc_status

from shared.server import create_server
from shared.settings import ServerSettings


def _slow_handler(release: asyncio.Event) -> grpc.GenericRpcHandler:
    async def wait(request: Msg, context) -> Msg:
        await release.wait()
        return Msg(service=str(len(request.service)))

    kwargs = {"request_deserializer": Msg.FromString, "response_serializer": Msg.SerializeToString}
    return grpc.method_handlers_generic_handler(
        "test.Slow", {"Wait": grpc.unary_unary_rpc_method_handler(wait, **kwargs)}
    )


def _retry_delay_s(exc: grpc.aio.AioRpcError) -> float | None:
    for detail in rpc_status.from_call(exc).details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.ToNanoseconds() / 1e9
    return None


@pytest.mark.parametrize(
    ("settings", "payload"),
    [({"max_concurrent_rpcs": 1}, "x"), ({"max_concurrent_rpcs": 0, "max_request_bytes_in_flight": 1500}, "x" * 1000)],
    ids=["calls", "bytes"],
)
async def test_shed_with_retry_info_while_health_answers(settings: dict, payload: str) -> None:
    release = asyncio.Event()
    running = await create_server(
        ServerSettings(host="127.0.0.1", port=0, shed_retry_after_s=0.25, **settings),
        [],
        generic_handlers=[_slow_handler(release)],
    )
    await running.set_serving(True)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            wait = channel.unary_unary("/test.Slow/Wait", Msg.SerializeToString, Msg.FromString)
            first = asyncio.ensure_future(wait(Msg(service=payload), timeout=10))
            await asyncio.sleep(0.3)  # the first call holds the slot (or the bytes)
            with pytest.raises(grpc.aio.AioRpcError) as shed:
                await wait(Msg(service=payload), timeout=10)
            assert shed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert _retry_delay_s(shed.value) == 0.25
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            release.set()
            assert (await first).service == str(len(payload))
            assert (await wait(Msg(service=payload), timeout=10)).service == str(len(payload))  # slot came back
    finally:
        await running.stop(0)


async def test_draining_refuses_new_calls_with_unavailable_while_admitted_ones_finish() -> None:
    release = asyncio.Event()
    running = await create_server(
        ServerSettings(host="127.0.0.1", port=0), [], generic_handlers=[_slow_handler(release)]
    )
    await running.set_serving(True)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        wait = channel.unary_unary("/test.Slow/Wait", Msg.SerializeToString, Msg.FromString)
        first = asyncio.ensure_future(wait(Msg(service="in flight"), timeout=30))
        while running.admission.calls == 0:  # noqa: ASYNC110 (the call reaches the server in its own time)
            await asyncio.sleep(0.01)
        stopping = asyncio.ensure_future(running.stop(30))
        await asyncio.sleep(0.2)
        # Every new call is refused with a status clients retry (another replica), never CANCELLED.
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await wait(Msg(service="late"), timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "shutting down" in (refused.value.details() or "")
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert not stopping.done()  # still draining: the first call holds it
        release.set()
        assert (await first).service == str(len("in flight"))
        await asyncio.wait_for(stopping, 10)  # stops as soon as the last call is done, not at the grace's end
