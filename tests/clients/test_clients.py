"""The Node, Go and C++ clients against the real running suite, checked against the Python SDK.

Each client calls EmbeddingService.Embed (forwarded to the embeddings
service), GatewayService.ListModels (fanned out to every backend) and, once
per text, the composite GatewayService.AnalyzeText (language and sentiment
from nlp, embedding from embeddings). With --json it prints the responses in
proto3 JSON plus the vectors it decoded from the packed float32 bytes.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import numpy as np
import pytest
from google.protobuf import json_format

from lumen.client import Client, vectors_of
from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2
from lumen.gateway.v1 import gateway_pb2
from lumen.nlp.v1 import nlp_pb2
from tools.suite import Suite, free_port

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# Sentiment one way, the other, and none (in German, with non-ASCII): the
# AnalyzeText comparison then covers scores that are not all zero.
TEXTS = [
    "Deploying models as services is a great idea.",
    "Grüße aus Köln: naïve café ☕",
    "Kubernetes schedules pods, but the outage was terrible.",
]
# The features each client asks AnalyzeText for.
ANALYSES = [
    gateway_pb2.TEXT_FEATURE_TYPE_LANGUAGE,
    gateway_pb2.TEXT_FEATURE_TYPE_SENTIMENT,
    gateway_pb2.TEXT_FEATURE_TYPE_EMBEDDING,
]
PARTS = ("language", "sentiment", "embedding")


def run(command: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120)


def analyze_request(text: str) -> gateway_pb2.AnalyzeTextRequest:
    """The AnalyzeText request every client sends for one text."""
    return gateway_pb2.AnalyzeTextRequest(
        text=text,
        features=[gateway_pb2.TextFeature(type=t) for t in ANALYSES],
        embedding_encoding=common_pb2.VECTOR_ENCODING_F32_BYTES,
    )


@pytest.fixture
def printed(client: tuple[str, list[str]], suite: Suite) -> dict[str, Any]:
    """What the client prints with --json for TEXTS."""
    language, command = client
    result = run(command, "--address", suite.address("gateway"), "--json", *TEXTS)
    assert result.returncode == 0, f"{language}: {result.stderr}"
    return json.loads(result.stdout)


def test_embedding_and_model_list_match_the_python_sdk(printed: dict[str, Any], suite: Suite) -> None:
    address = suite.address("gateway")
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

    assert {b.service for b in models.backends} == {"nlp", "vision", "embeddings", "tabular"}
    assert all(b.status.code == 0 for b in models.backends), models.backends
    assert [(m.service, m.name, m.state) for m in models.models] == [
        (m.service, m.name, m.state) for m in expected_models.models
    ]


def test_analyze_text_matches_the_python_sdk(printed: dict[str, Any], suite: Suite) -> None:
    """Language, sentiment and embedding of each text: every part OK and equal to what the SDK gets."""
    got = [json_format.ParseDict(r, gateway_pb2.AnalyzeTextResponse()) for r in printed["analyze"]]
    with Client(suite.address("gateway")) as sdk:
        expected = [sdk.gateway.AnalyzeText(analyze_request(text), timeout=sdk.timeout) for text in TEXTS]
    assert len(got) == len(printed["analyze_vectors"]) == len(TEXTS)

    for text, response, want, decoded in zip(TEXTS, got, expected, printed["analyze_vectors"], strict=True):
        # Exactly the parts asked for, each OK (the SDK's too: the comparison is between answers).
        assert {f.name for f, _ in response.ListFields()} - {"usage"} == set(PARTS), text
        for part in PARTS:
            assert getattr(response, part).status.code == 0, (text, part, getattr(response, part).status)
            assert getattr(want, part).status.code == 0, (text, part, getattr(want, part).status)
            assert getattr(response, part).model.name == getattr(want, part).model.name != ""

        codes = [s.language_code for s in response.language.languages]
        assert codes == [s.language_code for s in want.language.languages] and codes, text
        np.testing.assert_allclose(
            [s.confidence for s in response.language.languages],
            [s.confidence for s in want.language.languages],
            atol=1e-6,
        )

        assert response.sentiment.label == want.sentiment.label != 0, text
        assert abs(response.sentiment.score - want.sentiment.score) <= 1e-6, text

        vector = np.frombuffer(response.embedding.embedding.values_f32, dtype="<f4")
        assert vector.shape == (384,)
        # The client decoded the packed bytes exactly, and they are the SDK's bytes.
        np.testing.assert_array_equal(np.asarray(decoded, dtype=np.float32), vector)
        np.testing.assert_array_equal(vector, np.frombuffer(want.embedding.embedding.values_f32, dtype="<f4"))

    # The real VADER lexicon: "great" is positive, "terrible" negative.
    labels = [r.sentiment.label for r in got]
    assert labels[0] == nlp_pb2.SENTIMENT_LABEL_POSITIVE and labels[2] == nlp_pb2.SENTIMENT_LABEL_NEGATIVE, labels


def test_human_output_shows_each_vector_and_part(client: tuple[str, list[str]], suite: Suite) -> None:
    language, command = client
    result = run(command, "--address", suite.address("gateway"), *TEXTS)
    assert result.returncode == 0, f"{language}: {result.stderr}"
    # Each text's vector twice: from Embed and from AnalyzeText's embedding part.
    assert result.stdout.count("384 dims") == 2 * len(TEXTS)
    assert "all-minilm-l6-v2" in result.stdout
    assert "backend embeddings: OK" in result.stdout
    assert "backend nlp: OK" in result.stdout
    for part in PARTS:
        assert result.stdout.count(f"  {part}: OK ") == len(TEXTS), (part, result.stdout)
    assert "(vader v" in result.stdout and "(py3langid v" in result.stdout


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
