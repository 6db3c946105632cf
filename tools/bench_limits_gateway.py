"""The gateway's cases of `make bench-limits`: what the gateway process itself spends per call.

The gateway runs in front of real nlp, vision, embeddings and training processes (their own costs are in
their tables); the figures here are the gateway's CPU and peak memory only: its composite calls at their
limits (AnalyzeText, AnnotateImage, IndexDocuments, SemanticSearch over the most collections, ListModels,
GetUsage) and the relay of the largest messages and longest streams of each call kind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc

from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2 as epb
from lumen.gateway.v1 import gateway_pb2 as gpb
from lumen.training.v1 import training_pb2 as tpb
from lumen.vision.v1 import vision_pb2 as vpb
from tools.bench_limits import CHUNK, EMB, TRN, VIS, Case, _faces_jpeg, _jpeg, _text, counting_stream
from tools.suite import ROOT, Component, Suite, free_port

GW = "lumen.gateway.v1.GatewayService"
COLLECTION_DOCS = 64  # documents in each searched collection: 16 x 64 hits merged for top_k 1,000
BACKENDS = ("nlp", "vision", "embeddings", "training")
# Many names, places and organisations: the entities part's dearest text per character.
ENTITY_TEXT = "Alice Smith met Bob Jones of Google in Paris, then flew with Carol White to London and Berlin. "


def start(suite: Suite, scratch: Path) -> Component:
    """The backends on free ports with the models of var/models, then the gateway (keys off) in front."""
    ports = {name: free_port() for name in BACKENDS}
    env = {
        **{f"LUMEN_{n.upper()}_MODEL_REPOSITORY": str(ROOT / "var" / "models" / n) for n in ("nlp", "vision")},
        "LUMEN_EMBEDDINGS_MODEL_REPOSITORY": str(ROOT / "var" / "models" / "embeddings"),
        "LUMEN_EMBEDDINGS_COLLECTIONS_DIR": str(scratch / "collections"),
        "LUMEN_VISION_GALLERIES_DIR": str(scratch / "galleries"),
        "LUMEN_TRAINING_DATA_DIR": str(scratch / "training"),
        "LUMEN_TRAINING_MAX_CONCURRENT_JOBS": "0",
        **{f"LUMEN_GATEWAY_{n.upper()}_ADDRESS": f"127.0.0.1:{p}" for n, p in ports.items()},
        "LUMEN_GATEWAY_TABULAR_ADDRESS": f"127.0.0.1:{free_port()}",  # not started: ListModels reports it away
    }
    for name, port in ports.items():
        suite.start_component(name, port, env, scratch)
    suite.wait_serving(list(BACKENDS), timeout=600)
    gateway = suite.start_component("gateway", free_port(), env, scratch)
    suite.wait_serving(["gateway"], timeout=120)
    return gateway


def prepare(channel: grpc.Channel) -> None:
    """16 collections of COLLECTION_DOCS short documents each, for SemanticSearch's largest merge."""
    index = channel.unary_unary(f"/{GW}/IndexDocuments", lambda m: m.SerializeToString(), lambda b: b)
    for c in range(16):
        documents = [epb.Document(id=f"doc-{d}", text=f"{d} {_text(120, d)}") for d in range(COLLECTION_DOCS)]
        request = gpb.IndexDocumentsRequest(collection=f"bench-{c}", documents=documents, create_if_missing=True)
        index(request, timeout=600)


def _feature(kind: int, results: int = 0) -> gpb.TextFeature:
    return gpb.TextFeature(type=kind, max_results=results)


