"""The records the training service keeps: datasets and jobs (plain data, no storage)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

# Job states, named as in lumen.training.v1.JobState.
QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLING, CANCELLED = (
    "QUEUED",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "CANCELLING",
    "CANCELLED",
)
ENDED = frozenset({SUCCEEDED, FAILED, CANCELLED})


@dataclass
class DatasetRecord:
    id: str
    format: int
    label_column: str
    display_name: str
    size_bytes: int
    record_count: int
    columns: list[str]
    labels: list[str]
    create_time: float = field(default_factory=time.time)
    owners: list[str] = field(default_factory=list)  # key ids that uploaded these bytes (set by the gateway)


@dataclass
class JobRecord:
    id: str
    recipe: str
    dataset_id: str
    hyperparameters: dict[str, float]
    model_name: str
    validation_split: float
    seed: int
    request_id: str = ""
    owner: str = ""
    state: str = QUEUED
    error: dict[str, Any] | None = None  # {"code": int, "message": str}
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    create_time: float = field(default_factory=time.time)
    start_time: float | None = None
    end_time: float | None = None
    seq: int = 0  # insertion order, assigned by the store (pagination key)

    @property
    def ended(self) -> bool:
        return self.state in ENDED
