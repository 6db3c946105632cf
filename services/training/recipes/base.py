"""What a recipe is: its hyperparameters with ranges, the datasets it reads,
the service that serves what it makes, and a ``train`` function.

Recipe modules import their frameworks inside ``train`` only: the service
imports every recipe to validate requests and must stay free of TensorFlow.
``train`` runs in the training process (services.training.worker).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.training.records import DatasetRecord
from shared.errors import InvalidArgument


class TrainingFailed(Exception):
    """A failure of the job itself (NaN loss, unreadable data): its message is the job's error."""


@dataclass(frozen=True)
class Hyper:
    name: str
    default: float
    min: float
    max: float
    description: str
    integer: bool = True


@dataclass
class TrainContext:
    dataset: Path
    format: int
    label_column: str
    hyperparameters: dict[str, float]
    validation_split: float
    seed: int
    work_dir: Path  # checkpoints, kept across restarts of the job
    out_dir: Path  # the model directory's files go here
    report: Callable[[dict[str, Any]], None] = field(default=lambda event: None)

    def hyper(self, name: str) -> float:
        return self.hyperparameters[name]

    def int(self, name: str) -> int:
        return round(self.hyperparameters[name])


@dataclass
class TrainOutput:
    """What ``train`` made in ctx.out_dir: model.json fields and the held-out metrics."""

    framework: str
    parameters: dict[str, Any]
    metrics: dict[str, float]
    path: str = "."
    files: tuple[str, ...] = ()  # names of parameters that are files of the model directory


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    formats: tuple[int, ...]
    service: str
    task: str
    hyperparameters: tuple[Hyper, ...]
    train: Callable[[TrainContext], TrainOutput]
    classes: bool = True  # needs labels, at least two of them
    check: Callable[[DatasetRecord, Path], None] | None = None  # recipe-specific read of the data

    def effective(self, given: Mapping[str, float]) -> dict[str, float]:
        """Defaults filled in; unknown names and values out of range are INVALID_ARGUMENT naming them."""
        known = {h.name: h for h in self.hyperparameters}
        for name in given:
            if name not in known:
                raise InvalidArgument(
                    f"hyperparameters[{name}]", f"unknown for recipe {self.name!r}; known: {', '.join(sorted(known))}"
                )
        out = {}
        for h in self.hyperparameters:
            value = float(given.get(h.name, h.default))
            field_name = f"hyperparameters[{h.name}]"
            if not math.isfinite(value) or not h.min <= value <= h.max:
                raise InvalidArgument(field_name, f"must be between {h.min:g} and {h.max:g}, got {value:g}")
            if h.integer and value != int(value):
                raise InvalidArgument(field_name, f"must be a whole number, got {value:g}")
            out[h.name] = value
        return out

    def check_dataset(self, record: DatasetRecord, path: Path) -> None:
        if record.format not in self.formats:
            from lumen.training.v1 import training_pb2

            names = ", ".join(training_pb2.DatasetFormat.Name(f) for f in self.formats)
            got = training_pb2.DatasetFormat.Name(record.format)
            raise InvalidArgument("dataset_id", f"recipe {self.name!r} reads {names}, not {got}")
        if self.classes and len(record.labels) < 2:
            raise InvalidArgument("dataset_id", f"the label column has {len(record.labels)} class(es); need 2 or more")
        if self.check is not None:
            self.check(record, path)
