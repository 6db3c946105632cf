"""Worst case of each public RPC at its limits: CPU seconds and peak memory per call.

`make bench-limits` starts each model service as a real process with the models
of var/models, sends each RPC one request at its limits (the largest texts,
counts and images the defaults allow), and reads the server process's CPU time
(/proc/PID/stat, all threads) and its peak resident memory above what it held
before the call (VmHWM, reset through /proc/PID/clear_refs). The tables go to
stdout and, with --write, into each service README between the
``bench-limits`` markers. The bound the project keeps: about 2 s CPU and 256 MB
per call on the machine it was measured on (2 cores, shared, loaded).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2 as epb
from lumen.nlp.v1 import nlp_pb2 as npb
from lumen.vision.v1 import vision_pb2 as vpb
from tools.suite import ROOT, Suite, free_port

CPU_BOUND_S, MEMORY_BOUND_MB = 2.0, 256
TICKS = os.sysconf("SC_CLK_TCK")
START, END = "<!-- bench-limits:start -->", "<!-- bench-limits:end -->"


@dataclass
class Case:
    method: str  # /package.Service/Method
    what: str  # the request, in words
    request: Callable[[], Any]  # a message, or a list of messages for a client stream
    streaming_response: bool = False


@dataclass
class Measured:
    case: Case
    code: str
    cpu_s: float
    peak_mb: float


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def measure(pid: int, channel: grpc.Channel, case: Case) -> Measured:
    request = case.request()
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    rss_kb, cpu = _status_kb(pid, "VmRSS"), _cpu_s(pid)
    code = "OK"
    try:
        if isinstance(request, list):
            call = channel.stream_stream(case.method, lambda m: m.SerializeToString(), lambda b: b)
            for _ in call(iter(request), timeout=600):
                pass
        elif case.streaming_response:
            for _ in channel.unary_stream(case.method, lambda m: m.SerializeToString(), lambda b: b)(
                request, timeout=600
            ):
                pass
        else:
            channel.unary_unary(case.method, lambda m: m.SerializeToString(), lambda b: b)(request, timeout=600)
    except grpc.RpcError as exc:
        code = exc.code().name
    del request
    time.sleep(0.2)  # threads finishing their share of the call
    return Measured(case, code, _cpu_s(pid) - cpu, (_status_kb(pid, "VmHWM") - rss_kb) / 1024)


def _text(chars: int, seed: int = 0) -> str:
    """Ordinary English with negations and contrasts (VADER's slow paths), ``chars`` long."""
    base = "The film was not good, but the cast was wonderful and I would not say it was boring at all. "
    return (base * (chars // len(base) + 1))[:chars]


def _jpeg(width: int, height: int, seed: int = 0) -> common_pb2.Image:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=70)
    return common_pb2.Image(content=out.getvalue())


def _png(width: int, height: int) -> common_pb2.Image:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (120, 60, 30)).save(out, format="PNG")
    return common_pb2.Image(content=out.getvalue())


def _faces_jpeg(side: int) -> common_pb2.Image:
    """A ``side`` x ``side`` JPEG tiled with one real face (scikit-image's astronaut), 150 px each: as many
    faces as the pixels allow, the dearest image for the face RPCs."""
    import skimage.data
    from PIL import Image

    face = Image.fromarray(np.ascontiguousarray(skimage.data.astronaut()[:300, 80:380])).resize((150, 150))
    canvas = Image.new("RGB", (side, side), (200, 200, 200))
    for y in range(0, side - 149, 150):
        for x in range(0, side - 149, 150):
            canvas.paste(face, (x, y))
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=85)
    return common_pb2.Image(content=out.getvalue())


NLP, EMB, VIS = "lumen.nlp.v1", "lumen.embeddings.v1", "lumen.vision.v1"


