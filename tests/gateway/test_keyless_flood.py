"""With keys on, a flood of large calls without a key costs the gateway little memory: the key is
checked from the metadata before grpc reads the body. A real gateway process; its peak resident
memory (VmHWM) is read from /proc before and after. The same flood with a valid key, whose bodies
the gateway does receive (then answers UNAVAILABLE: no backend listens), is the comparison."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import grpc.aio
import pytest

from tests.gateway.conftest import add_key
from tests.in_process import down_address
from tools.suite import Suite, free_port

pytestmark = pytest.mark.slow

EMBED = "/lumen.embeddings.v1.EmbeddingService/Embed"
BODY = b"\x0a\x80\x80\x80\x08" + b"a" * (16 * 1024 * 1024)  # one 16 MiB text (field 1), undecoded until read
AT_ONCE, ROUNDS = 8, 3


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


async def flood(address: str, metadata: tuple[tuple[str, str], ...]) -> dict[grpc.StatusCode, int]:
    codes: dict[grpc.StatusCode, int] = {}
    options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        call = channel.unary_unary(EMBED)

        async def one() -> None:
            try:
                await call(BODY, metadata=metadata, timeout=60)
                code = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
            codes[code] = codes.get(code, 0) + 1

        for _ in range(ROUNDS):
            await asyncio.gather(*(one() for _ in range(AT_ONCE)))
    return codes


async def test_a_keyless_flood_costs_the_gateway_bounded_memory(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    secret = add_key(keys, "flooder")
    env = {
        "LUMEN_GATEWAY_KEYS_FILE": str(keys),
        "LUMEN_GATEWAY_NLP_ADDRESS": down_address(),
        "LUMEN_GATEWAY_VISION_ADDRESS": down_address(),
        "LUMEN_GATEWAY_EMBEDDINGS_ADDRESS": down_address(),
    }
    suite = Suite()
    try:
        gateway = suite.start_component("gateway", free_port(), env, tmp_path)
        await asyncio.to_thread(suite.wait_serving, ["gateway"], 60.0)
        pid = gateway.process.pid
        before = peak_rss_mb(pid)
        keyless = await flood(gateway.address, ())
        after_keyless = peak_rss_mb(pid)
        keyed = await flood(gateway.address, (("x-api-key", secret),))
        after_keyed = peak_rss_mb(pid)
    finally:
        suite.stop()
    offered_mb = AT_ONCE * ROUNDS * len(BODY) / 2**20
    print(
        f"gateway peak RSS {before:.0f} MB; keyless flood of {offered_mb:.0f} MB ({AT_ONCE} at once): "
        f"+{after_keyless - before:.0f} MB; the same with a valid key: +{after_keyed - after_keyless:.0f} MB more"
    )
    assert keyless == {grpc.StatusCode.UNAUTHENTICATED: AT_ONCE * ROUNDS}
    assert set(keyed) == {grpc.StatusCode.UNAVAILABLE}  # bodies read, then no backend
    # Each refused call lets in at most its fixed 1 MiB flow-control window (8 at once: ~5 MB measured);
    # reading the bodies would take 16 MiB each (128 MB at once).
    assert after_keyless - before < 32
