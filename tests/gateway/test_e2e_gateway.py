"""End to end with real processes: the three model services and a gateway with API keys on.

Composite parts are checked against the same request sent straight to the
backend that owns it (same answer, or same status code), so the checks hold
whatever models each service has. Then one backend is killed and restarted
under the same gateway, and the keys' limits are exercised.
"""

from __future__ import annotations

import io
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2 as epb
from lumen.embeddings.v1 import embeddings_pb2_grpc as epb_grpc
from lumen.gateway.v1 import gateway_pb2 as pb
from lumen.gateway.v1 import gateway_pb2_grpc as pb_grpc
from lumen.nlp.v1 import nlp_pb2, nlp_pb2_grpc
from lumen.vision.v1 import vision_pb2, vision_pb2_grpc
from shared.interceptors import USAGE_KEY
from tests.gateway.conftest import add_key, backend_env, setup_repository, wait_settled
from tools.suite import Suite, free_port

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

OK = 0
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]
BACKENDS = ("embeddings", "nlp", "vision")
TEXT = "Kubernetes restarts the pods of a deployment when a node fails. Alice deployed it in Paris."


@dataclass
class Running:
    suite: Suite
    keys: dict[str, str]
    env: dict[str, dict[str, str]]
    logs: Path

    def channel(self, name: str = "gateway") -> grpc.Channel:
        return grpc.insecure_channel(self.suite.address(name))

    def md(self, key: str = "ops") -> tuple[tuple[str, str], ...]:
        return (("x-api-key", self.keys[key]),)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("e2e-gateway")
    logs = root / "logs"
    logs.mkdir()
    keys_file = root / "keys.json"
    keys = {
        "ops": add_key(keys_file, "ops", admin=True),
        "embed-only": add_key(keys_file, "embed-only", services=("embeddings",)),
        "throttled": add_key(keys_file, "throttled", rate_per_s=0.01, burst=3),
        "small": add_key(keys_file, "small", tokens_per_period=20),
    }
    ports = {name: free_port() for name in (*BACKENDS, "gateway")}
    env = {name: backend_env(name, setup_repository(name, root / "models"), root / name) for name in BACKENDS}
    env["gateway"] = {
        "LUMEN_GATEWAY_KEYS_FILE": str(keys_file),
        **{f"LUMEN_GATEWAY_{n.upper()}_ADDRESS": f"127.0.0.1:{ports[n]}" for n in BACKENDS},
    }
    suite = Suite()
    try:
        for name in BACKENDS:  # all three load their models at once
            suite.start_component(name, ports[name], env[name], logs)
        suite.wait_serving(["embeddings"])
        for name in ("nlp", "vision"):
            wait_settled(suite, name)
        suite.start_component("gateway", ports["gateway"], env["gateway"], logs)
        suite.wait_serving(["gateway"])
        yield Running(suite, keys, env, logs)
    finally:
        suite.stop()


def image() -> common_pb2.Image:
    """scikit-image's astronaut photo, head and shoulders: one face."""
    import skimage.data
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(skimage.data.astronaut()[:300, 80:380])).save(out, "PNG")
    return common_pb2.Image(content=out.getvalue())


def direct(call, request, running: Running):
    """The backend's own answer, or the status code it failed with."""
    try:
        return call(request, timeout=60)
    except grpc.RpcError as exc:
        return exc.code().value[0]


def check_part(part, answer, fields: dict[str, str]) -> None:
    """A composite part equals the backend's direct answer to the same request (batch of one)."""
    if isinstance(answer, int):
        assert part.status.code == answer, (part.status, answer)
        return
    result = answer.results[0] if fields.get("per_item") else answer
    if getattr(result, "status", None) is not None and result.status.code != OK:
        assert part.status.code == result.status.code
        return
    assert part.status.code == OK, part.status
    assert part.model.name == answer.model.name
    for mine, theirs in fields.items():
        if mine != "per_item":
            assert str(getattr(part, mine)) == str(getattr(result, theirs)), mine


def analyze(running: Running, features, **extra) -> pb.AnalyzeTextResponse:
    with running.channel() as channel:
        request = pb.AnalyzeTextRequest(text=TEXT, features=[pb.TextFeature(type=t) for t in features], **extra)
        return pb_grpc.GatewayServiceStub(channel).AnalyzeText(request, metadata=running.md(), timeout=60)


ALL_TEXT = [t for t in pb.TextFeatureType.values() if t]


