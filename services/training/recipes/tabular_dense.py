"""Dense net on tabular features (CSV: numeric columns and a label column),
served by the tabular service's Predict.

Features are standardised with the training rows' mean and deviation, which
model.json carries so that serving applies the same transform.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lumen.training.v1 import training_pb2
from services.training.recipes import data, keras_fit
from services.training.recipes.base import (
    Hyper,
    Recipe,
    TrainContext,
    TrainOutput,
    adam_learning_rate,
    batch_size,
    dropout,
    epochs,
    heldout_metrics,
)
from services.training.records import DatasetRecord


def _check(record: DatasetRecord, path: Path) -> None:
    data.read_table(path, record.label_column)  # every feature a finite number


def train(ctx: TrainContext) -> TrainOutput:
    import keras

    names, features, labels = data.read_table(ctx.dataset, ctx.label_column)
    classes, y = data.class_ids(labels)
    train_idx, test_idx = data.split(labels, ctx.validation_split, ctx.seed)
    mean = features[train_idx].mean(axis=0)
    std = features[train_idx].std(axis=0) + 1e-6
    x = (features - mean) / std
    keras_fit.seed_everything(ctx.seed)

    def build() -> keras.Model:
        model = keras.Sequential(
            [
                keras.Input(shape=(len(names),)),
                keras.layers.Dense(ctx.int("hidden_units"), activation="relu"),
                keras.layers.Dropout(ctx.hyper("dropout")),
                keras.layers.Dense(len(classes), activation="softmax"),
            ]
        )
        keras_fit.compile_classifier(model, ctx)
        return model

    model = keras_fit.fit(
        ctx, build, x[train_idx], y[train_idx], ctx.int("epochs"), ctx.int("batch_size"), (x[test_idx], y[test_idx])
    )
    predicted = np.argmax(model(x[test_idx], training=False), axis=1)
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
        metrics=heldout_metrics(predicted, y[test_idx], len(train_idx)),
    )


RECIPE = Recipe(
    name="tabular-dense",
    description="Dense net (one hidden ReLU layer, dropout, softmax) on the numeric columns of a CSV.",
    formats=(training_pb2.DATASET_FORMAT_CSV,),
    service="tabular",
    task="tabular-classification",
    hyperparameters=(
        epochs(50, 1000, "rows"),
        Hyper("hidden_units", 32, 2, 1024, "Units of the hidden layer."),
        batch_size(16, "Rows"),
        adam_learning_rate(0.01),
        dropout(0.1, "after the hidden layer"),
    ),
    train=train,
    check=_check,
)
