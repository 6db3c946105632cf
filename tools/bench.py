"""`make bench`: every served model against the same model run in process, on this machine, in one run.

- Embeddings (all-MiniLM-L6-v2, one text per call): Embed direct to the
  service and through the gateway at concurrency 1, 8, 32, 64, against
  ``encode`` in process at batch 1 and at its best batch size.
- Generation (SmolLM2-135M, greedy, 64 new tokens): 1 and 8 concurrent
  GenerateStream callers (tokens/s in all, median time to first token; the 8
  start spread over one generation's time, as independent callers arrive),
  against transformers' ``generate`` in process at batch 1 and 8.
- Image classification (EfficientNet-Lite0, one image per call): 32 concurrent
  ClassifyImages callers, against the runtime's ``predict`` in process at its
  best batch size. Face detection (dlib HOG): 8 concurrent DetectFaces callers,
  against the runtime's ``predict`` called back to back on one thread.

Services run as their own processes, as in production; the load comes from this
process, sharing the machine's cores as a co-located caller would. Results go
to build/bench/bench.json, a plot to build/bench/bench.png, and the README table
is regenerated from the JSON (tools/bench_report.py). A benchmark, not a test:
it asserts nothing. On a busy machine every figure moves; the ratios move less:
each in-process reference is measured just before and just after its served
points and their mean is used (`bracketed`), and the load average is recorded.

- Training beside serving (tools/bench_training.py): one tabular-dense job's
  wall time and the embeddings throughput while it trains, as a ratio to the
  throughput without it.

Usage: python -m tools.bench [--seconds 3] [--torch-threads N] [--skip generation,vision,training]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from shared import offline

offline.apply()

import grpc.aio  # noqa: E402 - after the offline switches

from lumen.common.v1 import common_pb2  # noqa: E402
from lumen.embeddings.v1 import embeddings_pb2 as epb  # noqa: E402
from lumen.embeddings.v1 import embeddings_pb2_grpc as epb_grpc  # noqa: E402
from lumen.nlp.v1 import nlp_pb2 as npb  # noqa: E402
from lumen.nlp.v1 import nlp_pb2_grpc as npb_grpc  # noqa: E402
from lumen.vision.v1 import vision_pb2 as vpb  # noqa: E402
from lumen.vision.v1 import vision_pb2_grpc as vpb_grpc  # noqa: E402
from shared.model import ModelConfig  # noqa: E402
from tools import bench_report  # noqa: E402
from tools.bench_training import bench_training  # noqa: E402
from tools.suite import ROOT, Suite, free_port  # noqa: E402

EMBEDDER, LLM, CLASSIFIER, FACES = "all-minilm-l6-v2", "smollm2-135m-instruct", "efficientnet-lite0", "dlib-hog-face"
CONCURRENCY = (1, 8, 32, 64)
FACE_CALLERS = 8
BATCH_SIZES = (8, 16, 32, 64, 128)
IMAGE_BATCHES = (1, 2, 4, 8, 16, 32)
NEW_TOKENS, STREAMS = 64, (1, 8)
DEFAULT_OUT = ROOT / "build" / "bench"
# Each runs to NEW_TOKENS greedy without an end-of-text token (checked with SmolLM2-135M-Instruct), so the
# service does the work generate(min_new_tokens=NEW_TOKENS) does, and one alone takes a whole generation's time.
PROMPTS = [
    "Once upon a time, in a small village by the sea,",
    "The old lighthouse keeper climbed the stairs and",
    "The history of the printing press begins",
    "Here is a list of ten facts about the ocean:",
    "Dear diary, today something strange happened at work:",
    "The recipe for a good vegetable soup starts with",
    "In the year 2150, the first city on Mars",
    "A letter to my younger self: first of all,",
]
SUBJECTS = ["The service", "A customer", "Our model", "The gateway", "This cluster", "The team", "A sensor"]
VERBS = ["reports", "rejects", "embeds", "forwards", "retries", "measures", "stores"]
OBJECTS = ["a late invoice", "the nightly backup", "twelve short sentences", "an image of a cat", "the p99 latency"]


def texts(n: int) -> list[str]:
    """Distinct sentences of about a dozen tokens, like short search queries."""
    return [
        f"{SUBJECTS[i % 7]} {VERBS[(i // 7) % 7]} {OBJECTS[(i // 49) % 5]} on day {i % 31} of run {i}."
        for i in range(n)
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rate(run: Callable[[int], None], batch_size: int, seconds: float) -> float:
    """Items per second of ``run(batch_size)`` called back to back for ``seconds``."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run(batch_size)
        done += batch_size
    return done / (time.perf_counter() - start)


