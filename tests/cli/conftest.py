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
from shared.model_service import ModelService
from tests.in_process import running_gateway, start_model_services

CliRunner = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture(scope="module")
async def backends(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, ModelService]]:
    from services.embeddings import setup_models as embeddings_models
    from services.nlp import setup_models as nlp_models
    from services.vision import setup_models as vision_models

    def embeddings(repository: Path) -> None:
        embeddings_models.write_sentence_model(repository)
        embeddings_models.write_glove_model(repository)

    started = await start_model_services(
        tmp_path_factory.mktemp("cli"),
        {"embeddings": embeddings, "nlp": nlp_models.setup_packaged, "vision": vision_models.write_packaged},
    )
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
