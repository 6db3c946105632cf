"""Training operations of `Client` and `AsyncClient` (lumen.api.Api inherits them): datasets,
recipes, jobs, and `train`, which does all of it::

    with Client("localhost:50051") as client:
        job = client.train("tabular-dense", "iris.csv", "iris-dense", {"epochs": 12})
        print(job.result.model_name, job.result.model_version, dict(job.result.metrics))

A dataset is a file (its format from the suffix: .csv, .jsonl, .txt, .zip), a folder of one
sub-folder of images per class (zipped on the way up), or bytes with a format. An upload's
deadline grows with its size; a watch lasts as long as its job (up to a week).
"""

from __future__ import annotations

import functools
import io
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from lumen.ops import Plan, op, stream_op
from lumen.training.v1 import training_pb2 as pb

CHUNK_BYTES = 1 << 20
UPLOAD_BYTES_PER_S = 1 << 20  # slowest upload the deadline allows for, on top of the client's timeout
WATCH_TIMEOUT_S = 7 * 86400.0
SUFFIX_FORMATS = {
    ".csv": pb.DATASET_FORMAT_CSV,
    ".jsonl": pb.DATASET_FORMAT_JSONL,
    ".ndjson": pb.DATASET_FORMAT_JSONL,
    ".txt": pb.DATASET_FORMAT_TEXT,
    ".cor": pb.DATASET_FORMAT_TEXT,
    ".zip": pb.DATASET_FORMAT_IMAGE_ZIP,
}
ENDED = frozenset({pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED})
Sent = Callable[[int, int], None]  # (bytes sent, total bytes)
DataSource = str | Path | bytes


def dataset_format(source: Path, given: str | int = "") -> int:
    """DatasetFormat for ``source``: ``given`` ("csv", "jsonl", "text", "image_zip" or the enum), else its suffix."""
    if isinstance(given, int) and given:
        return given
    if isinstance(given, str) and given:
        return pb.DatasetFormat.Value(f"DATASET_FORMAT_{given.upper()}")
    if source.is_dir():
        return pb.DATASET_FORMAT_IMAGE_ZIP
    try:
        return SUFFIX_FORMATS[source.suffix.lower()]
    except KeyError:
        known = ", ".join(sorted(SUFFIX_FORMATS))
        raise ValueError(f"{source}: no dataset format for {source.suffix!r} (known: {known}; or give one)") from None


