"""Per-key training limits and training time, through a real gateway with keys on, over a real
training service (both in this process, port 0): dataset bytes kept at once and unfinished jobs
at once (RESOURCE_EXHAUSTED past them, other keys unaffected), and GetUsage's training seconds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from lumen.common.v1 import common_pb2
from lumen.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from lumen.tabular.v1 import tabular_pb2, tabular_pb2_grpc
from lumen.training.v1 import training_pb2 as pb
from lumen.training.v1 import training_pb2_grpc as pb_grpc
from services.training.records import JobRecord
from services.training.server import TrainingService
from services.training.usage import training_time
from tests.gateway.conftest import add_key
from tests.in_process import running_gateway
from tests.training.conftest import training_service
from tests.training.data import sklearn_csv, upload_parts

TRAINING = ("training", "gateway")


@dataclass
class Caller:
    """One key's view of the gateway."""

    channel: grpc.aio.Channel
    secret: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-api-key", self.secret),)

    async def upload(self, data: bytes) -> pb.UploadDatasetResponse:
        stub = pb_grpc.DatasetServiceStub(self.channel)
        return await stub.UploadDataset(upload_parts(data), metadata=self.metadata, timeout=30)

    async def delete(self, dataset_id: str) -> None:
        stub = pb_grpc.DatasetServiceStub(self.channel)
        await stub.DeleteDataset(pb.DeleteDatasetRequest(id=dataset_id), metadata=self.metadata, timeout=30)

    async def create(self, dataset_id: str, name: str, **fields: Any) -> pb.TrainingJob:
        request = pb.CreateTrainingJobRequest(recipe="tabular-dense", dataset_id=dataset_id, model_name=name, **fields)
        stub = pb_grpc.TrainingServiceStub(self.channel)
        return (await stub.CreateTrainingJob(request, metadata=self.metadata, timeout=30)).job

    async def usage(self, key_id: str = "") -> gateway_pb2.GetUsageResponse:
        stub = gateway_pb2_grpc.GatewayServiceStub(self.channel)
        return await stub.GetUsage(gateway_pb2.GetUsageRequest(key_id=key_id), metadata=self.metadata, timeout=30)


async def exhausted(call) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, info.value.details()
    return info.value.details() or ""


IRIS, WINE = sklearn_csv("iris"), sklearn_csv("wine")
BIG = IRIS + IRIS.split(b"\n", 1)[1] * 3  # iris's rows four times: more than "small" may keep at all


@pytest.fixture
async def callers(tmp_path: Path) -> AsyncIterator[tuple[dict[str, Caller], TrainingService]]:
    """Keys "small" (room for wine or iris, not both, and 1 job), "roomy" (no limits) and "admin", over a training
    service that starts no job (max_concurrent_jobs=0)."""
    keys = tmp_path / "keys.json"
    secrets = {
        "small": add_key(keys, "small", services=TRAINING, dataset_bytes=len(WINE) + 100, training_jobs=1),
        "roomy": add_key(keys, "roomy", services=TRAINING),
        "admin": add_key(keys, "admin", services=TRAINING, admin=True),
    }
    service = await training_service(tmp_path, max_concurrent_jobs=0)
    async with (
        running_gateway(training_address=f"127.0.0.1:{service.port}", keys_file=str(keys)) as gateway,
        grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel,
    ):
        yield {name: Caller(channel, secret) for name, secret in secrets.items()}, service
    await service.stop(0)


async def test_dataset_bytes_are_limited_per_key(callers) -> None:
    keys, _ = callers
    small, roomy = keys["small"], keys["roomy"]
    assert len(IRIS) < len(WINE) < len(WINE) + 100 < len(IRIS) + len(WINE) and len(BIG) > len(WINE) + 100
    iris = (await small.upload(IRIS)).dataset
    again = await small.upload(IRIS)  # the same bytes: no more room taken
    assert again.already_existed and again.dataset.id == iris.id
    details = await exhausted(small.upload(WINE))  # iris + wine would pass the limit
    assert "'small'" in details and "dataset_bytes" in details and f"stores {len(IRIS)} bytes" in details
    details = await exhausted(small.upload(BIG))  # more than the whole limit: refused while it streams
    assert "dataset_bytes" in details
    # Another key has room of its own, and storing the same bytes as "small" costs "small" nothing.
    wine = (await roomy.upload(WINE)).dataset
    assert (await roomy.upload(IRIS)).already_existed
    # Room is made by deleting: then wine fits (it is stored already; now "small" holds it too).
    await small.delete(iris.id)
    assert (await small.upload(WINE)).dataset.id == wine.id
    await exhausted(small.upload(IRIS))


