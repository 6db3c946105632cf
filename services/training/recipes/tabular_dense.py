"""Dense net on tabular features (CSV: numeric columns and a label column),
served by the tabular service's Predict.

Features are standardised with the training rows' mean and deviation, which
model.json carries so that serving applies the same transform.
"""

from __future__ import annotations

from pathlib import Path

from lumen.training.v1 import training_pb2
from services.training.recipes import data, hypers, keras_fit
from services.training.recipes.base import Hyper, Recipe, TrainContext, TrainOutput
from services.training.records import DatasetRecord

# CreateTrainingJob checks the head of the CSV only (a 256 MiB table took 21 s and 2.9 GB to read whole);
# the job reads every row and fails naming the first non-number.
CHECKED_CELLS = 100_000


def _check(record: DatasetRecord, path: Path) -> None:
    data.read_table(path, record.label_column, CHECKED_CELLS)  # those features finite numbers


def train(ctx: TrainContext) -> TrainOutput:
    import keras

    names, features, labels = data.read_table(ctx.dataset, ctx.label_column)
    classes, y = data.class_ids(labels)
    train_idx, test_idx = data.split(labels, ctx.validation_split, ctx.seed)
    mean = features[train_idx].mean(axis=0)
    std = features[train_idx].std(axis=0) + 1e-6
    x = (features - mean) / std
    keras_fit.seed_everything(ctx.seed)

    model, predicted = keras_fit.fit_classifier(
        ctx,
        lambda: [keras.Input(shape=(len(names),)), keras.layers.Dense(ctx.int("hidden_units"), activation="relu")],
        len(classes),
        x,
        y,
        (train_idx, test_idx),
    )
    model.save(ctx.out_dir / "model.keras")
    return TrainOutput(
        framework="keras-tabular",
        parameters={
            "file": "model.keras",
            "features": names,
            "labels": classes,
            "mean": mean.tolist(),
            "std": std.tolist(),
        },
        metrics=data.heldout_metrics(predicted, y[test_idx], len(train_idx)),
    )


RECIPE = Recipe(
    name="tabular-dense",
    description="Dense net (one hidden ReLU layer, dropout, softmax) on the numeric columns of a CSV.",
    formats=(training_pb2.DATASET_FORMAT_CSV,),
    service="tabular",
    task="tabular-classification",
    hyperparameters=(
        hypers.epochs(50, 1000, "rows"),
        Hyper("hidden_units", 32, 2, 1024, "Units of the hidden layer."),
        hypers.batch_size(16, "Rows"),
        hypers.adam_learning_rate(0.01),
        hypers.dropout(0.1, "after the hidden layer"),
    ),
    train=train,
    check=_check,
)
