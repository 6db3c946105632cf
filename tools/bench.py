"""`make bench`: the embeddings service against its own model run in process, on this machine, in one run.

Prints embedding-RPC throughput (texts/s) and p50/p99 latency at concurrency 1,
8 and 64 (one text per call, so the server's dynamic batcher does the merging),
next to the same SentenceTransformer's ``encode`` throughput at batch 1 and at
its best batch size, as ratios. The service runs as its own process (as in
production); the client shares the machine's cores with it, as a co-located
caller would. A benchmark, not a test: it asserts nothing.

Usage: python -m tools.bench [--seconds 8] [--torch-threads N]
(on a busy machine --torch-threads 1 avoids OpenMP threads fighting over cores on both sides)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared import offline

offline.apply()

import grpc.aio  # noqa: E402 - after the offline switches

from lumen.embeddings.v1 import embeddings_pb2 as pb  # noqa: E402
from lumen.embeddings.v1 import embeddings_pb2_grpc as pb_grpc  # noqa: E402
from services.embeddings import setup_models  # noqa: E402
from shared.model import ModelConfig  # noqa: E402
from tools.suite import ROOT, Suite, free_port  # noqa: E402

MODEL = "all-minilm-l6-v2"
CONCURRENCY = (1, 8, 64)
BATCH_SIZES = (8, 16, 32, 64, 128)

SUBJECTS = ["The service", "A customer", "Our model", "The gateway", "This cluster", "The team", "A sensor"]
VERBS = ["reports", "rejects", "embeds", "forwards", "retries", "measures", "stores"]
OBJECTS = ["a late invoice", "the nightly backup", "twelve short sentences", "an image of a cat", "the p99 latency"]


def texts(n: int) -> list[str]:
    """Distinct sentences of about a dozen tokens, like short search queries."""
    return [
        f"{SUBJECTS[i % 7]} {VERBS[(i // 7) % 7]} {OBJECTS[(i // 49) % 5]} on day {i % 31} of run {i}."
        for i in range(n)
    ]


@dataclass(frozen=True)
class RpcResult:
    concurrency: int
    texts_per_call: int
    texts_per_s: float
    p50_ms: float
    p99_ms: float
    calls: int


def rate(model: Any, sample: list[str], batch_size: int, seconds: float) -> float:
    """Texts per second of ``model.encode`` on consecutive batches of ``batch_size`` texts for ``seconds``."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = [sample[(done + j) % len(sample)] for j in range(batch_size)]
        model.encode(batch, batch_size=batch_size)
        done += batch_size
    return done / (time.perf_counter() - start)


def in_process(model_dir: Path, seconds: float) -> tuple[float, dict[int, float]]:
    """encode() throughput of the same model directory at batch 1, and per batch size."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    sample = texts(4096)
    model.encode(sample[:64], batch_size=64)  # warm-up
    batch1 = rate(model, sample, 1, seconds / 2)
    return batch1, {bs: rate(model, sample, bs, seconds / 4) for bs in BATCH_SIZES}


async def rpc_load(address: str, concurrency: int, per_call: int, seconds: float) -> RpcResult:
    """``concurrency`` callers sending Embed back to back for ``seconds`` after a one-second warm-up."""
    sample = texts(4096)
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.EmbeddingServiceStub(channel)
        measuring = False
        stop_at = 0.0

        async def caller(offset: int) -> None:
            i = offset
            while time.perf_counter() < stop_at:
                batch = [sample[(i + j) % len(sample)] for j in range(per_call)]
                i += concurrency * per_call
                start = time.perf_counter()
                await stub.Embed(pb.EmbedRequest(texts=batch))
                if measuring:
                    latencies.append(time.perf_counter() - start)

        stop_at = time.perf_counter() + 1.0
        await asyncio.gather(*(caller(n * per_call) for n in range(concurrency)))
        measuring, started = True, time.perf_counter()
        stop_at = started + seconds
        await asyncio.gather(*(caller(n * per_call) for n in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return RpcResult(
        concurrency,
        per_call,
        len(latencies) * per_call / elapsed,
        statistics.median(latencies) * 1e3,
        latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1e3,
        len(latencies),
    )


def repository(scratch: Path) -> Path:
    """The default repository when `make models` wrote it, else a scratch one with the sentence model."""
    default = ROOT / "var" / "models" / "embeddings"
    if (default / MODEL / "model.json").is_file():
        return default
    setup_models.write_sentence_model(scratch)
    return scratch


def main() -> None:
    parser = argparse.ArgumentParser(description="Embeddings service benchmark")
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring time per concurrency level")
    parser.add_argument(
        "--torch-threads", type=int, default=0, help="intra-op threads of both sides; 0 keeps torch's default"
    )
    args = parser.parse_args()
    if args.torch_threads > 0:
        import torch

        torch.set_num_threads(args.torch_threads)
    # Other work on the machine moves every figure; the load average says how much there was.
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)

    with tempfile.TemporaryDirectory(prefix="lumen-bench-") as scratch:
        models = repository(Path(scratch))
        # The very model directory the service will load, run in this process first (service not started yet).
        model_dir = ModelConfig.from_directory(models / MODEL).path
        print(f"in-process {MODEL} from {model_dir} (encode, torch threads {torch_threads()})...", flush=True)
        batch1, by_size = in_process(model_dir, args.seconds)
        best_size = max(by_size, key=by_size.__getitem__)
        env = {
            "LUMEN_EMBEDDINGS_HOST": "127.0.0.1",
            "LUMEN_EMBEDDINGS_MODEL_REPOSITORY": str(models),
            "LUMEN_EMBEDDINGS_MODELS": MODEL,
            "LUMEN_EMBEDDINGS_COLLECTIONS_DIR": str(Path(scratch) / "collections"),
            "LUMEN_EMBEDDINGS_LOG_LEVEL": "WARNING",
            "LUMEN_EMBEDDINGS_TORCH_THREADS": str(args.torch_threads),
        }
        suite = Suite()
        print("starting the embeddings service...", flush=True)
        component = suite.start_component("embeddings", free_port(), env, Path(scratch))
        try:
            suite.wait_serving(["embeddings"])
            results = [asyncio.run(rpc_load(component.address, c, 1, args.seconds)) for c in CONCURRENCY]
            results.append(asyncio.run(rpc_load(component.address, 1, 64, args.seconds / 2)))
        finally:
            suite.stop()

    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    print(
        f"in-process encode: batch 1 {batch1:8.1f} texts/s; best batch {best_size}: {by_size[best_size]:8.1f} texts/s"
    )
    print("  by batch size: " + ", ".join(f"{bs}: {tps:.0f}" for bs, tps in by_size.items()))
    print(
        f"\n{'Embed RPC':<26}{'texts/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'calls':>8}"
        f"{'vs batch 1':>12}{f'vs batch {best_size}':>13}"
    )
    for r in results:
        label = f"concurrency {r.concurrency}, {r.texts_per_call} text{'s' if r.texts_per_call > 1 else ''}/call"
        print(
            f"{label:<26}{r.texts_per_s:>10.1f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.calls:>8}"
            f"{r.texts_per_s / batch1:>11.2f}x{r.texts_per_s / by_size[best_size]:>12.2f}x"
        )


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