def check_nlp_parts(running: Running, reply: pb.AnalyzeTextResponse) -> None:
    with running.channel("nlp") as channel:
        nlp = nlp_pb2_grpc.TextAnalysisServiceStub(channel)
        check_part(
            reply.language,
            direct(nlp.DetectLanguage, nlp_pb2.DetectLanguageRequest(texts=[TEXT]), running),
            {"per_item": "1", "languages": "languages"},
        )
        check_part(
            reply.sentiment,
            direct(nlp.AnalyzeSentiment, nlp_pb2.AnalyzeSentimentRequest(texts=[TEXT]), running),
            {"per_item": "1", "score": "score", "label": "label"},
        )
        check_part(
            reply.classification,
            direct(nlp.ClassifyText, nlp_pb2.ClassifyTextRequest(texts=[TEXT]), running),
            {"per_item": "1", "labels": "labels"},
        )
        check_part(
            reply.entities,
            direct(nlp.ExtractEntities, nlp_pb2.ExtractEntitiesRequest(texts=[TEXT]), running),
            {"per_item": "1", "entities": "entities"},
        )


def test_composite_calls_return_every_part_as_the_backends_answer_it(running: Running) -> None:
    reply = analyze(running, ALL_TEXT)
    for part in ("language", "sentiment", "classification", "entities", "embedding"):
        assert reply.HasField(part)
    check_nlp_parts(running, reply)
    with running.channel("embeddings") as channel:
        want = epb_grpc.EmbeddingServiceStub(channel).Embed(epb.EmbedRequest(texts=[TEXT]))
    assert reply.embedding.status.code == OK
    np.testing.assert_allclose(reply.embedding.embedding.values, want.embeddings[0].values, atol=1e-5)
    assert reply.usage.input_tokens >= want.usage.input_tokens > 0

    picture = image()
    with running.channel() as channel:
        annotated = pb_grpc.GatewayServiceStub(channel).AnnotateImage(
            pb.AnnotateImageRequest(image=picture, features=[pb.ImageFeature(type=t) for t in (1, 2, 3)]),
            metadata=running.md(),
            timeout=120,
        )
    with running.channel("vision") as channel:
        vision = vision_pb2_grpc.ImageAnalysisServiceStub(channel)
        labels = direct(vision.ClassifyImages, vision_pb2.ClassifyImagesRequest(images=[picture]), running)
        objects = direct(vision.DetectObjects, vision_pb2.DetectObjectsRequest(images=[picture]), running)
        faces = direct(vision.DetectFaces, vision_pb2.DetectFacesRequest(images=[picture]), running)
    check_part(annotated.labels, labels, {"per_item": "1"})
    check_part(annotated.objects, objects, {"per_item": "1"})
    check_part(annotated.faces, faces, {"per_item": "1"})
    if annotated.labels.status.code == OK:
        assert [x.label for x in annotated.labels.labels] == [x.label for x in labels.results[0].labels]
        assert [x.score for x in annotated.labels.labels] == pytest.approx(
            [x.score for x in labels.results[0].labels], abs=1e-4
        )
        assert (annotated.width, annotated.height) == (300, 300)
        assert annotated.usage.images >= 1
    if annotated.faces.status.code == OK:
        assert len(annotated.faces.faces) == len(faces.results[0].faces)


