"""Entry point: python -m services.training.server (settings: LUMEN_TRAINING_*).

The training service holds no model: it validates, queues and follows jobs,
and hands each result to the service that serves it. `start` is also what
tests use (port 0).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lumen.training.v1 import training_pb2, training_pb2_grpc
from services.training.datasets import Datasets
from services.training.executor import Executor
from services.training.executor_kubernetes import KubernetesExecutor
from services.training.executor_local import LocalExecutor
from services.training.jobs import Jobs
from services.training.kubernetes_api import JobApi
from services.training.servicer import DatasetServicer, TrainingServicer
from services.training.settings import TrainingSettings
from services.training.store import SqliteStore
from shared import device as devices
from shared.backend_token import server_interceptors
from shared.server import Registration, Service, create_server, run_process

logger = logging.getLogger(__name__)
SERVICES = training_pb2.DESCRIPTOR.services_by_name


@dataclass
class TrainingService(Service):
    settings: TrainingSettings
    jobs: Jobs
    executor: Executor
    store: SqliteStore

    async def release(self) -> None:
        await self.executor.close()
        self.store.close()


def make_executor(settings: TrainingSettings, jobs: Jobs, job_api: JobApi | None = None) -> Executor:
    """The executor LUMEN_TRAINING_EXECUTOR names; ``job_api`` replaces the cluster's (tests)."""
    if settings.executor == "kubernetes":
        return KubernetesExecutor(jobs.on_event, jobs.on_exit, settings, job_api)
    if settings.executor != "local":
        raise ValueError(f"LUMEN_TRAINING_EXECUTOR must be 'local' or 'kubernetes', not {settings.executor!r}")
    device = devices.parse(settings.device)
    visible = device.configured.removeprefix("cuda:") if device.is_gpu else ""
    return LocalExecutor(
        jobs.on_event, jobs.on_exit, settings.nice, settings.threads, {"CUDA_VISIBLE_DEVICES": visible}
    )


async def start(settings: TrainingSettings, job_api: JobApi | None = None) -> TrainingService:
    root = settings.data_path()
    store = SqliteStore(root / "training.db")
    datasets = Datasets(store, root / "datasets", settings.max_dataset_bytes, settings.record_limits())
    jobs = Jobs(store, datasets, settings)
    executor = make_executor(settings, jobs, job_api)
    jobs.executor = executor
    registrations = [
        Registration(
            training_pb2_grpc.add_DatasetServiceServicer_to_server,
            DatasetServicer(datasets),
            SERVICES["DatasetService"].full_name,
        ),
        Registration(
            training_pb2_grpc.add_TrainingServiceServicer_to_server,
            TrainingServicer(jobs),
            SERVICES["TrainingService"].full_name,
        ),
    ]
    server = await create_server(
        settings, registrations, extra_interceptors=server_interceptors(settings.backend_token_file)
    )
    await jobs.recover()
    await server.set_serving(True)
    return TrainingService(settings, server, jobs, executor, store)


def main() -> None:
    run_process("training", TrainingSettings, start)


if __name__ == "__main__":
    main()