def zip_folder(folder: Path) -> bytes:
    """A folder of one sub-folder per class as the IMAGE_ZIP the training service reads."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:  # images are compressed already
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            archive.write(path, path.relative_to(folder).as_posix())
    return out.getvalue()


def job_state(state: str | int) -> int:
    """JobState from "running", "JOB_STATE_RUNNING" or the enum value ("" or 0: every state)."""
    if isinstance(state, int):
        return state
    return pb.JobState.Value("JOB_STATE_" + state.upper().removeprefix("JOB_STATE_")) if state else 0


def _upload_parts(spec: pb.DatasetSpec, data: bytes, on_sent: Sent | None) -> Iterator[pb.UploadDatasetRequest]:
    yield pb.UploadDatasetRequest(spec=spec)
    for start in range(0, len(data), CHUNK_BYTES):
        yield pb.UploadDatasetRequest(chunk=data[start : start + CHUNK_BYTES])
        if on_sent is not None:
            on_sent(min(start + CHUNK_BYTES, len(data)), len(data))


def _job(response: Any) -> pb.TrainingJob:
    return response.job


def _same(response: Any) -> Any:
    return response


class TrainingApi:
    """Datasets, recipes and training jobs; `lumen.api.Api` brings the services and defaults."""

    asynchronous: ClassVar[bool] = False
    timeout: float | None
    datasets: Any
    training: Any

    @op
    def upload_dataset(
        self,
        source: DataSource,
        format: str | int = "",
        label_column: str = "",
        display_name: str = "",
        on_sent: Sent | None = None,
    ) -> Plan[pb.UploadDatasetResponse]:
        """UploadDataset of a file, a folder of class folders (zipped) or bytes (``format`` needed then);
        ``on_sent(bytes sent, total)`` after each chunk. ``already_existed``: those bytes were there."""
        if isinstance(source, bytes):
            if not format:
                raise ValueError("bytes need a format (csv, jsonl, text or image_zip)")
            data, fmt, name = source, dataset_format(Path(), format), display_name
        else:
            path = Path(source)
            fmt, name = dataset_format(path, format), display_name or path.name
            data = zip_folder(path) if path.is_dir() else path.read_bytes()
        spec = pb.DatasetSpec(format=fmt, label_column=label_column, display_name=name[:128])  # type: ignore[arg-type]
        deadline = None if self.timeout is None else self.timeout + len(data) / UPLOAD_BYTES_PER_S
        upload = functools.partial(self.datasets.UploadDataset, timeout=deadline)
        return Plan(upload, _upload_parts(spec, data, on_sent), _same)

    @op
    def get_dataset(self, dataset_id: str) -> Plan[pb.Dataset]:
        return Plan(self.datasets.GetDataset, pb.GetDatasetRequest(id=dataset_id), lambda r: r.dataset)

    @op
    def list_datasets(self, page_size: int = 0, page_token: str = "") -> Plan[pb.ListDatasetsResponse]:
        """One page of datasets, newest first (``next_page_token`` for the next)."""
        request = pb.ListDatasetsRequest(page_size=page_size, page_token=page_token)
        return Plan(self.datasets.ListDatasets, request, _same)

    @op
    def delete_dataset(self, dataset_id: str) -> Plan[pb.DeleteDatasetResponse]:
        return Plan(self.datasets.DeleteDataset, pb.DeleteDatasetRequest(id=dataset_id), _same)

    @op
    def list_recipes(self) -> Plan[list[pb.Recipe]]:
        """Every recipe, with its hyperparameters' defaults and ranges."""
        return Plan(self.training.ListRecipes, pb.ListRecipesRequest(), lambda r: list(r.recipes))

    @op
    def create_training_job(
        self,
        recipe: str,
        dataset_id: str,
        model_name: str,
        hyperparameters: Mapping[str, float] | None = None,
        validation_split: float = 0.0,
        seed: int = 0,
        request_id: str = "",
    ) -> Plan[pb.TrainingJob]:
        """A new job (QUEUED); a ``request_id`` used before gives that request's job instead."""
        request = pb.CreateTrainingJobRequest(
            recipe=recipe,
            dataset_id=dataset_id,
            model_name=model_name,
            hyperparameters=dict(hyperparameters or {}),
            validation_split=validation_split,
            seed=seed,
            request_id=request_id,
        )
        return Plan(self.training.CreateTrainingJob, request, _job)

    @op
    def get_training_job(self, job_id: str) -> Plan[pb.TrainingJob]:
        return Plan(self.training.GetTrainingJob, pb.GetTrainingJobRequest(id=job_id), _job)

    @op
    def list_training_jobs(
        self, state: str | int = "", page_size: int = 0, page_token: str = ""
    ) -> Plan[pb.ListTrainingJobsResponse]:
        """One page of jobs (of one state: "running", ...), newest first."""
        request = pb.ListTrainingJobsRequest(state=job_state(state), page_size=page_size, page_token=page_token)  # type: ignore[arg-type]
        return Plan(self.training.ListTrainingJobs, request, _same)

    @op
    def cancel_training_job(self, job_id: str) -> Plan[pb.TrainingJob]:
        return Plan(self.training.CancelTrainingJob, pb.CancelTrainingJobRequest(id=job_id), _job)

    @op
    def delete_training_job(self, job_id: str) -> Plan[pb.DeleteTrainingJobResponse]:
        return Plan(self.training.DeleteTrainingJob, pb.DeleteTrainingJobRequest(id=job_id), _same)

    @stream_op
    def watch_training_job(self, job_id: str) -> Plan[pb.TrainingJob]:
        """The job now, then at each change (state, epoch, loss, metrics), until it ends."""
        watch = functools.partial(self.training.WatchTrainingJob, timeout=WATCH_TIMEOUT_S)
        return Plan(watch, pb.WatchTrainingJobRequest(id=job_id), _job)

    def train(
        self,
        recipe: str,
        data: DataSource,
        model_name: str,
        hyperparameters: Mapping[str, float] | None = None,
        *,
        format: str | int = "",
        label_column: str = "",
        on_sent: Sent | None = None,
        on_progress: Callable[[pb.TrainingJob], None] | None = None,
        **job: Any,
    ) -> Any:
        """Upload ``data``, create the job, follow it to its end: the ended job (its result or error).
        ``job``: create_training_job's other fields (validation_split, seed, request_id). Awaitable
        on AsyncClient."""
        upload = functools.partial(self.upload_dataset, data, format, label_column, on_sent=on_sent)
        create = functools.partial(
            self.create_training_job, recipe, model_name=model_name, hyperparameters=hyperparameters, **job
        )
        if self.asynchronous:
            return self._train_async(upload, create, on_progress)
        ended = create(dataset_id=upload().dataset.id)
        for event in self.watch_training_job(ended.id):
            ended = event
            if on_progress is not None:
                on_progress(event)
        return ended

    async def _train_async(self, upload: Any, create: Any, on_progress: Any) -> pb.TrainingJob:
        ended = await create(dataset_id=(await upload()).dataset.id)
        async for event in self.watch_training_job(ended.id):
            ended = event
            if on_progress is not None:
                on_progress(event)
        return ended
