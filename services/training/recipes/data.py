"""Reading datasets for recipes, and the one split every recipe uses.

`split` is stratified and seeded: the same dataset, fraction and seed give
the same held-out records here, in the service's test and in any re-run.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from lumen.training.v1 import training_pb2
from services.training.recipes.base import TrainingFailed
from shared.errors import InvalidArgument


def split(labels: list[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices): ``fraction`` of each class held out (at least one of each)."""
    rng = np.random.default_rng(seed)
    array = np.asarray(labels)
    held: list[int] = []
    for label in sorted(set(labels)):
        members = rng.permutation(np.flatnonzero(array == label))
        if len(members) > 1:
            held += members[: max(1, math.floor(len(members) * fraction))].tolist()
    held_set = set(held)
    train = np.asarray([i for i in range(len(labels)) if i not in held_set], dtype=np.int64)
    return train, np.asarray(sorted(held), dtype=np.int64)


def read_table(path: Path, label_column: str, max_cells: int = 0) -> tuple[list[str], np.ndarray, list[str]]:
    """CSV -> (feature names, float32 features, labels); a non-number names its line and column.

    Rows are parsed one at a time (the file's text is never held whole). ``max_cells`` > 0 reads only the
    rows whose features fit in that many cells: a check of the head of a large file."""
    names: list[str] = []
    rows: list[np.ndarray] = []
    labels: list[str] = []
    at = -1
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if at < 0:
                header = [c.strip() for c in row]
                at = header.index(label_column)
                names = [c for i, c in enumerate(header) if i != at]
                continue
            if max_cells and (len(rows) + 1) * len(names) > max(max_cells, len(names)):
                break
            labels.append(row[at].strip())
            rows.append(_features(row, at, reader.line_num))
    features = np.stack(rows) if rows else np.zeros((0, len(names)), dtype=np.float32)
    return names, features, labels


def _features(row: list[str], at: int, line: int) -> np.ndarray:
    values = np.zeros(len(row) - 1, dtype=np.float32)
    for j, cell in enumerate(c for i, c in enumerate(row) if i != at):
        try:
            values[j] = float(cell)
        except ValueError:
            values[j] = math.nan
        if not math.isfinite(values[j]):
            why = "not finite" if _is_number(cell) else f"{cell!r} is not a number"
            raise InvalidArgument("dataset_id", f"line {line}, column {j + (j >= at) + 1}: {why}")
    return values


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def read_labelled_texts(path: Path, fmt: int, label_column: str) -> tuple[list[str], list[str]]:
    """(texts, labels) from JSONL records with a "text" field, or a CSV with a "text" column."""
    texts, labels = [], []
    if fmt == training_pb2.DATASET_FORMAT_JSONL:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            record = json.loads(line)
            text = record.get("text")
            if not isinstance(text, str) or not text.strip():
                raise InvalidArgument("dataset_id", f"line {n}: no non-empty 'text' string")
            texts.append(text)
            labels.append(str(record[label_column]))
    else:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if "text" not in (reader.fieldnames or []):
                raise InvalidArgument("dataset_id", "the CSV has no 'text' column")
            for row in reader:
                texts.append(row["text"])
                labels.append(row[label_column].strip())
    return texts, labels


def read_lines(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise TrainingFailed("the corpus has no lines")
    return lines


def class_ids(labels: list[str]) -> tuple[list[str], np.ndarray]:
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    return classes, np.asarray([index[label] for label in labels], dtype=np.int64)


def heldout_metrics(predicted: Any, expected: Any, train_size: int) -> dict[str, float]:
    """Accuracy on the held-out items (arrays of class ids) and the sizes of both sides of the split."""
    return {
        "heldout_accuracy": float((predicted == expected).mean()),
        "heldout_size": float(len(expected)),
        "train_size": float(train_size),
    }
