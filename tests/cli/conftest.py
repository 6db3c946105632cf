"""A real gateway in this process over real embeddings, nlp and vision services (port 0), with the
models their own set-up code writes (those that ship in wheels; nothing trained), and `lumen` run
against it as a user would: ``run_cli("--json", "words", ...)`` gives (exit code, stdout, stderr)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.server import Gateway
from lumen import cli
from shared.model_service import ModelService, start
from tests.in_process import running_gateway

CliRunner = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture(scope="module")
async def backends(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, ModelService]]:
    from services.embeddings import app as embeddings_app
    from services.embeddings import setup_models as embeddings_models
    from services.embeddings.settings import EmbeddingsSettings
    from services.nlp import app as nlp_app
    from services.nlp import setup_models as nlp_models
    from services.nlp.settings import NlpSettings
    from services.vision import app as vision_app
    from services.vision import setup_models as vision_models
    from services.vision.settings import VisionSettings

    root = tmp_path_factory.mktemp("cli")
    for name in ("embeddings", "nlp", "vision"):
        (root / name).mkdir()
    embeddings_models.write_sentence_model(root / "embeddings")
    embeddings_models.write_glove_model(root / "embeddings")
    nlp_models.setup_packaged(root / "nlp")
    vision_models.write_packaged(root / "vision")
    common = {"host": "127.0.0.1", "port": 0}
    started = {
        "embeddings": await start(
            "embeddings",
            EmbeddingsSettings(
                **common, model_repository=str(root / "embeddings"), collections_dir=str(root / "collections")
            ),
            embeddings_app.FACTORIES,
            embeddings_app.registrations,
        ),
        "nlp": await start(
            "nlp", NlpSettings(**common, model_repository=str(root / "nlp")), nlp_app.FACTORIES, nlp_app.registrations
        ),
        "vision": await start(
            "vision",
            VisionSettings(**common, model_repository=str(root / "vision"), galleries_dir=str(root / "galleries")),
            vision_app.FACTORIES,
            vision_app.registrations,
        ),
    }
    yield started
    for service in started.values():
        await service.stop(0)


@pytest.fixture(scope="module")
async def gateway(backends: dict[str, ModelService]) -> AsyncIterator[Gateway]:
    addresses = {f"{name}_address": f"127.0.0.1:{service.port}" for name, service in backends.items()}
    async with running_gateway(**addresses, default_timeout_s=60.0) as running:
        yield running


@pytest.fixture
def run_cli(gateway: Gateway) -> CliRunner:
    """`lumen --address <gateway> ARGS...` in a thread (the gateway serves on this loop)."""
    return cli_runner(gateway)


def cli_runner(gateway: Gateway) -> CliRunner:
    """`lumen --address <gateway> ARGS...` in a thread: (exit code, stdout, stderr)."""

    def call(args: tuple[str, ...]) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["--address", f"127.0.0.1:{gateway.port}", "--timeout", "120", *args])
        return code, out.getvalue(), err.getvalue()

    async def run(*args: str | Path) -> tuple[int, str, str]:
        return await asyncio.to_thread(call, tuple(map(str, args)))

    return run
