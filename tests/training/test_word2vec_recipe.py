"""The word2vec recipe in this process: resuming from its checkpoint gives the vectors an unbroken run gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lumen.training.v1 import training_pb2 as pb
from services.training.recipes import RECIPES
from services.training.recipes.base import TrainContext, TrainingFailed
from tests.training.data import lee_corpus

pytestmark = pytest.mark.slow
HYPER = {"epochs": 4.0, "vector_size": 20.0}


class Crash(Exception):
    pass


def context(tmp: Path, name: str, report: Any = lambda event: None, **hyper: float) -> TrainContext:
    (tmp / name / "out").mkdir(parents=True, exist_ok=True)
    (tmp / name / "work").mkdir(exist_ok=True)
    dataset = tmp / "lee.txt"
    if not dataset.exists():
        dataset.write_bytes(lee_corpus())
    recipe = RECIPES["word2vec"]
    given = recipe.effective({**HYPER, **hyper})
    return TrainContext(
        dataset, pb.DATASET_FORMAT_TEXT, "", given, 0.2, 3, tmp / name / "work", tmp / name / "out", report
    )


def vectors(ctx: TrainContext) -> np.ndarray:
    from gensim.models import KeyedVectors

    return KeyedVectors.load(str(ctx.out_dir / "vectors.kv")).vectors


def test_resumed_run_equals_unbroken_run(tmp_path: Path) -> None:
    recipe = RECIPES["word2vec"]
    unbroken = context(tmp_path, "unbroken")
    recipe.train(unbroken)

    def crash_after_two(event: dict[str, Any]) -> None:
        if event["epoch"] == 2:
            raise Crash

    with pytest.raises(Crash):
        recipe.train(context(tmp_path, "resumed", crash_after_two))
    events: list[dict[str, Any]] = []
    resumed = context(tmp_path, "resumed", events.append)
    recipe.train(resumed)
    assert events[0]["resumed_from_epoch"] == 2 and [e["epoch"] for e in events] == [2, 3, 4]
    np.testing.assert_array_equal(vectors(resumed), vectors(unbroken))


def test_a_corpus_without_two_frequent_words_fails_the_job(tmp_path: Path) -> None:
    with pytest.raises(TrainingFailed, match="min_count=10000"):
        RECIPES["word2vec"].train(context(tmp_path, "rare", min_count=10000.0))