def bracketed(measure: Callable[[], dict[str, Any]], serve: Callable[[], Any]) -> tuple[dict[str, Any], Any]:
    """``measure()`` (in process) before and after ``serve()`` (the served points), averaged. This VM's speed
    drifts by up to 40% over the minutes between (in-process best 265 against 376 texts/s in two runs
    an hour apart): averaging both sides cancels a steady drift out of the ratios. Both runs are kept."""
    before = measure()
    served = serve()
    after = measure()
    return {**_mean(before, after), "before": before, "after": after}, served


def _brackets(local: dict[str, Any], key: str) -> str:
    """'mean (before, after)' of one in-process figure, for the progress lines."""
    return f"{local[key]:.1f} ({local['before'][key]:.1f}, {local['after'][key]:.1f})"


def _mean(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in before.items():
        if isinstance(value, dict):
            out[key] = {k: (v + after[key][k]) / 2 for k, v in value.items()}
        elif isinstance(value, float):
            out[key] = (value + after[key]) / 2
    if "by_batch" in out:  # the best batch of the averaged rates
        out["best_batch"] = max(out["by_batch"], key=out["by_batch"].__getitem__)
        out["best"] = out["by_batch"][out["best_batch"]]
    return out


async def closed_loop(concurrency: int, seconds: float, call: Callable[[int], Awaitable[int]]) -> dict[str, float]:
    """``concurrency`` callers calling back to back (after a short warm-up); ``call`` returns the items it did."""
    latencies: list[float] = []
    items = 0
    measuring, stop_at = False, time.perf_counter() + min(1.0, seconds / 2)

    async def caller(n: int) -> None:
        nonlocal items
        i = n
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            done = await call(i)
            i += concurrency
            if measuring:
                latencies.append(time.perf_counter() - start)
                items += done

    await asyncio.gather(*(caller(n) for n in range(concurrency)))
    measuring, started = True, time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(caller(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "per_s": items / elapsed,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "calls": len(latencies),
    }


# --- embeddings ----------------------------------------------------------------
def embeddings_in_process(model_dir: Path, seconds: float) -> Callable[[], dict[str, Any]]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    sample = texts(4096)
    model.encode(sample[:64], batch_size=64)  # warm-up
    offset = [0]

    def run(n: int) -> None:
        start = offset[0]
        offset[0] += n
        model.encode([sample[(start + j) % len(sample)] for j in range(n)], batch_size=n)

    def measure() -> dict[str, Any]:
        batch1 = rate(run, 1, seconds)
        by_batch = {bs: rate(run, bs, seconds / 2) for bs in BATCH_SIZES}
        best = max(by_batch, key=by_batch.__getitem__)
        return {"batch1": batch1, "by_batch": by_batch, "best_batch": best, "best": by_batch[best]}

    return measure


async def embed_load(address: str, concurrency: int, seconds: float) -> dict[str, float]:
    sample = texts(4096)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = epb_grpc.EmbeddingServiceStub(channel)

        async def call(i: int) -> int:
            await stub.Embed(epb.EmbedRequest(texts=[sample[i % len(sample)]]))
            return 1

        return await closed_loop(concurrency, seconds, call)


# --- generation ----------------------------------------------------------------
def generation_in_process(model_dir: Path) -> Callable[[], dict[str, Any]]:
    """Tokens/s of transformers' generate (greedy, NEW_TOKENS each) at batch 1 and padded batch 8."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True).eval()

    def run(prompts: list[str]) -> float:
        inputs = tokenizer(prompts, return_tensors="pt", padding=True)
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                **inputs, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=0
            )
        tokens = (out.shape[1] - inputs["input_ids"].shape[1]) * len(prompts)
        return tokens / (time.perf_counter() - start)

    run(PROMPTS[:1])  # warm-up
    return lambda: {"batch1": run(PROMPTS[:1]), "batch8": run(PROMPTS[:8])}


async def generation_load(address: str, streams: int, rounds: int, spread: bool = True) -> dict[str, float]:
    """``streams`` callers, each running ``rounds`` GenerateStream calls back to back; their first calls
    spread over the time one generation takes alone, or all at once (``spread`` False)."""
    first_token: list[float] = []
    tokens = 0
    async with grpc.aio.insecure_channel(address) as channel:
        stub = npb_grpc.TextGenerationServiceStub(channel)
        params = npb.GenerationParams(max_new_tokens=NEW_TOKENS, temperature=0.0)

        async def one(prompt: str) -> None:
            nonlocal tokens
            start = time.perf_counter()
            got_first = False
            async for message in stub.GenerateStream(npb.GenerateStreamRequest(prompt=prompt, params=params)):
                if not got_first and message.text:
                    first_token.append(time.perf_counter() - start)
                    got_first = True
                if message.usage.output_tokens:
                    tokens += message.usage.output_tokens

        await one(PROMPTS[0])  # warm-up
        first_token.clear()
        tokens = 0

        # Independent callers do not arrive in the same instant: the streams start spread over the time one
        # generation takes alone, so the time to first token is that of a newcomer joining a running batch.
        spacing = 0.0
        if spread:
            alone = time.perf_counter()
            await one(PROMPTS[1])
            spacing = (time.perf_counter() - alone) / streams
            first_token.clear()
            tokens = 0

        async def caller(n: int) -> None:
            await asyncio.sleep(n * spacing)
            for r in range(rounds):
                await one(PROMPTS[(n + r) % len(PROMPTS)])

        started = time.perf_counter()
        await asyncio.gather(*(caller(n) for n in range(streams)))
        elapsed = time.perf_counter() - started
    return {"streams": streams, "tokens_per_s": tokens / elapsed, "ttft_p50_ms": statistics.median(first_token) * 1e3}


# --- vision --------------------------------------------------------------------
def sample_image(name: str = "chelsea") -> bytes:
    """A real photograph (scikit-image's: a cat, or the astronaut's portrait for faces), 512 px wide, as PNG."""
    from PIL import Image
    from skimage import data

    pixels = getattr(data, name)()
    image = Image.fromarray(pixels).resize((512, 512 * pixels.shape[0] // pixels.shape[1]))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def vision_in_process(model_dir: Path, image: bytes, seconds: float) -> Callable[[], dict[str, Any]]:
    from services.vision import app
    from services.vision.images import Limits, decode

    config = ModelConfig.from_directory(model_dir)
    model = app.FACTORIES[config.framework](config, "cpu")
    model.load()
    decoded = decode(image, "image", Limits())  # decoding and its cost are outside the model, as in the service
    model.predict([decoded])  # warm-up

    def measure() -> dict[str, Any]:
        by_batch = {bs: rate(lambda n: model.predict([decoded] * n), bs, seconds / 2) for bs in IMAGE_BATCHES}
        best = max(by_batch, key=by_batch.__getitem__)
        return {"by_batch": by_batch, "best_batch": best, "best": by_batch[best]}

    return measure


def faces_in_process(model_dir: Path, image: bytes, seconds: float) -> Callable[[], dict[str, Any]]:
    """The face detector's ``predict``, one image a call back to back on one thread, as a caller would run it."""
    from services.vision import app
    from services.vision.images import Limits, decode
    from services.vision.results import FaceQuery

    config = ModelConfig.from_directory(model_dir)
    model = app.FACTORIES[config.framework](config, "cpu")
    model.load()
    query = FaceQuery(decode(image, "image", Limits()))
    model.predict([query])  # warm-up

    def measure() -> dict[str, Any]:
        per_s = rate(lambda n: model.predict([query] * n), 1, seconds)
        return {"by_batch": {1: per_s}, "best_batch": 1, "best": per_s}

    return measure


async def detect_faces_load(address: str, image: bytes, concurrency: int, seconds: float) -> dict[str, float]:
    async with grpc.aio.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        stub = vpb_grpc.ImageAnalysisServiceStub(channel)
        request = vpb.DetectFacesRequest(images=[common_pb2.Image(content=image)])

        async def call(i: int) -> int:
            await stub.DetectFaces(request)
            return 1

        return await closed_loop(concurrency, seconds, call)


async def classify_load(address: str, image: bytes, concurrency: int, seconds: float) -> dict[str, float]:
    async with grpc.aio.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        stub = vpb_grpc.ImageAnalysisServiceStub(channel)
        request = vpb.ClassifyImagesRequest(images=[common_pb2.Image(content=image)], top_k=3)

        async def call(i: int) -> int:
            await stub.ClassifyImages(request)
            return 1

        return await closed_loop(concurrency, seconds, call)


# --- orchestration -----------------------------------------------------------------
def model_dir(service: str, name: str, scratch: Path) -> Path:
    directory = ROOT / "var" / "models" / service / name
    if not (directory / "model.json").is_file():
        raise SystemExit(f"{directory} is missing: run `make models` first")
    return ModelConfig.from_directory(directory).path


def start(suite: Suite, name: str, env: dict[str, str], scratch: Path) -> str:
    prefix = f"LUMEN_{name.upper()}_"
    values = {"HOST": "127.0.0.1", "LOG_LEVEL": "WARNING", **env}
    component = suite.start_component(name, free_port(), {prefix + k: v for k, v in values.items()}, scratch)
    return component.address


def start_embeddings(suite: Suite, scratch: Path, threads: str, collections: str) -> str:
    """The embeddings service serving EMBEDDER alone, its collections in ``scratch / collections``."""
    env = {
        "MODEL_REPOSITORY": str(ROOT / "var" / "models" / "embeddings"),
        "MODELS": EMBEDDER,
        "COLLECTIONS_DIR": str(scratch / collections),
        "TORCH_THREADS": threads,
    }
    return start(suite, "embeddings", env, scratch)


def main() -> None:
    parser = argparse.ArgumentParser(description="lumen serving benchmark")
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per point")
    parser.add_argument("--torch-threads", type=int, default=0, help="intra-op threads, both sides; 0: torch's default")
    parser.add_argument("--skip", default="", help="skip parts: embeddings,generation,vision,training")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    threads = str(args.torch_threads)
    if args.torch_threads > 0:
        import torch

        torch.set_num_threads(args.torch_threads)
    results: dict[str, Any] = {
        "load_average_before": os.getloadavg()[0],
        "cores": os.cpu_count(),
        "seconds_per_point": args.seconds,
    }
    print(f"load average before: {results['load_average_before']:.2f} on {os.cpu_count()} cores", flush=True)
    suite = Suite()
    with tempfile.TemporaryDirectory(prefix="lumen-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        try:
            if "embeddings" not in skip:
                results["embeddings"] = bench_embeddings(suite, scratch, args.seconds, threads)
            if "generation" not in skip:
                results["generation"] = bench_generation(suite, scratch, threads)
            if "vision" not in skip:
                results["vision"] = bench_vision(suite, scratch, args.seconds, threads)
            if "training" not in skip:
                results["training"] = bench_training(suite, scratch, args.seconds, threads)
        finally:
            suite.stop()
    results["load_average_after"] = os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out / 'bench.json'}")
    # Only a full run into the default place rewrites the README's table.
    full = not skip and args.out == DEFAULT_OUT
    bench_report.report(results, args.out / "bench.png", ROOT / "README.md" if full else None)


async def hop_interleaved(direct: str, relay: str, gateway: str, seconds: float) -> dict[str, float]:
    """One caller calling direct, through a plain Python relay (tools.raw_relay) and through the gateway in
    turn (each first in turn): the hop's cost at c=1, free of the drift between runs one after the other."""
    sample = texts(4096)
    channels = [grpc.aio.insecure_channel(address) for address in (direct, relay, gateway)]
    stubs = [epb_grpc.EmbeddingServiceStub(channel) for channel in channels]
    times: list[list[float]] = [[], [], []]

    async def timed(route: int, i: int) -> float:
        start = time.perf_counter()
        await stubs[route].Embed(epb.EmbedRequest(texts=[sample[i % len(sample)]]))
        return time.perf_counter() - start

    try:
        for i in range(60):  # warm-up of every path
            await timed(i % 3, i)
        stop_at, i = time.perf_counter() + seconds, 0
        while time.perf_counter() < stop_at:
            for j in range(3):
                route = (i + j) % 3
                times[route].append(await timed(route, 3 * i + route))
            i += 1
    finally:
        for channel in channels:
            await channel.close()
    direct_ms, relay_ms, gateway_ms = (statistics.median(t) * 1e3 for t in times)
    return {
        "direct_p50_ms": direct_ms,
        "relay_p50_ms": relay_ms,
        "gateway_p50_ms": gateway_ms,
        "rounds": i,
    }


def start_raw_relay(backend: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tools.raw_relay", str(port), backend], cwd=ROOT)
    address = f"127.0.0.1:{port}"
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=60)
    return process, address


def bench_embeddings(suite: Suite, scratch: Path, seconds: float, threads: str) -> dict[str, Any]:
    directory = model_dir("embeddings", EMBEDDER, scratch)
    print(f"embeddings in process ({directory})...", flush=True)
    measure = embeddings_in_process(directory, seconds)
    embeddings = start_embeddings(suite, scratch, threads, "collections")
    gateway = start(suite, "gateway", {"EMBEDDINGS_ADDRESS": embeddings}, scratch)
    suite.wait_serving(["embeddings", "gateway"])
    out: dict[str, Any] = {"direct": [], "gateway": []}

    def serve() -> None:
        for c in CONCURRENCY:
            for route, address in (("direct", embeddings), ("gateway", gateway)):
                point = asyncio.run(embed_load(address, c, seconds))
                out[route].append(point)
                print(
                    f"  embeddings {route:<8} c={c:<3} {point['per_s']:8.1f}/s p50 {point['p50_ms']:.2f} ms", flush=True
                )

    local, _ = bracketed(measure, serve)
    out["in_process"] = local
    print(
        f"  in process: batch 1 {_brackets(local, 'batch1')}, best batch {_brackets(local, 'best')} texts/s", flush=True
    )
    relay, relay_address = start_raw_relay(embeddings)
    try:
        out["hop_c1"] = hop = asyncio.run(hop_interleaved(embeddings, relay_address, gateway, 2 * seconds))
    finally:
        relay.terminate()
        relay.wait(10)
    print(
        f"  hop at c=1, interleaved: gateway p50 +{hop['gateway_p50_ms'] - hop['direct_p50_ms']:.2f} ms, "
        f"plain relay +{hop['relay_p50_ms'] - hop['direct_p50_ms']:.2f} ms",
        flush=True,
    )
    suite.stop_component("gateway")
    suite.stop_component("embeddings")
    return out


def bench_generation(suite: Suite, scratch: Path, threads: str) -> dict[str, Any]:
    directory = model_dir("nlp", LLM, scratch)
    print(f"generation in process ({directory})...", flush=True)
    measure = generation_in_process(directory)
    nlp = start(
        suite,
        "nlp",
        {"MODEL_REPOSITORY": str(ROOT / "var" / "models" / "nlp"), "MODELS": LLM, "TORCH_THREADS": threads},
        scratch,
    )
    suite.wait_serving(["nlp"])
    points: list[dict[str, float]] = []

    def serve() -> dict[str, float]:
        for streams in STREAMS:
            point = asyncio.run(generation_load(nlp, streams, rounds=3 if streams == 1 else 2))
            points.append(point)
            print(
                f"  GenerateStream x{streams}: {point['tokens_per_s']:.1f} tok/s, "
                f"TTFT p50 {point['ttft_p50_ms']:.0f} ms",
                flush=True,
            )
        # All eight run NEW_TOKENS from the same instant: the work generate() batch 8 does, and the worst case
        # for the first token (the eight prefills share the cores).
        burst = asyncio.run(generation_load(nlp, 8, rounds=2, spread=False))
        print(
            f"  GenerateStream x8 arriving at once: {burst['tokens_per_s']:.1f} tok/s, "
            f"TTFT p50 {burst['ttft_p50_ms']:.0f} ms",
            flush=True,
        )
        return burst

    local, burst = bracketed(measure, serve)
    print(f"  generate(): batch 1 {_brackets(local, 'batch1')}, batch 8 {_brackets(local, 'batch8')} tok/s", flush=True)
    suite.stop_component("nlp")
    return {"in_process": local, "service": points, "burst": burst}


def bench_vision(suite: Suite, scratch: Path, seconds: float, threads: str) -> dict[str, Any]:
    directory = ROOT / "var" / "models" / "vision" / CLASSIFIER
    model_dir("vision", CLASSIFIER, scratch)
    image = sample_image()
    print("image classification in process...", flush=True)
    measure = vision_in_process(directory, image, seconds)
    vision = start(
        suite,
        "vision",
        {
            "MODEL_REPOSITORY": str(ROOT / "var" / "models" / "vision"),
            "MODELS": f"{CLASSIFIER},{FACES}",
            "GALLERIES_DIR": str(scratch / "galleries"),
            "TORCH_THREADS": threads,
        },
        scratch,
    )
    suite.wait_serving(["vision"])
    local, point = bracketed(measure, lambda: asyncio.run(classify_load(vision, image, 32, seconds)))
    print(
        f"  ClassifyImages c=32: {point['per_s']:.1f} images/s (in process best {_brackets(local, 'best')})", flush=True
    )
    portrait = sample_image("astronaut")
    measure_faces = faces_in_process(ROOT / "var" / "models" / "vision" / FACES, portrait, seconds)
    faces_local, faces = bracketed(
        measure_faces, lambda: asyncio.run(detect_faces_load(vision, portrait, FACE_CALLERS, seconds))
    )
    print(
        f"  DetectFaces c={FACE_CALLERS}: {faces['per_s']:.1f} images/s "
        f"(in process, one thread {_brackets(faces_local, 'best')})",
        flush=True,
    )
    suite.stop_component("vision")
    return {"in_process": local, "service": [point], "faces": {"in_process": faces_local, "service": [faces]}}


if __name__ == "__main__":
    main()