def nlp_cases() -> list[Case]:
    from services.nlp.analysis import (
        MAX_CLASSIFY,
        MAX_ENTITY_TEXTS,
        MAX_LABEL_CHARS,
        MAX_LABELS,
        MAX_LANGUAGE_TEXTS,
        MAX_ZERO_SHOT,
    )
    from services.nlp.generation import MAX_TRANSFORM_TEXTS
    from services.nlp.settings import NlpSettings
    from services.nlp.tokens import MAX_COUNT, MAX_TOKENIZE

    s = NlpSettings()
    longest = s.max_call_chars // s.max_text_chars  # texts of the longest length that fit the call

    def spread(n: int, budget: int = s.max_call_chars) -> list[str]:  # n texts sharing a character budget
        return [_text(min(s.max_text_chars, budget // n), i) for i in range(n)]

    encoder = s.max_encoder_chars
    # Zero-shot: the labels take half of the encoder's budget, the texts the other half.
    labels = [
        f"label {i} " + "x" * (MAX_LABEL_CHARS - 10) for i in range(min(MAX_LABELS, encoder // 2 // MAX_LABEL_CHARS))
    ]
    label_chars = sum(len(label) for label in labels)
    # ~1,000 characters reach MiniLM's 256-token truncation: the dearest texts per character.
    full = max(1, encoder // 1024)
    tell = "Tell me a long story about a dragon."
    return [
        Case(
            f"/{NLP}.TextAnalysisService/AnalyzeSentiment",
            f"{longest} texts x {s.max_text_chars:,} chars",
            lambda: npb.AnalyzeSentimentRequest(texts=[_text(s.max_text_chars)] * longest),
        ),
        Case(
            f"/{NLP}.TextAnalysisService/ClassifyText",
            f"{MAX_CLASSIFY} texts sharing {encoder:,} chars (max_encoder_chars)",
            lambda: npb.ClassifyTextRequest(texts=spread(MAX_CLASSIFY, encoder)),
        ),
        Case(
            f"/{NLP}.TextAnalysisService/ClassifyText",
            f"{full} texts x 1,024 chars (each at the 256-token truncation)",
            lambda: npb.ClassifyTextRequest(texts=spread(full, full * 1024)),
        ),
        Case(
            f"/{NLP}.TextAnalysisService/ClassifyZeroShot",
            f"{MAX_ZERO_SHOT} texts and {len(labels)} labels x {MAX_LABEL_CHARS} chars sharing {encoder:,} chars",
            lambda: npb.ClassifyZeroShotRequest(
                texts=spread(MAX_ZERO_SHOT, encoder - label_chars), candidate_labels=labels, multi_label=True
            ),
        ),
        Case(
            f"/{NLP}.TextAnalysisService/DetectLanguage",
            f"{MAX_LANGUAGE_TEXTS} texts sharing {s.max_call_chars:,} chars",
            lambda: npb.DetectLanguageRequest(texts=spread(MAX_LANGUAGE_TEXTS)),
        ),
        Case(
            f"/{NLP}.TextAnalysisService/ExtractEntities",
            f"{MAX_ENTITY_TEXTS} texts sharing {s.max_entity_chars:,} chars (max_entity_chars)",
            lambda: npb.ExtractEntitiesRequest(texts=spread(MAX_ENTITY_TEXTS, s.max_entity_chars)),
        ),
        Case(
            f"/{NLP}.TokenizerService/Tokenize",
            f"{MAX_TOKENIZE} texts sharing {s.max_tokenize_chars:,} chars (max_tokenize_chars)",
            lambda: npb.TokenizeRequest(texts=spread(MAX_TOKENIZE, s.max_tokenize_chars)),
        ),
        Case(
            f"/{NLP}.TokenizerService/CountTokens",
            f"{MAX_COUNT} texts sharing {s.max_call_chars:,} chars",
            lambda: npb.CountTokensRequest(texts=spread(MAX_COUNT)),
        ),
        Case(
            f"/{NLP}.TextGenerationService/Generate",
            "a short prompt, 64 new tokens (cost grows with max_new_tokens: see the note)",
            lambda: npb.GenerateRequest(prompt=tell, params=npb.GenerationParams(max_new_tokens=64, seed=1)),
        ),
        Case(
            f"/{NLP}.TextGenerationService/Generate",
            f"a short prompt, max_new_tokens {s.max_new_tokens} (the limit)",
            lambda: npb.GenerateRequest(
                prompt=tell, params=npb.GenerationParams(max_new_tokens=s.max_new_tokens, seed=1, stop=["\x00"])
            ),
        ),
        Case(
            f"/{NLP}.TextGenerationService/GenerateStream",
            f"a short prompt, max_new_tokens {s.max_new_tokens} (the limit)",
            lambda: npb.GenerateStreamRequest(
                prompt=tell, params=npb.GenerationParams(max_new_tokens=s.max_new_tokens, seed=1, stop=["\x00"])
            ),
            streaming_response=True,
        ),
        Case(
            f"/{NLP}.TextGenerationService/Generate",
            "a 6,000-char prompt (~1,500 tokens of prefill), 16 new tokens",
            lambda: npb.GenerateRequest(
                prompt=_text(6000) + " " + tell, params=npb.GenerationParams(max_new_tokens=16, seed=1)
            ),
        ),
        Case(
            f"/{NLP}.TextGenerationService/TransformText",
            f"{MAX_TRANSFORM_TEXTS} texts x 1,000 chars, summarize, 64 new tokens each",
            lambda: npb.TransformTextRequest(
                task=npb.TEXT_TASK_SUMMARIZE,
                texts=[_text(1000, i) for i in range(MAX_TRANSFORM_TEXTS)],
                params=npb.GenerationParams(max_new_tokens=64, seed=1),
            ),
        ),
    ]


def embeddings_cases() -> list[Case]:
    from services.embeddings.settings import EmbeddingsSettings

    s = EmbeddingsSettings()
    longest = [_text(s.max_text_chars, i) for i in range(max(1, s.max_call_chars // s.max_text_chars))]
    many = [_text(s.max_call_chars // s.max_texts, i) for i in range(s.max_texts)]
    half = many[: s.max_texts // 2]
    full = [_text(1024, i) for i in range(s.max_call_chars // 1024)]  # each at MiniLM's 256-token truncation
    words = (["the", "government", "said", "police", "people", "year", "world", "minister"] * s.max_words)[
        : s.max_words
    ]
    budget = f"{s.max_call_chars:,} chars"
    return [
        Case(
            f"/{EMB}.EmbeddingService/Embed",
            f"{len(longest)} texts x {s.max_text_chars:,} chars (max_call_chars {budget})",
            lambda: epb.EmbedRequest(texts=longest),
        ),
        Case(
            f"/{EMB}.EmbeddingService/Embed",
            f"{s.max_texts} texts sharing {budget}",
            lambda: epb.EmbedRequest(texts=many),
        ),
        Case(
            f"/{EMB}.EmbeddingService/EmbedStream",
            f"4 chunks of {len(longest)} x {s.max_text_chars:,} chars (each chunk as one Embed, one at a time)",
            lambda: [epb.EmbedStreamRequest(texts=longest)] * 4,
        ),
        Case(
            f"/{EMB}.EmbeddingService/Similarity",
            f"{len(half)} sources x {len(half)} candidates sharing {budget}",
            lambda: epb.SimilarityRequest(sources=half, candidates=half),
        ),
        Case(
            f"/{EMB}.WordEmbeddingService/GetWordVectors",
            f"{s.max_words} words",
            lambda: epb.GetWordVectorsRequest(words=words),
        ),
        Case(
            f"/{EMB}.WordEmbeddingService/MostSimilarWords",
            f"{s.max_words} words (positive + negative), top_k {s.max_top_k}",
            lambda: epb.MostSimilarWordsRequest(
                positive=words[: s.max_words // 2], negative=words[s.max_words // 2 :], top_k=s.max_top_k
            ),
        ),
        Case(
            f"/{EMB}.CollectionService/UpsertDocuments",
            f"{s.max_upsert_documents} documents sharing {budget}",
            lambda: epb.UpsertDocumentsRequest(
                collection="bench",
                documents=[epb.Document(id=f"doc-{i}", text=t) for i, t in enumerate(many[: s.max_upsert_documents])],
            ),
        ),
        Case(
            f"/{EMB}.CollectionService/UpsertDocuments",
            f"{len(full)} documents x 1,024 chars (each at the 256-token truncation)",
            lambda: epb.UpsertDocumentsRequest(
                collection="bench", documents=[epb.Document(id=f"full-{i}", text=t) for i, t in enumerate(full)]
            ),
        ),
        Case(
            f"/{EMB}.CollectionService/Search",
            f"a {s.max_text_chars:,}-char query, top_k {s.max_top_k}, documents included",
            lambda: epb.SearchRequest(
                collection="bench", text=_text(s.max_text_chars), top_k=s.max_top_k, include_documents=True
            ),
        ),
    ]


def vision_cases() -> list[Case]:
    from services.vision.faces import ENROL_FACES_PER_IMAGE, MAX_FACES, MAX_TOP_K
    from services.vision.settings import VisionSettings

    s = VisionSettings()
    per_image = s.max_call_pixels // s.max_classify_images
    side = int(per_image**0.5)
    big = int(s.max_image_pixels**0.5)
    detect = min(s.max_detect_call_pixels, s.max_image_pixels)
    detect_side = int((detect // s.max_images) ** 0.5)
    detect_big = int(detect**0.5)
    faces, big_faces = _faces_jpeg(detect_side), _faces_jpeg(detect_big)
    face_images = min(s.max_images, s.max_call_faces)
    faces_each = s.max_call_faces // face_images
    enrol_images = s.max_call_faces // ENROL_FACES_PER_IMAGE
    return [
        Case(
            f"/{VIS}.ImageAnalysisService/ClassifyImages",
            f"{s.max_classify_images} JPEGs of {side} x {side} ({s.max_call_pixels / 1e6:.0f} MP in all)",
            lambda: vpb.ClassifyImagesRequest(images=[_jpeg(side, side, i) for i in range(s.max_classify_images)]),
        ),
        Case(
            f"/{VIS}.ImageAnalysisService/ClassifyImages",
            f"2 JPEGs of {big} x {big} (the per-image limit, {s.max_image_pixels / 1e6:.0f} MP)",
            lambda: vpb.ClassifyImagesRequest(images=[_jpeg(big, big, i) for i in range(2)]),
        ),
        Case(
            f"/{VIS}.ImageAnalysisService/ClassifyImages",
            "a 100,000 x 10 PNG (3 KB; the resize bound)",
            lambda: vpb.ClassifyImagesRequest(images=[_png(100_000, 10)]),
        ),
        Case(
            f"/{VIS}.ImageAnalysisService/DetectObjects",
            f"{s.max_images} JPEGs of {detect_side} x {detect_side}",
            lambda: vpb.DetectObjectsRequest(images=[_jpeg(detect_side, detect_side, i) for i in range(s.max_images)]),
        ),
        Case(
            f"/{VIS}.ImageAnalysisService/DetectFaces",
            f"{s.max_images} JPEGs of {detect_side} x {detect_side}, landmarks",
            lambda: vpb.DetectFacesRequest(
                images=[_jpeg(detect_side, detect_side, i) for i in range(s.max_images)], landmarks=True
            ),
        ),
        Case(
            f"/{VIS}.ImageAnalysisService/DetectFaces",
            f"1 JPEG of {detect_big} x {detect_big}, landmarks",
            lambda: vpb.DetectFacesRequest(images=[_jpeg(detect_big, detect_big, 0)], landmarks=True),
        ),
        Case(
            f"/{VIS}.FaceRecognitionService/EmbedFaces",
            f"{face_images} JPEGs of {detect_side} x {detect_side}",
            lambda: vpb.EmbedFacesRequest(images=[_jpeg(detect_side, detect_side, i) for i in range(face_images)]),
        ),
        Case(
            f"/{VIS}.FaceRecognitionService/VerifyFaces",
            f"2 JPEGs of {detect_big} x {detect_big} (each at the detectors' limit)",
            lambda: vpb.VerifyFacesRequest(
                image_a=_jpeg(detect_big, detect_big, 1), image_b=_jpeg(detect_big, detect_big, 2)
            ),
        ),
        Case(
            f"/{VIS}.ImageAnalysisService/DetectFaces",
            f"{s.max_images} JPEGs of {detect_side} x {detect_side} tiled with faces",
            lambda: vpb.DetectFacesRequest(images=[faces] * s.max_images),
        ),
        Case(
            f"/{VIS}.FaceRecognitionService/EmbedFaces",
            f"{face_images} JPEGs of {detect_side} x {detect_side} tiled with faces, max_faces {faces_each} "
            f"(the call's face budget, {s.max_call_faces})",
            lambda: vpb.EmbedFacesRequest(images=[faces] * face_images, max_faces=faces_each),
        ),
        Case(
            f"/{VIS}.FaceRecognitionService/EmbedFaces",
            f"1 JPEG of {detect_big} x {detect_big} tiled with faces, max_faces {s.max_call_faces}",
            lambda: vpb.EmbedFacesRequest(images=[big_faces], max_faces=s.max_call_faces),
        ),
        Case(
            f"/{VIS}.FaceRecognitionService/EmbedFaces",
            f"{s.max_images} JPEGs tiled with faces, max_faces {MAX_FACES} (over the budget)",
            lambda: vpb.EmbedFacesRequest(images=[faces] * s.max_images, max_faces=MAX_FACES),
        ),
        Case(
            f"/{VIS}.FaceRecognitionService/EnrollPerson",
            f"{enrol_images} JPEGs of {detect_side} x {detect_side} tiled with faces (the most one call takes)",
            lambda: vpb.EnrollPersonRequest(gallery="bench", person_id="p", images=[faces] * enrol_images),
        ),
        Case(
            f"/{VIS}.FaceRecognitionService/IdentifyFaces",
            f"{face_images} JPEGs of {detect_side} x {detect_side} tiled with faces, max_faces {faces_each}, "
            f"top_k {MAX_TOP_K}",
            lambda: vpb.IdentifyFacesRequest(
                gallery="bench", images=[faces] * face_images, max_faces=faces_each, top_k=MAX_TOP_K
            ),
        ),
    ]


SERVICES: dict[str, Callable[[], list[Case]]] = {
    "nlp": nlp_cases,
    "embeddings": embeddings_cases,
    "vision": vision_cases,
}


def run_service(name: str, scratch: Path, only: str | None) -> list[Measured]:
    env = {
        f"LUMEN_{name.upper()}_MODEL_REPOSITORY": str(ROOT / "var" / "models" / name),
        "LUMEN_EMBEDDINGS_COLLECTIONS_DIR": str(scratch / "collections"),
        "LUMEN_VISION_GALLERIES_DIR": str(scratch / "galleries"),
    }
    suite = Suite()
    component = suite.start_component(name, free_port(), env, scratch)
    try:
        suite.wait_serving(timeout=600)
        out = []
        with grpc.insecure_channel(
            component.address,
            options=[("grpc.max_send_message_length", 256 << 20), ("grpc.max_receive_message_length", 256 << 20)],
        ) as channel:
            if name == "embeddings":
                channel.unary_unary(
                    f"/{EMB}.CollectionService/CreateCollection", lambda m: m.SerializeToString(), lambda b: b
                )(epb.CreateCollectionRequest(name="bench"), timeout=60)
            if name == "vision":
                channel.unary_unary(
                    f"/{VIS}.FaceRecognitionService/CreateGallery", lambda m: m.SerializeToString(), lambda b: b
                )(vpb.CreateGalleryRequest(name="bench"), timeout=60)
            for case in SERVICES[name]():
                if only and only not in case.method:
                    continue
                result = measure(component.process.pid, channel, case)
                short = case.method.rsplit("/", 1)[1]
                print(f"  {short:<18} {result.code:<18} {result.cpu_s:7.2f} s {result.peak_mb:6.0f} MB  {case.what}")
                out.append(result)
        return out
    finally:
        suite.stop()


def table(results: list[Measured]) -> Iterator[str]:
    yield "| RPC | request at the limits | status | CPU s | peak MB |"
    yield "|---|---|---|---:|---:|"
    for r in results:
        flag = " ⚠" if r.cpu_s > CPU_BOUND_S or r.peak_mb > MEMORY_BOUND_MB else ""
        method = r.case.method.rsplit("/", 1)[1]
        yield f"| {method} | {r.case.what} | {r.code} | {r.cpu_s:.2f}{flag} | {r.peak_mb:.0f} |"


def write_readme(service: str, lines: list[str]) -> None:
    readme = ROOT / "services" / service / "README.md"
    text = readme.read_text()
    block = f"{START}\n" + "\n".join(lines) + f"\n{END}"
    if START in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n## Cost at the limits (make bench-limits)\n\n" + block + "\n"
    readme.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("services", nargs="*", default=list(SERVICES), help="services to measure")
    parser.add_argument("--only", help="only methods whose path contains this")
    parser.add_argument("--write", action="store_true", help="write the tables into the service READMEs")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    for name in args.services:
        print(f"{name} (load average {load:.1f} on {os.cpu_count()} cores):", flush=True)
        with tempfile.TemporaryDirectory() as scratch:
            results = run_service(name, Path(scratch), args.only)
        lines = [
            f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} shared cores (load average {load:.1f}: "
            f"other work was running; CPU seconds count only the server process). ⚠: above the bound of "
            f"~{CPU_BOUND_S:.0f} s CPU or {MEMORY_BOUND_MB} MB per call.",
            "",
            *table(results),
        ]
        print("\n".join(lines), flush=True)
        if args.write:
            write_readme(name, lines)


if __name__ == "__main__":
    main()
