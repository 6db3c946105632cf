"""lumen.training.v1 DatasetService and TrainingService: thin, over Datasets and Jobs."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from lumen.training.v1 import training_pb2, training_pb2_grpc
from services.training import convert, usage
from services.training.datasets import Datasets
from services.training.jobs import Jobs
from services.training.recipes import RECIPES
from shared.errors import InvalidArgument

# Set by the gateway from the caller's key (gateway.auth); clients cannot set them through it.
OWNER_KEY, OWNER_LIMIT_KEY = "x-lumen-key-id", "x-lumen-key-training-jobs"
OWNER_DATASET_BYTES_KEY = "x-lumen-key-dataset-bytes"


class DatasetServicer(training_pb2_grpc.DatasetServiceServicer):
    def __init__(self, datasets: Datasets) -> None:
        self.datasets = datasets

    async def UploadDataset(
        self, request_iterator: AsyncIterator[training_pb2.UploadDatasetRequest], context: grpc.aio.ServicerContext
    ) -> training_pb2.UploadDatasetResponse:
        owner, limit = _owner(context, OWNER_DATASET_BYTES_KEY)
        record, existed = await self.datasets.upload(request_iterator, owner, limit)
        return training_pb2.UploadDatasetResponse(dataset=convert.dataset(record), already_existed=existed)

    async def GetDataset(
        self, request: training_pb2.GetDatasetRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.GetDatasetResponse:
        return training_pb2.GetDatasetResponse(dataset=convert.dataset(self.datasets.get(request.id)))

    async def ListDatasets(
        self, request: training_pb2.ListDatasetsRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.ListDatasetsResponse:
        rows, token = convert.listed(request, self.datasets.store.list_datasets, lambda row: row[0])
        return training_pb2.ListDatasetsResponse(datasets=[convert.dataset(r) for _, r in rows], next_page_token=token)

    async def DeleteDataset(
        self, request: training_pb2.DeleteDatasetRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.DeleteDatasetResponse:
        self.datasets.delete(request.id)
        return training_pb2.DeleteDatasetResponse()


def _owner(context: grpc.aio.ServicerContext, limit_key: str = OWNER_LIMIT_KEY) -> tuple[str, int]:
    """The caller's key id and one of its limits (0: none; unfinished jobs by default), as the gateway sent them."""
    metadata = {k: str(v) for k, v in context.invocation_metadata() or ()}
    limit = metadata.get(limit_key, "0")
    return metadata.get(OWNER_KEY, ""), int(limit) if limit.isdigit() else 0


class TrainingServicer(training_pb2_grpc.TrainingServiceServicer):
    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs

    async def ListRecipes(
        self, request: training_pb2.ListRecipesRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.ListRecipesResponse:
        return training_pb2.ListRecipesResponse(recipes=[convert.recipe(RECIPES[n]) for n in sorted(RECIPES)])

    async def CreateTrainingJob(
        self, request: training_pb2.CreateTrainingJobRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.CreateTrainingJobResponse:
        return training_pb2.CreateTrainingJobResponse(job=convert.job(self.jobs.create(request, *_owner(context))))

    async def GetTrainingJob(
        self, request: training_pb2.GetTrainingJobRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.GetTrainingJobResponse:
        return training_pb2.GetTrainingJobResponse(job=convert.job(self.jobs.get(request.id)))

    async def ListTrainingJobs(
        self, request: training_pb2.ListTrainingJobsRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.ListTrainingJobsResponse:
        if request.state not in training_pb2.JobState.values():
            raise InvalidArgument("state", f"unknown job state {request.state}")
        state = training_pb2.JobState.Name(request.state).removeprefix("JOB_STATE_") if request.state else ""
        store = self.jobs.store
        jobs, token = convert.listed(
            request, lambda before, n: store.list_jobs(state, before, n), lambda j: j.seq, f"state={state}"
        )
        return training_pb2.ListTrainingJobsResponse(jobs=[convert.job(j) for j in jobs], next_page_token=token)

    async def CancelTrainingJob(
        self, request: training_pb2.CancelTrainingJobRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.CancelTrainingJobResponse:
        return training_pb2.CancelTrainingJobResponse(job=convert.job(await self.jobs.cancel(request.id)))

    async def WatchTrainingJob(
        self, request: training_pb2.WatchTrainingJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[training_pb2.WatchTrainingJobResponse]:
        async for job in self.jobs.watch(request.id):
            yield training_pb2.WatchTrainingJobResponse(job=convert.job(job))

    async def DeleteTrainingJob(
        self, request: training_pb2.DeleteTrainingJobRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.DeleteTrainingJobResponse:
        self.jobs.delete(request.id)
        return training_pb2.DeleteTrainingJobResponse()

    async def GetTrainingUsage(
        self, request: training_pb2.GetTrainingUsageRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.GetTrainingUsageResponse:
        start = _instant(request.start_time, "start_time", 0.0) if request.HasField("start_time") else 0.0
        end = _instant(request.end_time, "end_time", math.inf) if request.HasField("end_time") else math.inf
        if end < start:
            raise InvalidArgument("end_time", "is before start_time")
        owner, _ = _owner(context)
        jobs = self.jobs.store.jobs_of(owner) if owner else self.jobs.store.list_jobs(limit=-1)
        seconds, count = usage.training_time(jobs, start, end, time.time())
        return training_pb2.GetTrainingUsageResponse(training_seconds=seconds, jobs=count)


# Timestamp's valid range (0001-01-01 .. 9999-12-31, nanos 0..999,999,999), as google.protobuf defines it.
_MIN_SECONDS, _MAX_SECONDS = -62135596800, 253402300799


def _instant(stamp: Any, field: str, default: float) -> float:
    """Seconds since the epoch of a Timestamp, INVALID_ARGUMENT naming the field outside its range."""
    if not _MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS or not 0 <= stamp.nanos < 1_000_000_000:
        raise InvalidArgument(field, "is outside Timestamp's range (years 1 to 9999, nanos 0 to 999,999,999)")
    return stamp.seconds + stamp.nanos / 1e9
