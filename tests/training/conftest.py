"""An in-process training service on port 0 (its training processes are real subprocesses)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc.aio
import pytest_asyncio

from lumen.training.v1 import training_pb2_grpc
from services.training.kubernetes_api import JobApi
from services.training.server import TrainingService, start
from services.training.settings import TrainingSettings
from tests.in_process import down_address


async def training_service(tmp: Path, job_api: JobApi | None = None, **overrides: Any) -> TrainingService:
    """``job_api`` stands in for the Kubernetes API server (executor="kubernetes")."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "data_dir": str(tmp / "training"),
        **{f"{s}_repository": str(tmp / "models" / s) for s in ("nlp", "vision", "embeddings", "tabular")},
        **{f"{s}_address": down_address() for s in ("nlp", "vision", "embeddings", "tabular")},
        **overrides,
    }
    return await start(TrainingSettings(**values), job_api)


class Stubs:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.datasets = training_pb2_grpc.DatasetServiceStub(channel)
        self.jobs = training_pb2_grpc.TrainingServiceStub(channel)


@pytest_asyncio.fixture
async def held(tmp_path: Path) -> AsyncIterator[tuple[TrainingService, Stubs]]:
    """A service that accepts jobs but starts none (max_concurrent_jobs=0): they stay QUEUED."""
    service = await training_service(tmp_path, max_concurrent_jobs=0, max_dataset_bytes=64 * 1024)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        yield service, Stubs(channel)
    await service.stop(0)
