from __future__ import annotations

import dataclasses

import pytest

from services.embeddings.settings import EmbeddingsSettings
from shared.device import parse
from shared.settings import ServerSettings, describe, load


def test_reads_prefixed_environment_with_types() -> None:
    env = {
        "LUMEN_EMBEDDINGS_PORT": "6000",
        "LUMEN_EMBEDDINGS_GRACE_PERIOD_S": "2.5",
        "LUMEN_EMBEDDINGS_REFLECTION": "false",
        "LUMEN_EMBEDDINGS_MODELS": "a, b",
        "LUMEN_NLP_PORT": "7000",  # another service's prefix is ignored
    }
    settings = load(EmbeddingsSettings, "LUMEN_EMBEDDINGS", env)
    assert settings.port == 6000
    assert settings.grace_period_s == 2.5
    assert settings.reflection is False
    assert settings.models == ["a", "b"]
    assert settings.max_texts == 256  # default kept


def test_defaults_are_per_service() -> None:
    assert load(EmbeddingsSettings, "LUMEN_EMBEDDINGS", {}).port == 50054


def test_bad_value_names_the_variable() -> None:
    with pytest.raises(ValueError, match="LUMEN_X_PORT"):
        load(ServerSettings, "LUMEN_X", {"LUMEN_X_PORT": "eighty"})
    with pytest.raises(ValueError, match="LUMEN_X_REFLECTION"):
        load(ServerSettings, "LUMEN_X", {"LUMEN_X_REFLECTION": "maybe"})


def test_every_setting_is_documented() -> None:
    for field in dataclasses.fields(EmbeddingsSettings):
        assert field.metadata.get("doc"), field.name
    assert "LUMEN_EMBEDDINGS_DEVICE" in describe(EmbeddingsSettings, "LUMEN_EMBEDDINGS")


def test_device_parsing() -> None:
    assert parse("cpu").local == "cpu"
    gpu = parse("cuda:3")
    assert (gpu.configured, gpu.local, gpu.is_gpu) == ("cuda:3", "cuda:0", True)
    with pytest.raises(ValueError):
        parse("gpu0")
