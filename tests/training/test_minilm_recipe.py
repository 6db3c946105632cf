"""The minilm-classifier recipe in this process: a run stopped after an epoch and resumed from its
checkpoint ends with the weights an unbroken run ends with (on 40 short sentences, to stay cheap)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lumen.training.v1 import training_pb2 as pb
from services.training.recipes import RECIPES
from services.training.recipes.base import TrainContext
from tests.training.data import polarity_jsonl

pytestmark = pytest.mark.slow
HYPER = {"epochs": 2.0, "max_length": 16.0, "trainable_layers": 1.0, "batch_size": 8.0, "learning_rate": 0.0005}


class Crash(Exception):
    pass


def context(tmp: Path, name: str, report: Any = lambda event: None) -> TrainContext:
    (tmp / name / "out").mkdir(parents=True, exist_ok=True)
    (tmp / name / "work").mkdir(exist_ok=True)
    dataset = tmp / "polarity.jsonl"
    if not dataset.exists():
        lines = polarity_jsonl().splitlines(keepends=True)
        dataset.write_bytes(b"".join(lines[:20] + lines[-20:]))  # both classes
    given = RECIPES["minilm-classifier"].effective(HYPER)
    return TrainContext(
        dataset, pb.DATASET_FORMAT_JSONL, "label", given, 0.25, 3, tmp / name / "work", tmp / name / "out", report
    )


def weights(ctx: TrainContext) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(ctx.out_dir / "model.safetensors"))


def test_resumed_run_equals_unbroken_run(tmp_path: Path) -> None:
    recipe = RECIPES["minilm-classifier"]
    unbroken = context(tmp_path, "unbroken")
    metrics = recipe.train(unbroken).metrics

    def crash_after_one(event: dict[str, Any]) -> None:
        if event["epoch"] == 1:
            raise Crash

    with pytest.raises(Crash):
        recipe.train(context(tmp_path, "resumed", crash_after_one))
    events: list[dict[str, Any]] = []
    resumed = context(tmp_path, "resumed", events.append)
    assert recipe.train(resumed).metrics == metrics
    assert events[0]["resumed_from_epoch"] == 1 and [e["epoch"] for e in events if e["step"] == e["total_steps"]] == [2]
    want, got = weights(unbroken), weights(resumed)
    assert want.keys() == got.keys()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
