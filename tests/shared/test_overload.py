"""Overload, on a real nlp process (VADER): at 10x its call cap the server sheds with
RESOURCE_EXHAUSTED + RetryInfo, the calls it admits keep a bounded p99, health stays
SERVING, and it serves again as soon as the load drops.

No absolute times: the p99 bound is derived from the single-call time measured here.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from lumen.nlp.v1 import nlp_pb2 as pb
from lumen.nlp.v1 import nlp_pb2_grpc as pb_grpc
from tools.suite import Suite, free_port

pytestmark = [pytest.mark.slow]

CAP = 2
OVERLOAD = 10  # offered rate / the rate the server can serve (CAP calls per single-call time)
SECONDS = 3.0
# ~30,000 characters a text, 4 texts a call: since VADER is linear one text takes ~20 ms on a quiet
# machine, so a call takes ~100 ms and 10x the serving rate stays a few hundred calls a second, which
# one client process can offer (past that the client itself falls behind and cancels its own calls).
TEXT = "The service was not good, but the staff were wonderful and the food was great! " * 400
TEXTS_PER_CALL = 4


@dataclass
class Load:
    codes: Counter = field(default_factory=Counter)
    admitted_s: list[float] = field(default_factory=list)
    retry_info: int = 0
    health: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def p99(self) -> float:
        return statistics.quantiles(self.admitted_s, n=100)[98]


async def _call(stub: pb_grpc.TextAnalysisServiceStub) -> None:
    await stub.AnalyzeSentiment(pb.AnalyzeSentimentRequest(texts=[TEXT] * TEXTS_PER_CALL), timeout=60)


async def single_call_s(address: str, n: int = 20) -> float:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.TextAnalysisServiceStub(channel)
        await _call(stub)
        times = []
        for _ in range(n):
            start = time.perf_counter()
            await _call(stub)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


async def offer(address: str, rate: float, seconds: float) -> Load:
    """An open loop: a new call every 1/rate s for ``seconds`` (whatever the answers; no
    retries), while a probe checks health every 50 ms."""
    load = Load()
    done = asyncio.Event()
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.TextAnalysisServiceStub(channel)

        async def one_call() -> None:
            start = time.perf_counter()
            try:
                await _call(stub)
                load.admitted_s.append(time.perf_counter() - start)
                load.codes["OK"] += 1
            except grpc.aio.AioRpcError as exc:
                load.codes[exc.code().name] += 1
                status = rpc_status.from_call(exc)
                for detail in status.details if status else ():
                    if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                        load.retry_info += 1

        async def caller() -> None:
            calls, begin = [], time.perf_counter()
            for n in range(int(rate * seconds)):
                await asyncio.sleep(max(0.0, begin + n / rate - time.perf_counter()))
                calls.append(asyncio.create_task(one_call()))
            await asyncio.gather(*calls)

        async def probe() -> None:
            health = health_pb2_grpc.HealthStub(channel)
            while not done.is_set():
                try:
                    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
                    load.health[health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)] += 1
                except grpc.aio.AioRpcError as exc:
                    load.health[exc.code().name] += 1
                await asyncio.sleep(0.05)

        start = time.perf_counter()
        probing = asyncio.create_task(probe())
        await caller()
        load.seconds = time.perf_counter() - start
        done.set()
        await probing
    return load


def served_ms(log: Path, method: str = "AnalyzeSentiment") -> list[float]:
    """Server-side time of each call the server answered OK, from its access log."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        parts = line.split()
        if "lumen.access:" in parts and any(p.endswith(f"/{method}") for p in parts) and " OK " in line:
            out.append(float(next(p for p in parts if p.endswith("ms"))[:-2]))
    return out


@pytest.fixture
def nlp(suite_models: Path, tmp_path: Path):
    suite = Suite()
    env = {
        "LUMEN_NLP_MODEL_REPOSITORY": str(suite_models / "nlp"),
        "LUMEN_NLP_MODELS": "vader",
        "LUMEN_NLP_MAX_CONCURRENT_RPCS": str(CAP),
        "LUMEN_NLP_SHED_RETRY_AFTER_S": "0.2",
    }
    suite.start_component("nlp", free_port(), env, tmp_path)
    try:
        suite.wait_serving()
        yield suite.address("nlp"), tmp_path / "nlp.log"
    finally:
        suite.stop()


def test_sheds_at_ten_times_capacity_and_recovers(nlp: tuple[str, Path]) -> None:
    address, log = nlp
    one = asyncio.run(single_call_s(address))
    before = len(served_ms(log))
    rate = OVERLOAD * CAP / one
    load = asyncio.run(offer(address, rate, SECONDS))
    server_ms = served_ms(log)[before:]
    server_p99 = statistics.quantiles(server_ms, n=100)[98] / 1e3
    offered = int(rate * SECONDS)
    shed = load.codes["RESOURCE_EXHAUSTED"]
    print(
        f"\noverload (cap {CAP}, {OVERLOAD}x): single call {one * 1e3:.1f} ms; offered {offered} calls "
        f"in {load.seconds:.2f}s ({offered / load.seconds:.0f}/s), served {load.codes['OK']} "
        f"({load.codes['OK'] / load.seconds:.0f}/s), shed {shed}, p99 of admitted in the server "
        f"{server_p99 * 1e3:.1f} ms ({server_p99 / one:.1f}x a single call; at the client {load.p99() * 1e3:.1f} ms), "
        f"health {dict(load.health)}"
    )
    assert set(load.codes) == {"OK", "RESOURCE_EXHAUSTED"}, load.codes
    assert shed > offered // 2, "at 10x capacity most calls are shed"
    assert load.retry_info == shed, "every shed call carries RetryInfo"
    assert set(load.health) == {"SERVING"}, load.health
    # In the server, an admitted call waits behind at most CAP - 1 others (and one batch
    # being run): a bound that an unbounded queue would break within the first second
    # (it grows by 9 calls per single-call time); x2 slack for the shedding work sharing
    # the cores and the GIL with the model. (At the client, printed, not asserted.)
    assert server_p99 <= 2 * 2 * CAP * one, (server_p99, one)
    # Recovery: as soon as the flood ends, plain calls are served.
    after = asyncio.run(offer_once(address))
    assert after == ["OK"] * 5


async def offer_once(address: str) -> list[str]:
    out = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.TextAnalysisServiceStub(channel)
        for _ in range(5):
            try:
                await _call(stub)
                out.append("OK")
            except grpc.aio.AioRpcError as exc:
                out.append(exc.code().name)
    return out
