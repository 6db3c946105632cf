"""Undecodable request bytes answer INVALID_ARGUMENT on all four call kinds, health and reflection included."""

from __future__ import annotations

from pathlib import Path

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1.health_pb2 import HealthCheckRequest as Msg
from grpc_status import rpc_status

from lumen.common.v1 import common_pb2_grpc
from shared.device import parse
from shared.repository import ModelRepository
from shared.repository_servicer import ModelRepositoryServicer
from shared.server import Registration, create_server
from shared.settings import ServerSettings

# A field-1 string holding bytes that are not UTF-8, and bytes that are no protobuf at all.
BAD_UTF8 = b"\x0a\x02\xff\xfe"
GARBAGE = b"\xff\xff\xff\xff\xff\xff"


def _echo_handler() -> grpc.GenericRpcHandler:
    """Test-only methods of the two client-streaming kinds (a message with one string field)."""

    async def count(requests, context) -> Msg:
        n = 0
        async for request in requests:
            assert isinstance(request, Msg)
            n += 1
        return Msg(service=str(n))

    async def echo(requests, context):
        async for request in requests:
            yield Msg(service=request.service)

    kwargs = {
        "request_deserializer": Msg.FromString,
        "response_serializer": Msg.SerializeToString,
    }
    return grpc.method_handlers_generic_handler(
        "test.Echo",
        {
            "Count": grpc.stream_unary_rpc_method_handler(count, **kwargs),
            "Echo": grpc.stream_stream_rpc_method_handler(echo, **kwargs),
        },
    )


@pytest.fixture
async def channel(tmp_path: Path):
    repository = ModelRepository(tmp_path, "test", parse("cpu"), {})
    running = await create_server(
        ServerSettings(host="127.0.0.1", port=0),
        [
            Registration(
                common_pb2_grpc.add_ModelRepositoryServiceServicer_to_server,
                ModelRepositoryServicer(repository),
                "lumen.common.v1.ModelRepositoryService",
            )
        ],
        generic_handlers=[_echo_handler()],
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        yield ch
    await running.stop(0)


def _assert_invalid(exc: grpc.aio.AioRpcError, field: str) -> None:
    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc
    status = rpc_status.from_call(exc)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert bad.field_violations[0].field == field


@pytest.mark.parametrize("payload", [BAD_UTF8, GARBAGE])
@pytest.mark.parametrize(
    "method", ["/lumen.common.v1.ModelRepositoryService/ListModels", "/grpc.health.v1.Health/Check"]
)
async def test_unary_undecodable_is_invalid_argument(channel, method: str, payload: bytes) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.unary_unary(method)(payload, timeout=10)
    _assert_invalid(caught.value, "request")


async def test_server_stream_undecodable_is_invalid_argument(channel) -> None:
    call = channel.unary_stream("/grpc.health.v1.Health/Watch")(GARBAGE, timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    _assert_invalid(caught.value, "request")


async def test_client_stream_bad_chunk_names_its_index(channel) -> None:
    good = Msg(service="a").SerializeToString()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.stream_unary("/test.Echo/Count")(iter([good, good, BAD_UTF8]), timeout=10)
    _assert_invalid(caught.value, "request[2]")
    reply = await channel.stream_unary("/test.Echo/Count")(iter([good, good]), timeout=10)
    assert Msg.FromString(reply).service == "2"


async def test_bidi_stream_bad_chunk_after_good_ones(channel) -> None:
    good = Msg(service="a").SerializeToString()
    call = channel.stream_stream("/test.Echo/Echo")(iter([good, GARBAGE]), timeout=10)
    replies = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for reply in call:
            replies.append(Msg.FromString(reply).service)
    assert replies == ["a"]
    _assert_invalid(caught.value, "request[1]")


async def test_reflection_undecodable_is_invalid_argument(channel) -> None:
    call = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")(
        iter([GARBAGE]), timeout=10
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    _assert_invalid(caught.value, "request[0]")
