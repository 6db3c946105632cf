"""Training calls of the Python SDK (mixed into lumen.client.Client): datasets, recipes, jobs.

    with Client("localhost:50051") as client:
        job = client.train("tabular-dense", "iris.csv", "iris-dense", {"epochs": 12})
        print(job.result.model_name, job.result.model_version, dict(job.result.metrics))

A dataset is a file (its format from the suffix: .csv, .jsonl, .txt, .zip) or a
folder of one sub-folder of images per class (zipped on the way up). Uploads and
watches are long: they get a deadline from their size, and none, respectively.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc

from lumen.client_pages import every_page
from lumen.training.v1 import training_pb2 as pb
from lumen.training.v1 import training_pb2_grpc

CHUNK_BYTES = 1 << 20
UPLOAD_BYTES_PER_S = 1 << 20  # slowest upload rate the deadline allows for, on top of the client's timeout
WATCH_RETRY_S = 1.0
SUFFIX_FORMATS = {
    ".csv": pb.DATASET_FORMAT_CSV,
    ".jsonl": pb.DATASET_FORMAT_JSONL,
    ".ndjson": pb.DATASET_FORMAT_JSONL,
    ".txt": pb.DATASET_FORMAT_TEXT,
    ".cor": pb.DATASET_FORMAT_TEXT,
    ".zip": pb.DATASET_FORMAT_IMAGE_ZIP,
}
ENDED = frozenset({pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED})
Progress = Callable[[int, int], None]  # (bytes sent, total bytes)


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


class TrainingCalls:
    """Datasets, recipes and training jobs; ``Client`` provides the channel, deadline and API key."""

    timeout: float
    _metadata: tuple[tuple[str, str], ...]
    datasets: training_pb2_grpc.DatasetServiceStub
    training: training_pb2_grpc.TrainingServiceStub

    def _unary(self, method: Any, request: Any) -> Any:
        return method(request, timeout=self.timeout, metadata=self._metadata)

    # --- datasets
    def upload_dataset(
        self,
        source: str | Path | bytes,
        format: str | int = "",
        label_column: str = "",
        display_name: str = "",
        on_progress: Progress | None = None,
    ) -> pb.UploadDatasetResponse:
        """Upload a file, a folder of class folders (zipped) or bytes (``format`` required then)."""
        if isinstance(source, bytes):
            if not format:
                raise ValueError("bytes need a format (csv, jsonl, text or image_zip)")
            data, fmt, name = source, dataset_format(Path(), format), display_name
        else:
            path = Path(source)
            fmt, name = dataset_format(path, format), display_name or path.name
            data = zip_folder(path) if path.is_dir() else path.read_bytes()
        spec = pb.DatasetSpec(format=fmt, label_column=label_column, display_name=name[:128])

        def parts() -> Iterator[pb.UploadDatasetRequest]:
            yield pb.UploadDatasetRequest(spec=spec)
            for start in range(0, len(data), CHUNK_BYTES):
                yield pb.UploadDatasetRequest(chunk=data[start : start + CHUNK_BYTES])
                if on_progress is not None:
                    on_progress(min(start + CHUNK_BYTES, len(data)), len(data))

        deadline = self.timeout + len(data) / UPLOAD_BYTES_PER_S
        return self.datasets.UploadDataset(parts(), timeout=deadline, metadata=self._metadata)

    def get_dataset(self, dataset_id: str) -> pb.Dataset:
        return self._unary(self.datasets.GetDataset, pb.GetDatasetRequest(id=dataset_id)).dataset

    def list_datasets(self) -> list[pb.Dataset]:
        """Every dataset, newest first (every page)."""
        return every_page(self._unary, self.datasets.ListDatasets, pb.ListDatasetsRequest(), "datasets")

    def delete_dataset(self, dataset_id: str) -> None:
        self._unary(self.datasets.DeleteDataset, pb.DeleteDatasetRequest(id=dataset_id))

    # --- recipes and jobs
    def list_recipes(self) -> list[pb.Recipe]:
        return list(self._unary(self.training.ListRecipes, pb.ListRecipesRequest()).recipes)

    def create_training_job(
        self,
        recipe: str,
        dataset_id: str,
        model_name: str,
        hyperparameters: Mapping[str, float] | None = None,
        validation_split: float = 0.0,
        seed: int = 0,
        request_id: str = "",
    ) -> pb.TrainingJob:
        request = pb.CreateTrainingJobRequest(
            recipe=recipe,
            dataset_id=dataset_id,
            model_name=model_name,
            hyperparameters=dict(hyperparameters or {}),
            validation_split=validation_split,
            seed=seed,
            request_id=request_id,
        )
        return self._unary(self.training.CreateTrainingJob, request).job

    def get_training_job(self, job_id: str) -> pb.TrainingJob:
        return self._unary(self.training.GetTrainingJob, pb.GetTrainingJobRequest(id=job_id)).job

    def list_training_jobs(self, state: str | int = "") -> list[pb.TrainingJob]:
        """Every job (of one state: "running", ...), newest first (every page)."""
        request = pb.ListTrainingJobsRequest(state=job_state(state))  # type: ignore[arg-type]
        return every_page(self._unary, self.training.ListTrainingJobs, request, "jobs")

    def cancel_training_job(self, job_id: str) -> pb.TrainingJob:
        return self._unary(self.training.CancelTrainingJob, pb.CancelTrainingJobRequest(id=job_id)).job

    def delete_training_job(self, job_id: str) -> None:
        self._unary(self.training.DeleteTrainingJob, pb.DeleteTrainingJobRequest(id=job_id))

    def watch_training_job(self, job_id: str, reconnects: int = 30) -> Iterator[pb.TrainingJob]:
        """The job now, then at every change, until it ends. No deadline: jobs take as long as they take.
        A stream cut by UNAVAILABLE (a restart of the service) is opened again: job records are durable."""
        left = reconnects
        while True:
            try:
                stream = self.training.WatchTrainingJob(pb.WatchTrainingJobRequest(id=job_id), metadata=self._metadata)
                for message in stream:
                    left = reconnects
                    yield message.job
                    if message.job.state in ENDED:
                        return
                return
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE or left == 0:  # type: ignore[attr-defined]
                    raise
                left -= 1
                time.sleep(WATCH_RETRY_S)

    def train(
        self,
        recipe: str,
        data: str | Path,
        model_name: str,
        hyperparameters: Mapping[str, float] | None = None,
        *,
        format: str | int = "",
        label_column: str = "",
        on_upload: Progress | None = None,
        on_progress: Callable[[pb.TrainingJob], None] | None = None,
        **job: Any,
    ) -> pb.TrainingJob:
        """Upload ``data``, create the job, follow it to its end; the ended job (result or error in it)."""
        dataset = self.upload_dataset(data, format, label_column, on_progress=on_upload).dataset
        last = self.create_training_job(recipe, dataset.id, model_name, hyperparameters, **job)
        for event in self.watch_training_job(last.id):
            last = event
            if on_progress is not None:
                on_progress(event)
        return last
