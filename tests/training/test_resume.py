"""kill -9 of the training service mid-job, on real processes: the running job
continues from its last checkpoint (epoch counter too) and succeeds; the
queued job is still queued."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import grpc
import pytest

from lumen.training.v1 import training_pb2 as pb
from lumen.training.v1 import training_pb2_grpc as pb_grpc
from tests.training.data import sklearn_csv
from tools.suite import Suite, free_port

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
EPOCHS = 12


def _start(suite: Suite, port: int, env: dict[str, str], logs: Path) -> None:
    suite.start_component("training", port, env, logs)
    suite.wait_serving(["training"], timeout=60)


def _upload(stub: pb_grpc.DatasetServiceStub, payload: bytes) -> str:
    parts = [pb.UploadDatasetRequest(spec=pb.DatasetSpec(format=pb.DATASET_FORMAT_CSV))]
    parts.append(pb.UploadDatasetRequest(chunk=payload))
    return stub.UploadDataset(iter(parts)).dataset.id


def test_kill_9_then_restart_resumes_from_the_checkpoint(suite: Suite, suite_models: Path, tmp_path: Path) -> None:
    own = Suite()  # a training service of this test's own, beside the shared suite's serving services
    port = free_port()
    env = {
        "LUMEN_TRAINING_DATA_DIR": str(tmp_path / "training"),
        "LUMEN_TRAINING_TABULAR_ADDRESS": suite.address("tabular"),
        "LUMEN_TRAINING_TABULAR_REPOSITORY": str(suite_models / "tabular"),
    }
    _start(own, port, env, tmp_path)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            datasets, jobs = pb_grpc.DatasetServiceStub(channel), pb_grpc.TrainingServiceStub(channel)
            dataset = _upload(datasets, sklearn_csv("wine"))
            request = pb.CreateTrainingJobRequest(
                recipe="tabular-dense", dataset_id=dataset, model_name="wine-resumed",
                hyperparameters={"epochs": EPOCHS, "batch_size": 8},
            )  # fmt: skip
            running = jobs.CreateTrainingJob(request).job
            queued = jobs.CreateTrainingJob(pb.CreateTrainingJobRequest(**{**_fields(request), "model_name": "wine-q"}))
            for event in jobs.WatchTrainingJob(pb.WatchTrainingJobRequest(id=running.id), timeout=180):
                if event.job.progress.epoch >= 3:
                    break
        os.kill(own.components["training"].process.pid, signal.SIGKILL)
        own.components["training"].process.wait()
        time.sleep(1.0)  # the orphaned training process sees its stdin close and exits
        _start(own, port, env, tmp_path)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            jobs = pb_grpc.TrainingServiceStub(channel)
            assert jobs.GetTrainingJob(pb.GetTrainingJobRequest(id=queued.job.id)).job.state == pb.JOB_STATE_QUEUED
            epochs, last = [], None
            for event in jobs.WatchTrainingJob(pb.WatchTrainingJobRequest(id=running.id), timeout=180):
                last = event.job
                epochs.append(last.progress.epoch)
            assert last is not None and last.state == pb.JOB_STATE_SUCCEEDED, last.error.message
            assert last.progress.resumed_from_epoch >= 3
            assert last.progress.epoch == EPOCHS
            after_resume = epochs[epochs.index(last.progress.resumed_from_epoch) :]
            assert after_resume == sorted(after_resume)  # it went on from there, not from epoch 1
            jobs.CancelTrainingJob(pb.CancelTrainingJobRequest(id=queued.job.id))
    finally:
        own.stop()


def _fields(request: pb.CreateTrainingJobRequest) -> dict:
    return {
        "recipe": request.recipe,
        "dataset_id": request.dataset_id,
        "hyperparameters": dict(request.hyperparameters),
    }
