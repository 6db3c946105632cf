"""Records to lumen.training.v1 messages, and page tokens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf import timestamp_pb2
from google.rpc import status_pb2

from lumen.training.v1 import training_pb2
from services.training.recipes.base import Recipe
from services.training.records import DatasetRecord, JobRecord
from shared import pages
from shared.errors import InvalidArgument

R = TypeVar("R")  # a store row


def _time(seconds: float | None) -> timestamp_pb2.Timestamp | None:
    if seconds is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def dataset(record: DatasetRecord) -> training_pb2.Dataset:
    return training_pb2.Dataset(
        id=record.id,
        format=record.format,  # type: ignore[arg-type]
        label_column=record.label_column,
        display_name=record.display_name,
        size_bytes=record.size_bytes,
        record_count=record.record_count,
        columns=record.columns,
        labels=record.labels,
        create_time=_time(record.create_time),
    )


def job(record: JobRecord) -> training_pb2.TrainingJob:
    progress = record.progress
    out = training_pb2.TrainingJob(
        id=record.id,
        recipe=record.recipe,
        dataset_id=record.dataset_id,
        hyperparameters=record.hyperparameters,
        model_name=record.model_name,
        validation_split=record.validation_split,
        seed=record.seed,
        request_id=record.request_id,
        owner=record.owner,
        state=training_pb2.JobState.Value(f"JOB_STATE_{record.state}"),
        progress=training_pb2.Progress(
            epoch=int(progress.get("epoch", 0)),
            total_epochs=int(progress.get("total_epochs", 0)),
            step=int(progress.get("step", 0)),
            total_steps=int(progress.get("total_steps", 0)),
            loss=float(progress.get("loss", 0.0)),
            metrics=progress.get("metrics", {}),
            eta_s=float(progress.get("eta_s", 0.0)),
            fraction=float(progress.get("fraction", 1.0 if record.state == "SUCCEEDED" else 0.0)),
            resumed_from_epoch=int(progress.get("resumed_from_epoch", 0)),
        ),
        create_time=_time(record.create_time),
        start_time=_time(record.start_time),
        end_time=_time(record.end_time),
    )
    if record.error:
        out.error.CopyFrom(status_pb2.Status(code=record.error["code"], message=record.error["message"]))
    if record.result:
        out.result.CopyFrom(training_pb2.TrainingResult(**record.result))
    return out


def recipe(r: Recipe) -> training_pb2.Recipe:
    return training_pb2.Recipe(
        name=r.name,
        description=r.description,
        formats=list(r.formats),  # type: ignore[arg-type]
        service=r.service,
        task=r.task,
        hyperparameters=[
            training_pb2.Hyperparameter(
                name=h.name, default_value=h.default, min=h.min, max=h.max, integer=h.integer, description=h.description
            )
            for h in r.hyperparameters
        ],
    )


def page(page_size: int, page_token: str, query: str = "") -> tuple[int, int]:
    """(limit, continue below this sequence number; 0: from the newest) from a request's page fields.

    Tokens are shared.pages' (opaque, good only for the same ``query``: the filter); the key is a record's
    sequence number, so the store pages in its query (newest first) and an insertion between pages
    neither repeats nor skips a record."""
    last = pages.after(page_token, query)
    if last and not last.isdigit():
        raise InvalidArgument("page_token", "is not a token this List call gave (pass next_page_token as is)")
    return pages.size(page_size), int(last or 0)


def next_page_token(seqs: list[int], limit: int, query: str = "") -> str:
    """Token after the page of ``limit`` records whose sequence numbers are ``seqs`` (one more was asked for,
    to know whether another page follows); "" on the last page."""
    return pages.token(str(seqs[limit - 1]), query) if len(seqs) > limit else ""


def listed(
    request: Any, fetch: Callable[[int, int], list[R]], seq: Callable[[R], int], query: str = ""
) -> tuple[list[R], str]:
    """One page of a List call and its next_page_token: ``fetch(before_seq, limit)`` reads the store newest
    first, one row more than the page to know whether another follows; ``seq`` is a row's sequence number."""
    limit, before = page(request.page_size, request.page_token, query)
    rows = fetch(before, limit + 1)
    return rows[:limit], next_page_token([seq(r) for r in rows], limit, query)