def gateway_health(running: Running, service: str) -> int:
    with running.channel() as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service)).status


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_killed_backend_gives_partial_results_and_its_return_restores_them(running: Running) -> None:
    gateway = running.suite.components["gateway"].process
    with running.channel() as channel:
        stub = pb_grpc.GatewayServiceStub(channel)
        stored = stub.IndexDocuments(
            pb.IndexDocumentsRequest(
                collection="notes",
                documents=[epb.Document(id="pods", text="Pods are rescheduled when a node fails.")],
                create_if_missing=True,
            ),
            metadata=running.md(),
            timeout=60,
        )
        assert stored.indexed == 1

    embeddings = running.suite.components["embeddings"]
    embeddings.process.send_signal(signal.SIGKILL)  # a crash, not a drain
    running.suite.stop_component("embeddings")

    partial = analyze(running, ALL_TEXT)
    assert partial.embedding.status.code == UNAVAILABLE
    check_nlp_parts(running, partial)  # the other parts are intact
    with running.channel() as channel:
        with pytest.raises(grpc.RpcError) as down:  # forwarded: UNAVAILABLE at once, not a hang
            epb_grpc.EmbeddingServiceStub(channel).Embed(
                epb.EmbedRequest(texts=["x"]), metadata=running.md(), timeout=30
            )
        assert down.value.code() is grpc.StatusCode.UNAVAILABLE
        search = pb_grpc.GatewayServiceStub(channel).SemanticSearch(
            pb.SemanticSearchRequest(collections=["notes"], query="node failure"), metadata=running.md(), timeout=30
        )
        assert search.collection_statuses[0].status.code == UNAVAILABLE
    wait_for(lambda: gateway_health(running, "backend.embeddings") == health_pb2.HealthCheckResponse.NOT_SERVING)

    running.suite.start_component("embeddings", embeddings.port, running.env["embeddings"], running.logs)
    running.suite.wait_serving(["embeddings"])
    wait_for(lambda: analyze(running, [pb.TEXT_FEATURE_TYPE_EMBEDDING]).embedding.status.code == OK)
    restored = analyze(running, ALL_TEXT)
    assert restored.embedding.status.code == OK
    check_nlp_parts(running, restored)
    wait_for(lambda: gateway_health(running, "backend.embeddings") == health_pb2.HealthCheckResponse.SERVING)
    with running.channel() as channel:
        found = pb_grpc.GatewayServiceStub(channel).SemanticSearch(
            pb.SemanticSearchRequest(collections=["notes"], query="node failure"), metadata=running.md(), timeout=30
        )
    assert [h.hit.id for h in found.hits] == ["pods"]  # written before the crash, durable
    assert gateway.poll() is None  # the same gateway process throughout


def code_of(call, *args, **kwargs) -> grpc.StatusCode:
    try:
        call(*args, **kwargs)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_keys_permissions_rate_limits_and_token_quota(running: Running) -> None:
    with running.channel() as channel:
        embed = epb_grpc.EmbeddingServiceStub(channel).Embed
        gateway = pb_grpc.GatewayServiceStub(channel)
        request = epb.EmbedRequest(texts=["a few words to count"])
        assert code_of(embed, request, timeout=30) is grpc.StatusCode.UNAUTHENTICATED
        assert code_of(embed, request, metadata=(("x-api-key", "lk_wrong"),), timeout=30) is (
            grpc.StatusCode.UNAUTHENTICATED
        )
        bearer = (("authorization", f"Bearer {running.keys['embed-only']}"),)
        assert code_of(embed, request, metadata=bearer, timeout=30) is grpc.StatusCode.OK
        assert code_of(gateway.ListModels, pb.ListModelsRequest(), metadata=bearer) is grpc.StatusCode.PERMISSION_DENIED

        throttled = running.md("throttled")
        assert [code_of(embed, request, metadata=throttled, timeout=30) for _ in range(4)] == [
            grpc.StatusCode.OK
        ] * 3 + [grpc.StatusCode.RESOURCE_EXHAUSTED]

        # Tokens are counted from the backends' usage: the first call uses the quota up, the next is refused.
        small = running.md("small")
        _, call = embed.with_call(epb.EmbedRequest(texts=[TEXT]), metadata=small, timeout=30)
        spent = common_pb2.Usage.FromString(dict(call.trailing_metadata())[USAGE_KEY])
        assert spent.input_tokens > 20
        with pytest.raises(grpc.RpcError) as refused:
            embed(request, metadata=small, timeout=30)
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        details = rpc_status.from_call(refused.value).details
        retry = error_details_pb2.RetryInfo()
        assert any(d.Unpack(retry) for d in details) and retry.retry_delay.seconds > 0
        report = gateway.GetUsage(pb.GetUsageRequest(), metadata=small)
        assert report.key_id == "small"
        assert report.usage.input_tokens == spent.input_tokens
        assert report.quota.tokens_limit == 20 and report.quota.tokens_remaining == 0
        seen_by_admin = gateway.GetUsage(pb.GetUsageRequest(key_id="throttled"), metadata=running.md())
        assert seen_by_admin.calls == 3


def test_keys_never_reach_any_log(running: Running) -> None:
    text = "\n".join(path.read_text(errors="replace") for path in running.logs.glob("*.log"))
    assert "/lumen.embeddings.v1.EmbeddingService/Embed" in text  # the access logs are there
    assert "lk_" not in text
    for secret in running.keys.values():
        assert secret not in text