async def test_unfinished_jobs_are_limited_per_key(callers) -> None:
    keys, _ = callers
    small, roomy = keys["small"], keys["roomy"]
    iris = (await roomy.upload(IRIS)).dataset.id
    first = await small.create(iris, "iris-one")
    assert first.owner == "small" and first.state == pb.JOB_STATE_QUEUED
    details = await exhausted(small.create(iris, "iris-two"))
    assert "'small'" in details and "limit is 1" in details
    await roomy.create(iris, "iris-three")  # not counted against "small"
    stub = pb_grpc.TrainingServiceStub(small.channel)
    await stub.CancelTrainingJob(pb.CancelTrainingJobRequest(id=first.id), metadata=small.metadata, timeout=30)
    assert (await small.create(iris, "iris-two")).state == pb.JOB_STATE_QUEUED  # room again


async def test_usage_without_jobs_shows_no_training_time(callers) -> None:
    keys, _ = callers
    usage = await keys["small"].usage()
    assert usage.key_id == "small" and usage.usage.training_seconds == 0.0


async def test_usage_is_answered_when_the_training_service_is_down(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    secret = add_key(keys, "k", services=TRAINING)
    async with (
        running_gateway(keys_file=str(keys)) as gateway,  # training_address: nothing listens
        grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel,
    ):
        usage = await Caller(channel, secret).usage()
    assert usage.key_id == "k" and usage.usage.training_seconds == 0.0


def _record(start: float | None, end: float | None) -> JobRecord:
    return JobRecord("j", "r", "d", {}, "m", 0.2, 0, start_time=start, end_time=end)


@pytest.mark.parametrize(
    ("start", "end", "seconds"),
    [
        (None, None, 0.0),  # never ran
        (100.0, 130.0, 30.0),  # within the period
        (50.0, 130.0, 30.0),  # started before it: from the period's start
        (150.0, 250.0, 50.0),  # ends after it: until the period's end
        (190.0, None, 5.0),  # running: until now (195)
        (10.0, 90.0, 0.0),  # before the period
    ],
)
def test_training_time_is_the_part_of_each_job_within_the_period(
    start: float | None, end: float | None, seconds: float
) -> None:
    found, count = training_time([_record(start, end)], start=100.0, end=200.0, now=195.0)
    assert found == pytest.approx(seconds) and count == (1 if seconds else 0)


@pytest.mark.slow
async def test_usage_shows_the_training_seconds_of_the_keys_jobs(tmp_path: Path) -> None:
    """A real job (real worker process) trains and is served; its key's usage then counts its run time."""
    from services.tabular import app as tabular_app
    from services.tabular.settings import TabularSettings
    from shared.model_service import start as start_model_service

    keys = tmp_path / "keys.json"
    trainer = add_key(keys, "trainer", services=("training", "tabular", "gateway"))
    other = add_key(keys, "other", services=TRAINING)
    admin = add_key(keys, "admin", services=TRAINING, admin=True)
    (tmp_path / "models" / "tabular").mkdir(parents=True)
    tabular = await start_model_service(
        "tabular",
        TabularSettings(host="127.0.0.1", port=0, model_repository=str(tmp_path / "models" / "tabular")),
        tabular_app.FACTORIES,
        tabular_app.registrations,
    )
    service = await training_service(tmp_path, tabular_address=f"127.0.0.1:{tabular.port}")
    try:
        async with (
            running_gateway(
                training_address=f"127.0.0.1:{service.port}",
                tabular_address=f"127.0.0.1:{tabular.port}",
                keys_file=str(keys),
            ) as gateway,
            grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel,
        ):
            me = Caller(channel, trainer)
            dataset = (await me.upload(IRIS)).dataset.id
            job = await me.create(dataset, "iris-usage", hyperparameters={"epochs": 2})
            stub = pb_grpc.TrainingServiceStub(channel)
            watch = pb.WatchTrainingJobRequest(id=job.id)
            async for event in stub.WatchTrainingJob(watch, metadata=me.metadata, timeout=240):
                job = event.job
            assert job.state == pb.JOB_STATE_SUCCEEDED, job.error.message
            reply = await tabular_pb2_grpc.TabularServiceStub(channel).Predict(
                tabular_pb2.PredictRequest(
                    model=common_pb2.ModelRef(name="iris-usage"),
                    rows=[tabular_pb2.FeatureRow(values=[6.7, 3, 5.2, 2.3])],
                ),
                metadata=me.metadata,
                timeout=60,
            )
            assert reply.predictions[0].label
            ran = (job.end_time.ToNanoseconds() - job.start_time.ToNanoseconds()) / 1e9
            assert ran > 0
            mine = await me.usage()
            assert mine.usage.training_seconds == pytest.approx(ran, abs=1e-3)
            by_admin = await Caller(channel, admin).usage("trainer")  # the key named, not the admin's own
            assert by_admin.usage.training_seconds == pytest.approx(ran, abs=1e-3)
            assert (await Caller(channel, other).usage()).usage.training_seconds == 0.0
            assert (await Caller(channel, admin).usage()).usage.training_seconds == 0.0
    finally:
        await service.stop(0)
        await tabular.stop(0)
