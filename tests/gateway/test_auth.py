"""API keys on a gateway in this process: authentication, permissions, rate limits, quotas, usage.

The backends are down here (nothing listens on their addresses): key checks
happen before any backend is called, and a forwarded call that passes them
gets UNAVAILABLE at once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from gateway.server import Gateway
from lumen.embeddings.v1 import embeddings_pb2, embeddings_pb2_grpc
from lumen.gateway.v1 import gateway_pb2 as pb
from lumen.gateway.v1 import gateway_pb2_grpc as pb_grpc
from lumen.vision.v1 import vision_pb2, vision_pb2_grpc
from tests.gateway.conftest import add_key, running_gateway

EMBED = "/lumen.embeddings.v1.EmbeddingService/Embed"
LIST_MODELS = "/lumen.gateway.v1.GatewayService/ListModels"


class Keys:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.full = add_key(path, "full")
        self.embeddings_only = add_key(path, "embeddings-only", services=("embeddings", "gateway"))
        self.no_gateway = add_key(path, "no-gateway", services=("embeddings",))
        self.limited_rate = add_key(path, "limited-rate", rate_per_s=0.01, burst=2)
        self.few_calls = add_key(path, "few-calls", calls_per_period=2)
        self.admin = add_key(path, "admin", admin=True)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("keys") / "keys.json")


@pytest.fixture(scope="module")
async def gateway(keys: Keys) -> AsyncIterator[Gateway]:
    async with running_gateway(keys_file=str(keys.path)) as running:
        yield running


@pytest.fixture(scope="module")
async def channel(gateway: Gateway) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as ch:
        yield ch


def with_key(secret: str, header: str = "x-api-key") -> tuple[tuple[str, str], ...]:
    return ((header, secret if header == "x-api-key" else f"Bearer {secret}"),)


async def embed(channel: grpc.aio.Channel, metadata=()) -> grpc.StatusCode:
    stub = embeddings_pb2_grpc.EmbeddingServiceStub(channel)
    try:
        await stub.Embed(embeddings_pb2.EmbedRequest(texts=["hi"]), metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def list_models(channel: grpc.aio.Channel, metadata=()) -> grpc.StatusCode:
    try:
        await pb_grpc.GatewayServiceStub(channel).ListModels(pb.ListModelsRequest(), metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def usage(channel: grpc.aio.Channel, secret: str, key_id: str = "") -> pb.GetUsageResponse:
    stub = pb_grpc.GatewayServiceStub(channel)
    return await stub.GetUsage(pb.GetUsageRequest(key_id=key_id), metadata=with_key(secret), timeout=10)


async def test_calls_without_a_valid_key_are_unauthenticated(channel: grpc.aio.Channel, keys: Keys) -> None:
    for metadata in ((), with_key("lk_not-a-key"), (("authorization", "Basic abc"),), with_key(keys.full[:-1])):
        assert await embed(channel, metadata) is grpc.StatusCode.UNAUTHENTICATED
        assert await list_models(channel, metadata) is grpc.StatusCode.UNAUTHENTICATED
    # Probes need no key.
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_valid_key_passes_in_either_header(channel: grpc.aio.Channel, keys: Keys) -> None:
    for header in ("x-api-key", "authorization"):
        # Past the key checks, the call reaches the (down) backend: UNAVAILABLE at once, not a hang.
        assert await embed(channel, with_key(keys.full, header)) is grpc.StatusCode.UNAVAILABLE
        assert await list_models(channel, with_key(keys.full, header)) is grpc.StatusCode.OK


async def test_services_a_key_may_not_use_are_permission_denied(channel: grpc.aio.Channel, keys: Keys) -> None:
    vision = vision_pb2_grpc.ImageAnalysisServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await vision.ClassifyImages(vision_pb2.ClassifyImagesRequest(), metadata=with_key(keys.embeddings_only))
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "vision" in denied.value.details()
    assert await embed(channel, with_key(keys.embeddings_only)) is grpc.StatusCode.UNAVAILABLE
    assert await list_models(channel, with_key(keys.no_gateway)) is grpc.StatusCode.PERMISSION_DENIED
    # A composite call's parts are checked one by one.
    stub = pb_grpc.GatewayServiceStub(channel)
    reply = await stub.AnalyzeText(
        pb.AnalyzeTextRequest(
            text="Ein kurzer Satz.",
            features=[
                pb.TextFeature(type=pb.TEXT_FEATURE_TYPE_LANGUAGE),
                pb.TextFeature(type=pb.TEXT_FEATURE_TYPE_EMBEDDING),
            ],
        ),
        metadata=with_key(keys.embeddings_only),
    )
    assert reply.language.status.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert reply.embedding.status.code == grpc.StatusCode.UNAVAILABLE.value[0]


def retry_delay_s(error: grpc.aio.AioRpcError) -> float:
    status = rpc_status.from_call(error)
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.ToNanoseconds() / 1e9
    raise AssertionError("no RetryInfo")


async def test_rate_limit_answers_resource_exhausted_with_retry_info(channel: grpc.aio.Channel, keys: Keys) -> None:
    stub = pb_grpc.GatewayServiceStub(channel)
    metadata = with_key(keys.limited_rate)
    for _ in range(2):  # the burst
        await stub.ListModels(pb.ListModelsRequest(), metadata=metadata)
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await stub.ListModels(pb.ListModelsRequest(), metadata=metadata)
    assert limited.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert 0 < retry_delay_s(limited.value) <= 100  # 1 call per 100 s
    # Another key is not affected.
    assert await list_models(channel, with_key(keys.full)) is grpc.StatusCode.OK


async def test_quota_answers_resource_exhausted_and_usage_stays_readable(channel: grpc.aio.Channel, keys: Keys) -> None:
    metadata = with_key(keys.few_calls)
    assert await list_models(channel, metadata) is grpc.StatusCode.OK
    assert await embed(channel, metadata) is grpc.StatusCode.UNAVAILABLE  # a failed call still counts
    stub = pb_grpc.GatewayServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as spent:
        await stub.ListModels(pb.ListModelsRequest(), metadata=metadata)
    assert spent.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert 0 < retry_delay_s(spent.value) <= 86_400  # until the daily period ends
    report = await usage(channel, keys.few_calls)
    assert report.key_id == "few-calls"
    assert report.calls == 2
    assert report.quota.calls_limit == 2 and report.quota.calls_remaining == 0
    by_method = {m.method: m for m in report.methods}
    assert (by_method[LIST_MODELS].calls, by_method[LIST_MODELS].errors) == (1, 0)
    assert (by_method[EMBED].calls, by_method[EMBED].errors) == (1, 1)
    assert report.quota.period_end.seconds - report.period_start.seconds == 86_400


async def test_usage_of_other_keys_needs_an_admin_key(channel: grpc.aio.Channel, keys: Keys) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await usage(channel, keys.full, key_id="admin")
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert (await usage(channel, keys.admin, key_id="full")).key_id == "full"
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await usage(channel, keys.admin, key_id="nobody")
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
    bad = error_details_pb2.ResourceInfo()
    rpc_status.from_call(unknown.value).details[0].Unpack(bad)
    assert bad.resource_name == "nobody"


async def test_keys_never_appear_in_logs(
    channel: grpc.aio.Channel, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        for secret in (keys.full, keys.embeddings_only, keys.limited_rate, keys.few_calls):
            await embed(channel, with_key(secret))
            await list_models(channel, with_key(secret, "authorization"))
        await embed(channel, with_key("lk_this-is-a-wrong-key"))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert EMBED in text  # the access log did record these calls
    for secret in (keys.full, keys.embeddings_only, keys.limited_rate, keys.few_calls, "lk_this-is-a-wrong-key"):
        assert secret not in text


async def test_keys_off_counts_every_call_as_local() -> None:
    async with running_gateway() as gateway, grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        assert await list_models(channel) is grpc.StatusCode.OK
        assert await embed(channel) is grpc.StatusCode.UNAVAILABLE
        report = await pb_grpc.GatewayServiceStub(channel).GetUsage(pb.GetUsageRequest())
        assert report.key_id == "local"
        assert report.calls == 2
        assert report.quota.calls_limit == 0
        assert {m.method: m.errors for m in report.methods} == {LIST_MODELS: 0, EMBED: 1}
