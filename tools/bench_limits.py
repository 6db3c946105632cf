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
import hashlib
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
from lumen.tabular.v1 import tabular_pb2 as tbpb
from lumen.training.v1 import training_pb2 as tpb
from lumen.vision.v1 import vision_pb2 as vpb
from tools.suite import MODEL_SERVICES as SERVING
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
    streaming_request: bool = False  # request() gives an iterator of messages, sent as they come (one response)


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
        if case.streaming_request:
            channel.stream_unary(case.method, lambda m: m.SerializeToString(), lambda b: b)(iter(request), timeout=600)
        elif isinstance(request, list):
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


# SmolLM2 counts on from this, greedy, without an end-of-text token: every allowed token is generated.
COUNTING = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"


def counting_stream(what: str, tokens: int) -> Case:
    """GenerateStream of the counting prompt, greedy, `tokens` new tokens."""
    return Case(
        f"/{NLP}.TextGenerationService/GenerateStream",
        what,
        lambda: npb.GenerateStreamRequest(
            prompt=COUNTING, params=npb.GenerationParams(max_new_tokens=tokens, temperature=0)
        ),
        streaming_response=True,
    )


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
            "a short prompt, 64 new tokens (it may end earlier, at its end-of-text token)",
            lambda: npb.GenerateRequest(prompt=tell, params=npb.GenerationParams(max_new_tokens=64, seed=1)),
        ),
        counting_stream("a counting prompt, greedy, 64 new tokens (all generated)", 64),
        Case(
            f"/{NLP}.TextGenerationService/Generate",
            f"a counting prompt, greedy, max_new_tokens {s.max_new_tokens} (the limit; all generated)",
            lambda: npb.GenerateRequest(
                prompt=COUNTING, params=npb.GenerationParams(max_new_tokens=s.max_new_tokens, temperature=0)
            ),
        ),
        Case(
            f"/{NLP}.TextGenerationService/Generate",
            f"a 3,800-char prompt (under max_prompt_tokens, {s.max_prompt_tokens}), 16 new tokens",
            lambda: npb.GenerateRequest(
                prompt=_text(3800) + " " + tell, params=npb.GenerationParams(max_new_tokens=16, seed=1)
            ),
        ),
        Case(
            f"/{NLP}.TextGenerationService/Generate",
            "a 6,000-char prompt (~1,500 tokens, over max_prompt_tokens)",
            lambda: npb.GenerateRequest(
                prompt=_text(6000) + " " + tell, params=npb.GenerationParams(max_new_tokens=16, seed=1)
            ),
        ),
        Case(
            f"/{NLP}.TextGenerationService/TransformText",
            f"4 texts x 700 chars, summarize, max_new_tokens unset (they share {s.max_new_tokens}: 256 each)",
            lambda: npb.TransformTextRequest(
                task=npb.TEXT_TASK_SUMMARIZE,
                texts=[_text(700, i) for i in range(4)],
                params=npb.GenerationParams(seed=1, stop=["\x00"]),
            ),
        ),
        Case(
            f"/{NLP}.TextGenerationService/TransformText",
            f"{MAX_TRANSFORM_TEXTS} texts x 1,000 chars, summarize, 64 new tokens each (over max_prompt_tokens)",
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
    detect_pair = int((detect // 2) ** 0.5)
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
            f"2 JPEGs of {detect_pair} x {detect_pair} (they share the call's {detect / 1e6:.0f} MP; "
            "no face found in full scans)",
            lambda: vpb.VerifyFacesRequest(
                image_a=_jpeg(detect_pair, detect_pair, 1), image_b=_jpeg(detect_pair, detect_pair, 2)
            ),
        ),
        Case(
            f"/{VIS}.FaceRecognitionService/VerifyFaces",
            f"2 JPEGs of {detect_big} x {detect_big} (each at the limit: together past it)",
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


TRN, TAB = "lumen.training.v1", "lumen.tabular.v1"
CHUNK = 4 << 20  # UploadDataset's largest chunk, 4 MiB
# What the training and tabular cases share at run time: the channel and scratch folder of the service
# measured (set by run_service) and the ids earlier cases made.
_live: dict[str, Any] = {}


def _call(method: str, request: Any, reply: Any) -> Any:
    """One unary call outside the measurement (set-up, ids), parsed into ``reply``'s type."""
    raw = _live["channel"].unary_unary(method, lambda m: m.SerializeToString(), lambda b: b)(request, timeout=900)
    return reply.FromString(raw)


def _upload(fmt: int, parts: Iterator[bytes], key: str = "") -> Iterator[tpb.UploadDatasetRequest]:
    """An UploadDataset stream: the spec, then ``parts`` in 4 MiB chunks; the sha256 (the id) goes to _live[key]."""
    yield tpb.UploadDatasetRequest(spec=tpb.DatasetSpec(format=fmt, display_name="bench-limits"))
    digest, buffer = hashlib.sha256(), bytearray()
    for part in parts:
        buffer += part
        while len(buffer) >= CHUNK:
            chunk = bytes(buffer[:CHUNK])
            del buffer[:CHUNK]
            digest.update(chunk)
            yield tpb.UploadDatasetRequest(chunk=chunk)
    if buffer:
        digest.update(buffer)
        yield tpb.UploadDatasetRequest(chunk=bytes(buffer))
    if key:
        _live[key] = digest.hexdigest()


def _lines(pool: list[bytes], budget: int, head: bytes = b"", over: bool = False) -> Iterator[bytes]:
    """``head``, then the lines of ``pool`` over and over: the most whole lines within ``budget`` bytes, or with
    ``over`` one line more (just past it)."""
    size, batch = len(head), [head]
    i = 0
    while True:
        line = pool[i % len(pool)]
        i += 1
        if size + len(line) > budget:
            if over:
                batch.append(line)
            break
        size += len(line)
        batch.append(line)
        if len(batch) >= 1024:
            yield b"".join(batch)
            batch = []
    yield b"".join(batch)


def _csv_pool(features: int, labels: int, rows: int = 64, seed: int = 0) -> tuple[bytes, list[bytes]]:
    """A CSV header of ``features`` numeric columns and a label, and ``rows`` distinct rows (values like 3.14)."""
    rng = np.random.default_rng(seed)
    head = (",".join(f"f{j}" for j in range(features)) + ",label\n").encode()
    values = rng.normal(0, 3, (rows, features))
    pool = [(",".join(f"{v:.2f}" for v in values[r]) + f",c{r % labels}\n").encode() for r in range(rows)]
    return head, pool


_SENTENCES = [
    b"The film was not good, but the cast was wonderful and I would not say it was boring at all.",
    b"A quiet, careful story about a family that moves to the coast and learns to sail again.",
    b"Too long by half, and the jokes land flat; still, the music is lovely in places.",
    b"Nothing in it surprised me, yet I watched to the end and would see it once more.",
]


def _image_zip(path: Path, budget: int, count: int) -> Path:
    """``count`` 8 x 8 grey PNGs (scikit-learn's digits, one folder per digit), or as many as a zip of ``budget``
    bytes holds."""
    import zipfile

    import sklearn.datasets
    from PIL import Image

    digits = sklearn.datasets.load_digits()
    pngs = []
    for image in digits.images[:100]:
        out = io.BytesIO()
        Image.fromarray((image * 16).clip(0, 255).astype(np.uint8), "L").save(out, format="PNG")
        pngs.append(out.getvalue())
    central = 22 + 56 + 20  # end of central directory, with its zip64 record and locator
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        i = 0
        while True:
            name = f"{digits.target[i % 100]}/{i}.png"
            data = pngs[i % 100]
            entry = 30 + len(name) + len(data)
            if i >= count or archive.fp.tell() + central + entry + 46 + len(name) + 64 > budget:  # type: ignore[union-attr]
                break
            archive.writestr(name, data)
            central += 46 + len(name)
            i += 1
    assert path.stat().st_size <= budget, path.stat().st_size
    return path


def _huge_png_zip(path: Path, side: int, compress_level: int = 0) -> Path:
    """One ``side`` x ``side`` RGB PNG of one colour (by default with its pixel data stored), deflated in the zip."""
    import zipfile

    from PIL import Image

    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("big/one.png", "w", force_zip64=True) as out,
    ):
        Image.new("RGB", (side, side), (120, 60, 30)).save(out, format="PNG", compress_level=compress_level)
    return path


def _file(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            yield block


def _fill_training() -> None:
    """1,000 datasets (each listing 1,000 labels) and 1,000 ended jobs, for the largest List pages."""
    head, _ = _csv_pool(16, 1)
    for d in range(1000):
        rows = [(",".join(["0"] * 16) + f",class-{d:04}-{r:04}\n").encode() for r in range(1000)]
        requests = list(_upload(tpb.DATASET_FORMAT_CSV, iter([head, *rows])))
        _live["channel"].stream_unary(
            f"/{TRN}.DatasetService/UploadDataset", lambda m: m.SerializeToString(), lambda b: b
        )(iter(requests), timeout=600)
    head, pool = _csv_pool(4, 3, rows=30)
    small = tpb.UploadDatasetResponse.FromString(
        _live["channel"].stream_unary(
            f"/{TRN}.DatasetService/UploadDataset", lambda m: m.SerializeToString(), lambda b: b
        )(_upload(tpb.DATASET_FORMAT_CSV, iter([head, *pool])), timeout=600)
    )
    _live["small_id"] = small.dataset.id
    listed = _call(
        f"/{TRN}.DatasetService/ListDatasets", tpb.ListDatasetsRequest(page_size=1000), tpb.ListDatasetsResponse
    )
    _live["datasets_mb"] = listed.ByteSize() / 1e6
    for j in range(1000):
        request = _job_request(small.dataset.id, f"{j:04}")
        job = _call(f"/{TRN}.TrainingService/CreateTrainingJob", request, tpb.CreateTrainingJobResponse).job
        _call(
            f"/{TRN}.TrainingService/CancelTrainingJob",
            tpb.CancelTrainingJobRequest(id=job.id),
            tpb.CancelTrainingJobResponse,
        )
    jobs = _call(
        f"/{TRN}.TrainingService/ListTrainingJobs",
        tpb.ListTrainingJobsRequest(page_size=1000),
        tpb.ListTrainingJobsResponse,
    )
    _live["jobs_mb"] = jobs.ByteSize() / 1e6
    assert len(listed.datasets) == len(jobs.jobs) == 1000, (len(listed.datasets), len(jobs.jobs))


def _job_request(dataset_id: str, tag: str) -> tpb.CreateTrainingJobRequest:
    """A tabular-dense job with every hyperparameter set and a 128-character request id."""
    return tpb.CreateTrainingJobRequest(
        recipe="tabular-dense",
        dataset_id=dataset_id,
        hyperparameters={"epochs": 1000, "hidden_units": 1024, "batch_size": 16, "learning_rate": 0.01, "dropout": 0.5},
        model_name="bench-limits",
        validation_split=0.5,
        seed=7,
        request_id=(tag + "-" + "r" * 128)[:128],
    )


def _job_id(tag: str) -> str:
    """The id of the job made with ``tag`` (its request id repeated returns it, at no cost to the measure)."""
    reply = _call(f"/{TRN}.TrainingService/CreateTrainingJob", _job_request("", tag), tpb.CreateTrainingJobResponse)
    return str(reply.job.id)


def _cancel(tag: str) -> bool:
    """Cancel the job made with ``tag`` if it is still queued (so that its dataset may be deleted)."""
    try:
        job_id = _job_id(tag)
        _call(
            f"/{TRN}.TrainingService/CancelTrainingJob",
            tpb.CancelTrainingJobRequest(id=job_id),
            tpb.CancelTrainingJobResponse,
        )
    except grpc.RpcError as exc:
        print(f"  (cancel {tag}: {exc.code().name})")
    return True


def training_cases() -> list[Case]:
    from services.training.settings import TrainingSettings
    from shared.settings import load

    settings = load(TrainingSettings, "LUMEN_TRAINING")  # the limits the service runs with
    limit = settings.max_dataset_bytes
    mib = f"{limit / 2**20:.0f} MiB"
    scratch: Path = _live["scratch"]
    csv_head, csv_pool = _csv_pool(1023, 10)
    jsonl = [
        b'{"text": "' + s + b'", "label": "' + (b"pos" if i % 2 else b"neg") + b'"}\n' for i, s in enumerate(_SENTENCES)
    ]
    text = [s + b"\n" for s in _SENTENCES]
    most, pixels, inflated = settings.max_dataset_images, settings.max_image_pixels, settings.max_image_bytes
    side_bytes = int((inflated / 3) ** 0.5) - 8  # the widest stored RGB PNG that inflates within max_image_bytes
    side_pixels = int(pixels**0.5)
    zips = {
        "most": _image_zip(scratch / "most.zip", limit, most),
        "over": _image_zip(scratch / "over.zip", limit, most + 1),
        "stored": _huge_png_zip(scratch / "stored.zip", side_bytes),
        "pixels": _huge_png_zip(scratch / "pixels.zip", side_pixels, compress_level=9),
        "huge": _huge_png_zip(scratch / "huge.zip", 9000),
        "bomb": _huge_png_zip(scratch / "bomb.zip", 14000),
    }
    kb = {name: path.stat().st_size // 1024 for name, path in zips.items()}

    def upload(what: str, fmt: int, parts: Callable[[], Iterator[bytes]], key: str = "") -> Case:
        return Case(
            f"/{TRN}.DatasetService/UploadDataset", what, lambda: _upload(fmt, parts(), key), streaming_request=True
        )

    def zipped(what: str, name: str) -> Case:
        return upload(f"IMAGE_ZIP of {kb[name]:,} KB: {what}", tpb.DATASET_FORMAT_IMAGE_ZIP, lambda: _file(zips[name]))

    def one_line() -> Iterator[bytes]:  # a TEXT corpus of one line: no newline in the whole stream
        block = (b"word " * (CHUNK // 5 + 1))[:CHUNK]
        for _ in range(limit // CHUNK):
            yield block

    return [
        Case(
            f"/{TRN}.DatasetService/ListDatasets",
            f"page_size 1000 (the most) of 1,001 datasets, each listing 1,000 labels "
            f"({_live['datasets_mb']:.1f} MB answered)",
            lambda: tpb.ListDatasetsRequest(page_size=1000),
        ),
        Case(
            f"/{TRN}.TrainingService/ListTrainingJobs",
            f"page_size 1000 (the most) of 1,000 cancelled jobs ({_live['jobs_mb']:.1f} MB answered)",
            lambda: tpb.ListTrainingJobsRequest(page_size=1000),
        ),
        Case(
            f"/{TRN}.TrainingService/GetTrainingUsage",
            "over 1,000 jobs, no period",
            lambda: tpb.GetTrainingUsageRequest(),
        ),
        Case(f"/{TRN}.TrainingService/ListRecipes", "every recipe", lambda: tpb.ListRecipesRequest()),
        Case(
            f"/{TRN}.TrainingService/CreateTrainingJob",
            "tabular-dense on a 30-row CSV (the call itself)",
            lambda: _job_request(_live["small_id"], "small"),
        ),
        Case(
            f"/{TRN}.TrainingService/GetTrainingJob",
            "a queued job",
            lambda: tpb.GetTrainingJobRequest(id=_job_id("small")),
        ),
        Case(
            f"/{TRN}.TrainingService/CancelTrainingJob",
            "a queued job",
            lambda: tpb.CancelTrainingJobRequest(id=_job_id("small")),
        ),
        Case(
            f"/{TRN}.TrainingService/WatchTrainingJob",
            "an ended job (one message, then the end)",
            lambda: tpb.WatchTrainingJobRequest(id=_job_id("small")),
            streaming_response=True,
        ),
        Case(
            f"/{TRN}.TrainingService/DeleteTrainingJob",
            "an ended job",
            lambda: tpb.DeleteTrainingJobRequest(id=_job_id("small")),
        ),
        zipped(f"{most:,} stored 8 x 8 grey PNGs (max_dataset_images; scikit-learn's digits), 10 folders", "most"),
        zipped(f"{most + 1:,} such PNGs (one over max_dataset_images)", "over"),
        upload(
            f"CSV, the {mib} one and one row more (just over max_dataset_bytes)",
            tpb.DATASET_FORMAT_CSV,
            lambda: _lines(csv_pool, limit, csv_head, over=True),
        ),
        upload(
            f"CSV, {mib} ({limit // len(csv_pool[0]):,} rows x 1,023 numeric columns + label) in 4 MiB chunks",
            tpb.DATASET_FORMAT_CSV,
            lambda: _lines(csv_pool, limit, csv_head),
            "csv_id",
        ),
        Case(
            f"/{TRN}.DatasetService/GetDataset",
            "that CSV (1,024 columns listed)",
            lambda: tpb.GetDatasetRequest(id=_live["csv_id"]),
        ),
        upload(
            f"JSONL, {mib} of {{text, label}} records of ~{sum(map(len, jsonl)) // len(jsonl)} bytes",
            tpb.DATASET_FORMAT_JSONL,
            lambda: _lines(jsonl, limit),
        ),
        upload(
            f"TEXT, {mib} of lines of ~{sum(map(len, text)) // len(text)} bytes",
            tpb.DATASET_FORMAT_TEXT,
            lambda: _lines(text, limit),
        ),
        upload(
            f"TEXT, {mib} in one line (no newline; past max_record_bytes, {settings.max_record_bytes >> 20} MiB)",
            tpb.DATASET_FORMAT_TEXT,
            one_line,
        ),
        zipped(f"one {side_bytes:,} x {side_bytes:,} RGB PNG, pixels stored (max_image_bytes inflated)", "stored"),
        zipped(f"one {side_pixels:,} x {side_pixels:,} RGB PNG (max_image_pixels), compressed", "pixels"),
        zipped("one 9,000 x 9,000 PNG (243 MB inflated, past max_image_bytes), deflated", "huge"),
        zipped("one 14,000 x 14,000 PNG (588 MB; over Pillow's bomb limit), deflated", "bomb"),
        Case(
            f"/{TRN}.TrainingService/CreateTrainingJob",
            f"tabular-dense on that {mib} CSV (the recipe's check reads its first 100,000 cells), hidden_units 1024",
            lambda: _job_request(_live["csv_id"], "big"),
        ),
        Case(
            f"/{TRN}.DatasetService/DeleteDataset",
            f"the {mib} CSV",
            lambda: tpb.DeleteDatasetRequest(id=_live["csv_id"] if _cancel("big") else ""),
        ),
    ]


def _widest_row(rows: int, limit: int, model: str) -> int:
    """The most values per row for ``rows`` rows in a PredictRequest of at most ``limit`` bytes."""

    def varint(n: int) -> int:
        return max(1, (n.bit_length() + 6) // 7)

    fixed = tbpb.PredictRequest(model=common_pb2.ModelRef(name=model)).ByteSize()
    width = (limit - fixed) // rows // 8
    while True:
        packed = 8 * width
        row = 1 + varint(packed) + packed  # FeatureRow: the packed values field
        if fixed + rows * (1 + varint(row) + row) <= limit:
            return width
        width -= 1


def _train_tabular(suite: Suite, scratch: Path, tabular: str) -> None:
    """Start the training service beside tabular, train the bench's tabular-dense models, installed there."""
    from services.tabular.settings import TabularSettings

    s = TabularSettings()
    width = _widest_row(s.max_rows, s.max_message_bytes, "bench-1000-classes")
    _live["width"] = width
    training = suite.start_component(
        "training",
        free_port(),
        {
            "LUMEN_TRAINING_DATA_DIR": str(scratch / "training"),
            "LUMEN_TRAINING_TABULAR_REPOSITORY": str(scratch / "models" / "tabular"),
            "LUMEN_TRAINING_TABULAR_ADDRESS": tabular,
        },
        scratch,
    )
    suite.wait_serving(["training"], timeout=300)
    with grpc.insecure_channel(training.address, options=[("grpc.max_send_message_length", 256 << 20)]) as channel:
        for name, classes, rows in (("bench-3-classes", 3, 300), ("bench-1000-classes", 1000, 2000)):
            head, pool = _csv_pool(width, classes, rows=rows, seed=classes)
            uploaded = tpb.UploadDatasetResponse.FromString(
                channel.stream_unary(
                    f"/{TRN}.DatasetService/UploadDataset", lambda m: m.SerializeToString(), lambda b: b
                )(_upload(tpb.DATASET_FORMAT_CSV, iter([head, *pool])), timeout=900)
            )
            request = tpb.CreateTrainingJobRequest(
                recipe="tabular-dense",
                dataset_id=uploaded.dataset.id,
                hyperparameters={"epochs": 1, "hidden_units": 1024},
                model_name=name,
            )
            unary = channel.unary_unary
            job = tpb.CreateTrainingJobResponse.FromString(
                unary(f"/{TRN}.TrainingService/CreateTrainingJob", lambda m: m.SerializeToString(), lambda b: b)(
                    request, timeout=900
                )
            ).job
            started = time.monotonic()
            while job.state not in (tpb.JOB_STATE_SUCCEEDED, tpb.JOB_STATE_FAILED, tpb.JOB_STATE_CANCELLED):
                if time.monotonic() - started > 1800:
                    raise TimeoutError(f"training {name} did not end in 30 minutes")
                time.sleep(1)
                job = tpb.GetTrainingJobResponse.FromString(
                    unary(f"/{TRN}.TrainingService/GetTrainingJob", lambda m: m.SerializeToString(), lambda b: b)(
                        tpb.GetTrainingJobRequest(id=job.id), timeout=60
                    )
                ).job
            if job.state != tpb.JOB_STATE_SUCCEEDED:
                raise RuntimeError(f"training {name}: {tpb.JobState.Name(job.state)} {job.error.message}")
            print(
                f"  trained {name}: {width} features, {classes} classes, {rows} rows, hidden_units 1024, 1 epoch, "
                f"{time.monotonic() - started:.0f} s; served as version {job.result.model_version}",
                flush=True,
            )


def tabular_cases() -> list[Case]:
    from services.tabular.settings import TabularSettings

    s = TabularSettings()
    width = _live["width"]
    rng = np.random.default_rng(1)

    def rows() -> list[tbpb.FeatureRow]:
        values = rng.normal(0, 3, (s.max_rows, width))
        return [tbpb.FeatureRow(values=v.tolist()) for v in values]

    budget = f"{s.max_message_bytes / 2**20:.0f} MiB"
    return [
        Case(
            f"/{TAB}.TabularService/Predict",
            f"{s.max_rows} rows x {width:,} values (the widest that fit max_message_bytes, {budget}), "
            "a trained tabular-dense model: 3 classes, hidden_units 1024",
            lambda: tbpb.PredictRequest(model=common_pb2.ModelRef(name="bench-3-classes"), rows=rows()),
        ),
        Case(
            f"/{TAB}.TabularService/Predict",
            f"{s.max_rows} rows x {width:,} values, a trained model of 1,000 classes (1,024,000 class "
            "probabilities answered)",
            lambda: tbpb.PredictRequest(model=common_pb2.ModelRef(name="bench-1000-classes"), rows=rows()),
        ),
        Case(
            f"/{TAB}.TabularService/Predict",
            f"{s.max_rows} rows x {width - 1:,} values (one too few: every row INVALID_ARGUMENT)",
            lambda: tbpb.PredictRequest(
                model=common_pb2.ModelRef(name="bench-1000-classes"),
                rows=[tbpb.FeatureRow(values=r.values[:-1]) for r in rows()],
            ),
        ),
    ]


SERVICES: dict[str, Callable[[], list[Case]]] = {
    "nlp": nlp_cases,
    "embeddings": embeddings_cases,
    "vision": vision_cases,
    "tabular": tabular_cases,
    "training": training_cases,
    "gateway": lambda: _gateway().cases(),
}


def _gateway() -> Any:
    """tools.bench_limits_gateway, imported when used (it imports this module)."""
    import tools.bench_limits_gateway as gateway

    return gateway


def run_service(name: str, scratch: Path, only: str | None) -> list[Measured]:
    env = {
        f"LUMEN_{name.upper()}_MODEL_REPOSITORY": str(ROOT / "var" / "models" / name),
        "LUMEN_EMBEDDINGS_COLLECTIONS_DIR": str(scratch / "collections"),
        "LUMEN_VISION_GALLERIES_DIR": str(scratch / "galleries"),
    }
    if name in ("tabular", "training"):  # models, datasets and jobs of the bench only, in the scratch folder
        (scratch / "models" / "tabular").mkdir(parents=True)
        env |= {
            "LUMEN_TABULAR_MODEL_REPOSITORY": str(scratch / "models" / "tabular"),
            "LUMEN_TRAINING_DATA_DIR": str(scratch / "training"),
            "LUMEN_TRAINING_MAX_CONCURRENT_JOBS": "0",  # the jobs the cases create stay QUEUED: none trains
            **{f"LUMEN_TRAINING_{s.upper()}_REPOSITORY": str(scratch / "models" / s) for s in SERVING},
        }
    suite = Suite()
    try:
        if name == "gateway":
            component = _gateway().start(suite, scratch)
        else:
            component = suite.start_component(name, free_port(), env, scratch)
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
            _live.update(channel=channel, scratch=scratch)
            if name == "training":
                _fill_training()
            if name == "tabular":
                _train_tabular(suite, scratch, component.address)
            if name == "gateway":
                _gateway().prepare(channel)
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
    readme = ROOT / ("gateway" if service == "gateway" else f"services/{service}") / "README.md"
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
            f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} shared cores (load average {load:.1f}"
            f"{': other work was running' if load >= 0.5 else ''}; CPU seconds count only the server process). "
            f"⚠: above the bound of "
            f"~{CPU_BOUND_S:.0f} s CPU or {MEMORY_BOUND_MB} MB per call.",
            "",
            *table(results),
        ]
        print("\n".join(lines), flush=True)
        if args.write:
            write_readme(name, lines)


if __name__ == "__main__":
    main()