def _dataset(limit: int) -> Iterator[tpb.UploadDatasetRequest]:
    """A CSV of ``limit`` bytes in 4 MiB chunks (the training service's max_dataset_bytes)."""
    yield tpb.UploadDatasetRequest(spec=tpb.DatasetSpec(format=tpb.DATASET_FORMAT_CSV, display_name="gateway"))
    row = b"1.5,2.5,3.5,a\n"
    block = b"x,y,z,label\n" + row * ((CHUNK - 12) // len(row))
    sent = 0
    while sent + len(block) <= limit:
        yield tpb.UploadDatasetRequest(chunk=block)
        sent += len(block)
        block = row * (CHUNK // len(row))


def cases() -> list[Case]:
    from gateway.analyze_text import MAX_TEXT_CHARS
    from gateway.annotate_image import MAX_RESULTS
    from gateway.semantic import MAX_COLLECTIONS, MAX_DOCUMENTS, MAX_QUERY_CHARS, MAX_TOP_K
    from gateway.settings import GatewaySettings
    from services.embeddings.settings import EmbeddingsSettings
    from services.training.settings import TrainingSettings
    from shared.settings import load

    gateway, emb = load(GatewaySettings, "LUMEN_GATEWAY"), EmbeddingsSettings()
    limit = load(TrainingSettings, "LUMEN_TRAINING").max_dataset_bytes
    every = [1, 2, 3, 4, 5]  # the five TextFeatureTypes: language, sentiment, classification, entities, embedding
    answered = (ENTITY_TEXT * (emb.max_text_chars // len(ENTITY_TEXT) + 1))[: emb.max_text_chars]
    longest = (ENTITY_TEXT * (MAX_TEXT_CHARS // len(ENTITY_TEXT) + 1))[:MAX_TEXT_CHARS]
    embed_texts = [_text(emb.max_text_chars, i) for i in range(emb.max_call_chars // emb.max_text_chars)]
    image_features = [gpb.ImageFeature(type=t, max_results=MAX_RESULTS) for t in (1, 2, 3)]
    message = gateway.max_message_bytes
    return [
        Case(
            f"/{GW}/AnalyzeText",
            f"{len(answered):,} chars dense with names, all 5 features, entities max_results 10,000 (every part "
            "answers)",
            lambda: gpb.AnalyzeTextRequest(
                text=answered, features=[_feature(k, 10_000 if k == 4 else 0) for k in every]
            ),
        ),
        Case(
            f"/{GW}/AnalyzeText",
            f"{MAX_TEXT_CHARS:,} chars (its limit), all 5 features (the backends refuse the parts past theirs)",
            lambda: gpb.AnalyzeTextRequest(text=longest, features=[_feature(k) for k in every]),
        ),
        Case(
            f"/{GW}/AnnotateImage",
            f"a 2000 x 2000 JPEG tiled with faces, labels + objects + faces with landmarks, max_results {MAX_RESULTS}",
            lambda: gpb.AnnotateImageRequest(image=_faces_jpeg(2000), features=image_features, face_landmarks=True),
        ),
        Case(
            f"/{GW}/IndexDocuments",
            f"{MAX_DOCUMENTS} documents sharing the embedder's {emb.max_call_chars:,} chars, language detected",
            lambda: gpb.IndexDocumentsRequest(
                collection="bench-index",
                create_if_missing=True,
                detect_language=True,
                documents=[
                    epb.Document(id=f"d{i}", text=_text(emb.max_call_chars // MAX_DOCUMENTS, i))
                    for i in range(MAX_DOCUMENTS)
                ],
            ),
        ),
        Case(
            f"/{GW}/SemanticSearch",
            f"{MAX_COLLECTIONS} collections x {COLLECTION_DOCS} documents, a {MAX_QUERY_CHARS:,}-char query, "
            f"top_k {MAX_TOP_K}, documents included",
            lambda: gpb.SemanticSearchRequest(
                collections=[f"bench-{c}" for c in range(MAX_COLLECTIONS)],
                query=_text(MAX_QUERY_CHARS),
                top_k=MAX_TOP_K,
                include_documents=True,
            ),
        ),
        Case(f"/{GW}/ListModels", "every backend (tabular away)", lambda: gpb.ListModelsRequest()),
        Case(
            f"/{EMB}.EmbeddingService/Embed",
            f"relayed: {len(embed_texts)} texts x {emb.max_text_chars:,} chars",
            lambda: epb.EmbedRequest(texts=embed_texts),
        ),
        Case(
            f"/{VIS}.ImageAnalysisService/ClassifyImages",
            "relayed: 8 JPEGs of 1414 x 1414 (16 MP)",
            lambda: vpb.ClassifyImagesRequest(images=[_jpeg(1414, 1414, i) for i in range(8)]),
        ),
        Case(
            f"/{VIS}.ImageAnalysisService/ClassifyImages",
            f"relayed: one image of {message / 2**20:.0f} MiB less 1 KB of noise (max_message_bytes; vision "
            "answers the image with its own error status)",
            lambda: vpb.ClassifyImagesRequest(images=[common_pb2.Image(content=b"\xff" * (message - 1024))]),
        ),
        Case(
            f"/{EMB}.EmbeddingService/EmbedStream",
            f"relayed: 32 chunks of {len(embed_texts)} x {emb.max_text_chars:,} chars",
            lambda: [epb.EmbedStreamRequest(texts=embed_texts)] * 32,
        ),
        counting_stream("relayed: a counting prompt, greedy, 256 tokens streamed", 256),
        Case(
            f"/{TRN}.DatasetService/UploadDataset",
            f"relayed: a CSV of {limit / 2**20:.0f} MiB in 4 MiB chunks (training's max_dataset_bytes)",
            lambda: _dataset(limit),
            streaming_request=True,
        ),
        Case(f"/{GW}/GetUsage", "after the calls above (every method counted)", lambda: gpb.GetUsageRequest()),
    ]
