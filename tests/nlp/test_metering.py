"""Metering through the gateway with keys on (real nlp server with its LLM, gateway on port 0):
a cancelled stream is billed what it computed, and a tokens quota ends a long stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest

from lumen.gateway.v1 import gateway_pb2 as gw
from lumen.gateway.v1 import gateway_pb2_grpc as gw_grpc
from lumen.nlp.v1 import nlp_pb2 as pb
from lumen.nlp.v1 import nlp_pb2_grpc as pb_grpc
from shared.model_service import ModelService
from tests.gateway.conftest import add_key
from tests.in_process import gateway_channel as in_process_gateway

pytestmark = pytest.mark.slow

STREAM = "/lumen.nlp.v1.TextGenerationService/GenerateStream"
PROMPT = "Count from one to a thousand: one, two,"
LONG = pb.GenerationParams(max_new_tokens=300, temperature=0.0)


class Keys:
    def __init__(self, path: Path) -> None:
        self.metered = add_key(path, "metered")
        self.small = add_key(path, "small-quota", tokens_per_period=40)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Keys]:
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    return path, Keys(path)


@pytest.fixture(scope="module")
async def channel(nlp_service: ModelService, keys: tuple[Path, Keys]) -> AsyncIterator[grpc.aio.Channel]:
    async with in_process_gateway(nlp_address=f"127.0.0.1:{nlp_service.port}", keys_file=str(keys[0])) as ch:
        yield ch


def key(secret: str) -> tuple[tuple[str, str], ...]:
    return (("x-api-key", secret),)


async def method_usage(channel: grpc.aio.Channel, secret: str) -> gw.MethodUsage:
    report = await gw_grpc.GatewayServiceStub(channel).GetUsage(gw.GetUsageRequest(), metadata=key(secret), timeout=10)
    found = [m for m in report.methods if m.method == STREAM]
    return found[0] if found else gw.MethodUsage()


async def test_a_cancelled_stream_is_billed_what_it_computed(channel, keys) -> None:
    secret = keys[1].metered
    call = pb_grpc.TextGenerationServiceStub(channel).GenerateStream(
        pb.GenerateStreamRequest(prompt=PROMPT, params=LONG), metadata=key(secret), timeout=120
    )
    received = [await call.read() for _ in range(3)]
    call.cancel()
    for _ in range(100):  # the gateway settles the cancelled call just after it ends
        used = await method_usage(channel, secret)
        if used.errors:
            break
        await asyncio.sleep(0.05)
    assert (used.calls, used.errors) == (1, 1)
    assert used.usage.input_tokens == received[0].usage.input_tokens > 0  # the prompt, on the first message
    relayed = sum(m.usage.output_tokens for m in received)
    assert 3 <= relayed <= used.usage.output_tokens < LONG.max_new_tokens


async def test_a_tokens_quota_ends_a_long_stream(channel, keys) -> None:
    secret = keys[1].small
    stub = pb_grpc.TextGenerationServiceStub(channel)
    call = stub.GenerateStream(pb.GenerateStreamRequest(prompt=PROMPT, params=LONG), metadata=key(secret), timeout=120)
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        async for message in call:
            received.append(message)
    assert ended.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, ended.value.details()
    assert "tokens" in ended.value.details()
    billed = sum(m.usage.input_tokens + m.usage.output_tokens for m in received)
    assert 40 <= billed < 40 + 5  # stopped at the quota, give or take the last message
    report = await gw_grpc.GatewayServiceStub(channel).GetUsage(gw.GetUsageRequest(), metadata=key(secret), timeout=10)
    assert report.quota.tokens_remaining == 0 and report.usage.input_tokens + report.usage.output_tokens >= billed
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # the next call is refused at once
        await stub.Generate(pb.GenerateRequest(prompt="Hi", params=LONG), metadata=key(secret), timeout=30)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
