"""Correctness under load: many concurrent mixed calls (embeddings, image classification, generation),
each checked against the answer its own input gets alone, so that an answer that belongs to another
caller (batching that mixes results up) is counted.

Inputs are distinct per kind (texts, images, prompts); the reference answers are taken first, one call
at a time. Under load, an embedding must be the nearest of all references to its own text's (and close
to it), a classification must carry its own image's labels, a greedy generation its own prompt's text.

``python -m tools.load_check --calls 10000`` runs against a suite it starts (embeddings, nlp with the
LLM only, vision with the classifier only, and a gateway in front); tests/e2e/test_mixed_load.py runs a
smaller number (LUMEN_LOAD_CALLS).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc.aio
import numpy as np

from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2 as epb
from lumen.embeddings.v1 import embeddings_pb2_grpc as epb_grpc
from lumen.nlp.v1 import nlp_pb2 as npb
from lumen.nlp.v1 import nlp_pb2_grpc as npb_grpc
from lumen.vision.v1 import vision_pb2 as vpb
from lumen.vision.v1 import vision_pb2_grpc as vpb_grpc
from tools.suite import ROOT, Suite, free_port

LLM, CLASSIFIER, EMBEDDER = "smollm2-135m-instruct", "efficientnet-lite0", "all-minilm-l6-v2"
TEXTS = [f"Order {i} of the {w} shipment left the warehouse on day {i % 28}." for i, w in enumerate("abcdefghijklmnop")]
PROMPTS = [
    f"Item {i}: the word '{w}' means" for i, w in enumerate(["river", "stone", "cloud", "bread", "lamp", "wolf"])
]
GENERATION_TOKENS = 4


@dataclass
class Tally:
    calls: Counter[str] = field(default_factory=Counter)
    foreign: Counter[str] = field(default_factory=Counter)  # answers that belong to another input
    errors: Counter[str] = field(default_factory=Counter)  # statuses other than OK (overload sheds count here)

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def images() -> list[bytes]:
    """Distinct real photographs (scikit-image's), as PNG."""
    from PIL import Image
    from skimage import data

    out = []
    for name in ("chelsea", "astronaut", "coffee", "rocket", "hubble_deep_field"):
        pixels = getattr(data, name)()
        buffer = io.BytesIO()
        Image.fromarray(pixels).convert("RGB").resize((256, 256)).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


class MixedLoad:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.embed = epb_grpc.EmbeddingServiceStub(channel)
        self.vision = vpb_grpc.ImageAnalysisServiceStub(channel)
        self.generate = npb_grpc.TextGenerationServiceStub(channel)
        self.images = images()
        self.vectors: np.ndarray = np.zeros(0)
        self.labels: list[tuple[int, ...]] = []
        self.texts: list[str] = []

    async def _embed(self, i: int) -> np.ndarray:
        response = await self.embed.Embed(epb.EmbedRequest(texts=[TEXTS[i]], normalize=True), timeout=120)
        return np.array(response.embeddings[0].values, dtype=np.float32)

    async def _classify(self, i: int) -> tuple[int, ...]:
        request = vpb.ClassifyImagesRequest(images=[common_pb2.Image(content=self.images[i])], top_k=3)
        response = await self.vision.ClassifyImages(request, timeout=120)
        return tuple(label.label_id for label in response.results[0].labels)

    async def _complete(self, i: int) -> str:
        params = npb.GenerationParams(max_new_tokens=GENERATION_TOKENS, temperature=0.0)
        response = await self.generate.Generate(npb.GenerateRequest(prompt=PROMPTS[i], params=params), timeout=300)
        return response.text

    async def references(self) -> None:
        """Every input's answer alone, one call at a time."""
        self.vectors = np.stack([await self._embed(i) for i in range(len(TEXTS))])
        self.labels = [await self._classify(i) for i in range(len(self.images))]
        self.texts = [await self._complete(i) for i in range(len(PROMPTS))]
        if len(set(self.labels)) < 2 or len(set(self.texts)) < 2:
            raise RuntimeError("the references do not tell the inputs apart; pick more distinct inputs")

    async def one(self, kind: str, i: int, tally: Tally) -> None:
        tally.calls[kind] += 1
        try:
            if kind == "embed":
                vector = await self._embed(i)
                scores = self.vectors @ vector
                if int(np.argmax(scores)) != i or scores[i] < 0.999:
                    tally.foreign[kind] += 1
            elif kind == "classify":
                if await self._classify(i) != self.labels[i]:
                    tally.foreign[kind] += 1
            elif await self._complete(i) != self.texts[i]:
                tally.foreign[kind] += 1
        except grpc.aio.AioRpcError as exc:
            tally.errors[f"{kind} {exc.code().name}"] += 1

    async def run(self, calls: int, concurrency: int, seed: int = 0) -> Tally:
        """``calls`` mixed calls from ``concurrency`` callers at once; mostly embeddings, some generations."""
        rng = random.Random(seed)
        kinds = rng.choices(["embed", "classify", "generate"], weights=[80, 15, 5], k=calls)
        plan = [
            (k, rng.randrange(len(TEXTS) if k == "embed" else len(self.images) if k == "classify" else len(PROMPTS)))
            for k in kinds
        ]
        tally = Tally()
        queue = iter(plan)

        async def caller() -> None:
            for kind, i in queue:
                await self.one(kind, i, tally)

        await asyncio.gather(*(caller() for _ in range(concurrency)))
        return tally


@contextmanager
def suite_for_load(scratch: Path) -> Iterator[str]:
    """Embeddings, nlp (LLM only), vision (classifier only) and a gateway; yields the gateway's address."""
    suite = Suite()
    models = ROOT / "var" / "models"
    common = {"HOST": "127.0.0.1", "LOG_LEVEL": "WARNING"}
    specs = {
        "embeddings": {"MODELS": EMBEDDER, "COLLECTIONS_DIR": str(scratch / "collections")},
        "nlp": {"MODELS": LLM},
        "vision": {"MODELS": CLASSIFIER, "GALLERIES_DIR": str(scratch / "galleries")},
    }
    try:
        addresses = {}
        for name, env in specs.items():
            values = {**common, "MODEL_REPOSITORY": str(models / name), **env}
            component = suite.start_component(
                name, free_port(), {f"LUMEN_{name.upper()}_{k}": v for k, v in values.items()}, scratch
            )
            addresses[f"LUMEN_GATEWAY_{name.upper()}_ADDRESS"] = component.address
        gateway = suite.start_component("gateway", free_port(), {**addresses, "LUMEN_GATEWAY_HOST": "127.0.0.1"})
        suite.wait_serving(timeout=600)
        yield gateway.address
    finally:
        suite.stop()


async def check(address: str, calls: int, concurrency: int) -> Tally:
    async with grpc.aio.insecure_channel(address) as channel:
        load = MixedLoad(channel)
        await load.references()
        return await load.run(calls, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description="mixed concurrent calls, each answer checked against its own input")
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lumen-load-") as scratch, suite_for_load(Path(scratch)) as address:
        tally = asyncio.run(check(address, args.calls, args.concurrency))
    print(f"{tally.total} calls: {dict(tally.calls)}")
    print(f"answers that belong to another caller: {sum(tally.foreign.values())} {dict(tally.foreign)}")
    print(f"errors: {dict(tally.errors)}")
    if tally.foreign:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
