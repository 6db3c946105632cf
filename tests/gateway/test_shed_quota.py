"""A call the gateway sheds (RESOURCE_EXHAUSTED from its admission: it did no work) does not count
against the key's calls quota; the call it served does. A gateway in this process, keys on, its
embeddings backend hung so that the one call admitted holds the gateway's only slot."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import grpc.aio
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from lumen.embeddings.v1 import embeddings_pb2, embeddings_pb2_grpc
from lumen.gateway.v1 import gateway_pb2 as pb
from lumen.gateway.v1 import gateway_pb2_grpc as pb_grpc
from shared.admission import SHED_REASON
from tests.gateway.conftest import add_key, running_gateway


def _reason(exc: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(exc)
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return ""


async def test_shed_calls_do_not_count_against_the_calls_quota(tmp_path: Path, hung_address: str) -> None:
    keys = tmp_path / "keys.json"
    secret = add_key(keys, "three-calls", calls_per_period=3)
    metadata = (("x-api-key", secret),)
    async with (
        running_gateway(
            keys_file=str(keys), embeddings_address=hung_address, max_concurrent_rpcs=1, default_timeout_s=2.0
        ) as gateway,
        grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel,
    ):
        stub = embeddings_pb2_grpc.EmbeddingServiceStub(channel)

        async def embed() -> grpc.aio.AioRpcError:
            try:
                await stub.Embed(embeddings_pb2.EmbedRequest(texts=["hi"]), metadata=metadata, timeout=10)
            except grpc.aio.AioRpcError as exc:
                return exc
            raise AssertionError("the hung backend answered")

        held = asyncio.create_task(embed())  # admitted; waits on the hung backend until its 2 s deadline
        await asyncio.sleep(0.5)
        shed = [await embed() for _ in range(5)]
        assert {e.code() for e in shed} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert {_reason(e) for e in shed} == {SHED_REASON}
        assert (await held).code() is grpc.StatusCode.DEADLINE_EXCEEDED

        report = await pb_grpc.GatewayServiceStub(channel).GetUsage(pb.GetUsageRequest(), metadata=metadata)
        assert report.calls == 1  # the served call only, not the 5 shed
        # The quota (3 calls) is not used up by the shed ones: two more calls are admitted, the next is not.
        for _ in range(2):  # past the key checks: the hung backend's deadline, or UNAVAILABLE once it is given up
            assert (await embed()).code() in {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE}
        refused = await embed()
        assert refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _reason(refused) == "QUOTA_EXCEEDED"
