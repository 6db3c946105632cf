"""Rate limits, quotas and usage in one real Redis shared by two meters (two gateways' worth)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.key_store import ApiKey
from gateway.meter import RedisMeter
from lumen.common.v1 import common_pb2
from shared.errors import Unavailable
from tools.state_servers import RedisServer

METHOD = "/lumen.embeddings.v1.EmbeddingService/Embed"


def key(name: str, **limits: float) -> ApiKey:
    return ApiKey(id=name, sha256="0" * 64, **limits)  # type: ignore[arg-type]


async def test_a_quota_of_n_calls_is_n_across_two_meters(redis_server: RedisServer) -> None:
    a, b = RedisMeter(redis_server.url), RedisMeter(redis_server.url)
    k = key("quota-n", calls_per_period=17)
    results = await asyncio.gather(*(m.admit(k, METHOD, True) for _ in range(30) for m in (a, b)))
    assert sum(r is None for r in results) == 17
    refusals = [r for r in results if r is not None]
    assert {r.reason for r in refusals} == {"calls"} and all(r.retry_after_s > 0 for r in refusals)
    await a.settle(k, METHOD, True, common_pb2.Usage(input_tokens=5))
    await b.settle(k, METHOD, False, common_pb2.Usage(input_tokens=2, images=1))
    for m in (a, b):  # either gateway answers GetUsage the same
        period = await m.period(k)
        assert (period.calls, period.usage.input_tokens, period.usage.images) == (17, 7, 1)
        counts = period.methods[METHOD]
        assert (counts.calls, counts.errors, counts.usage.input_tokens) == (17, 1, 7)
    await a.close()
    await b.close()


async def test_token_quota_and_rate_are_shared(redis_server: RedisServer) -> None:
    a, b = RedisMeter(redis_server.url), RedisMeter(redis_server.url)
    tokens = key("tokens-q", tokens_per_period=10)
    assert await a.admit(tokens, METHOD, True) is None
    await a.settle(tokens, METHOD, True, common_pb2.Usage(input_tokens=6, output_tokens=4))
    refusal = await b.admit(tokens, METHOD, True)
    assert refusal is not None and refusal.reason == "tokens"
    rate = key("rate-q", rate_per_s=0.01, burst=3)
    results = [await m.admit(rate, METHOD, True) for _ in range(4) for m in (a, b)]
    assert sum(r is None for r in results) == 3
    assert {r.reason for r in results if r is not None} == {"rate"}
    await a.close()
    await b.close()


async def test_redis_away_limited_keys_unavailable_then_back(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)  # its own server: this test stops it
    server.start()
    meter = RedisMeter(server.url)
    limited, free = key("limited", calls_per_period=100), key("free")
    try:
        assert await meter.admit(limited, METHOD, True) is None
        server.stop()
        with pytest.raises(Unavailable):
            await meter.admit(limited, METHOD, True)
        with pytest.raises(Unavailable):
            await meter.period(limited)
        assert await meter.admit(free, METHOD, True) is None  # nothing to enforce: admitted, uncounted
        await meter.settle(limited, METHOD, True, common_pb2.Usage(input_tokens=1))  # logged, not raised
        server.start()
        assert await meter.admit(limited, METHOD, True) is None
        assert (await meter.period(limited)).calls == 1  # a Redis without persistence restarted empty
    finally:
        await meter.close()
        server.stop()


async def test_streamed_usage_is_charged_as_it_passes_and_ends_at_the_quota(redis_server: RedisServer) -> None:
    """charge() (a stream's message): counted at once on every replica; the message after the
    one that used the tokens quota up gets the refusal. Same answers from the memory meter."""
    from gateway.meter import MemoryMeter

    stream = "/lumen.nlp.v1.TextGenerationService/GenerateStream"
    for meters in ((RedisMeter(redis_server.url), RedisMeter(redis_server.url)), (MemoryMeter(),) * 2):
        a, b = meters
        k = key(f"stream-{type(a).__name__}", tokens_per_period=10, images_per_period=1)
        assert await a.charge(k, stream, common_pb2.Usage(input_tokens=6, output_tokens=1)) is None
        assert await b.charge(k, stream, common_pb2.Usage(output_tokens=3)) is None  # 10 used: the quota is up
        refusal = await a.charge(k, stream, common_pb2.Usage(output_tokens=1))
        assert refusal is not None and refusal.reason == "tokens" and refusal.retry_after_s > 0
        period = await b.period(k)
        assert (period.usage.input_tokens, period.usage.output_tokens) == (6, 5)  # billed all the same
        assert period.methods[stream].usage.output_tokens == 5
        await a.close()
        await b.close()
