"""The Node, Go and C++ clients against the real running suite, checked against the Python SDK.

Each client calls the gateway twice: EmbeddingService.Embed (forwarded to the
embeddings service) and GatewayService.ListModels (fanned out to every
backend). With --json it prints both responses in proto3 JSON plus the vectors
it decoded from the packed float32 bytes.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from google.protobuf import json_format

from lumen.client import Client, vectors_of
from lumen.embeddings.v1 import embeddings_pb2
from lumen.gateway.v1 import gateway_pb2
from tools.suite import Suite, free_port

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

TEXTS = ["Deploy models as services.", "Grüße aus Köln: naïve café ☕", "Kubernetes schedules pods."]


def run(command: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120)


def test_embedding_and_model_list_match_the_python_sdk(client: tuple[str, list[str]], suite: Suite) -> None:
    language, command = client
    address = suite.address("gateway")
    result = run(command, "--address", address, "--json", *TEXTS)
    assert result.returncode == 0, f"{language}: {result.stderr}"
    printed = json.loads(result.stdout)

    # The client's JSON is canonical proto3 JSON of the real messages.
    embedded = json_format.ParseDict(printed["embed"], embeddings_pb2.EmbedResponse())
    models = json_format.ParseDict(printed["models"], gateway_pb2.ListModelsResponse())
    with Client(address) as sdk:
        expected = sdk.embed_raw(TEXTS)
        expected_models = sdk.list_models()

    vectors = np.asarray(printed["vectors"], dtype=np.float32)
    assert vectors.shape == (len(TEXTS), 384)
    # The client decoded the packed little-endian float32 bytes exactly.
    np.testing.assert_array_equal(vectors, vectors_of(embedded))
    # Same model, same texts, same numbers as the Python SDK gets.
    np.testing.assert_allclose(vectors, vectors_of(expected), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedded.model.name == expected.model.name == "all-minilm-l6-v2"
    assert embedded.usage.input_tokens == expected.usage.input_tokens > 0

    assert {b.service for b in models.backends} == {"nlp", "vision", "embeddings"}
    assert all(b.status.code == 0 for b in models.backends), models.backends
    assert [(m.service, m.name, m.state) for m in models.models] == [
        (m.service, m.name, m.state) for m in expected_models.models
    ]


def test_human_output_shows_each_vector(client: tuple[str, list[str]], suite: Suite) -> None:
    language, command = client
    result = run(command, "--address", suite.address("gateway"), *TEXTS)
    assert result.returncode == 0, f"{language}: {result.stderr}"
    assert result.stdout.count("384 dims") == len(TEXTS)
    assert "all-minilm-l6-v2" in result.stdout
    assert "backend embeddings: OK" in result.stdout


def test_invalid_argument_reaches_the_caller(client: tuple[str, list[str]], suite: Suite) -> None:
    """An empty text is refused by the service naming the field, through the gateway, in every language."""
    language, command = client
    result = run(command, "--address", suite.address("gateway"), "fine text", "")
    assert result.returncode == 1, f"{language}: {result.stdout}"
    assert "gRPC error" in result.stderr and "texts[1]" in result.stderr, result.stderr
    assert any(code in result.stderr for code in ("InvalidArgument", "error 3:")), result.stderr


def test_unreachable_gateway_fails_loudly(client: tuple[str, list[str]]) -> None:
    language, command = client
    result = run(command, "--address", f"127.0.0.1:{free_port()}", "hello")
    assert result.returncode == 1, f"{language}: {result.stdout}"
    assert any(code in result.stderr for code in ("Unavailable", "error 14:")), result.stderr
