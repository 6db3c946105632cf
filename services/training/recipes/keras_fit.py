"""Keras training that reports progress and resumes from its last epoch.

`fit` saves ``checkpoint.keras`` (weights and optimizer state) and
``checkpoint.json`` (epochs done) in the job's work directory after every epoch;
a job restarted after a crash loads them and continues at the next epoch,
with the epoch counter where it was. A NaN loss ends the job FAILED.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from services.training.recipes.base import TrainContext, TrainingFailed
from services.training.recipes.progress import event as _event

STEP_REPORT_S = 1.0  # a step event at most this often; every epoch end is reported


def seed_everything(seed: int) -> None:
    import keras

    keras.utils.set_random_seed(seed)


def fit(
    ctx: TrainContext, build: Callable[[], Any], x: Any, y: Any, epochs: int, batch_size: int, validation: Any
) -> Any:
    import keras

    checkpoint, state = ctx.work_dir / "checkpoint.keras", ctx.work_dir / "checkpoint.json"
    initial = 0
    if checkpoint.is_file() and state.is_file():
        initial = int(json.loads(state.read_text())["epoch"])
        model = keras.saving.load_model(checkpoint)
    else:
        model = build()
    steps = max(1, math.ceil(len(x) / batch_size))

    class Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            self.started, self.last, self.epoch = time.monotonic(), 0.0, initial
            ctx.report(_event(initial, epochs, 0, steps, initial, {}, 0.0))

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch = epoch

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            loss = float((logs or {}).get("loss", 0.0))
            if not math.isfinite(loss):
                raise TrainingFailed(f"loss is {loss} at epoch {self.epoch + 1}, step {batch + 1}")
            now = time.monotonic()
            if now - self.last >= STEP_REPORT_S:
                self.last = now
                done = self.epoch - initial + (batch + 1) / steps
                eta = (now - self.started) / done * (epochs - self.epoch - (batch + 1) / steps)
                ctx.report(_event(self.epoch, epochs, batch + 1, steps, initial, dict(logs or {}), eta))

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            model.save(checkpoint)  # then the counter: a crash between the two redoes one epoch
            state.write_text(json.dumps({"epoch": epoch + 1}))
            done = epoch + 1 - initial
            eta = (time.monotonic() - self.started) / done * (epochs - epoch - 1)
            ctx.report(_event(epoch + 1, epochs, steps, steps, initial, dict(logs or {}), eta))

    if initial < epochs:
        model.fit(
            x,
            y,
            epochs=epochs,
            initial_epoch=initial,
            batch_size=batch_size,
            validation_data=validation,
            shuffle=True,
            verbose=0,
            callbacks=[Progress()],
        )
    return model


def compile_classifier(model: Any, ctx: TrainContext, loss: Any = "sparse_categorical_crossentropy") -> None:
    """Adam at the job's learning_rate, accuracy reported each epoch."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(ctx.hyper("learning_rate")), loss=loss, metrics=["accuracy"])


def fit_classifier(
    ctx: TrainContext,
    body: Callable[[], list[Any]],
    classes: int,
    x: Any,
    y: Any,
    split: tuple[Any, Any],
    sigmoid_if_binary: bool = False,
) -> tuple[Any, Any]:
    """Dropout and a classifier head on ``body()``'s layers (one sigmoid unit for two classes with
    ``sigmoid_if_binary``, else a softmax), fitted with `fit` on the training side of ``split``
    (train_idx, test_idx); the model and its class ids for the held-out side."""
    import keras
    import numpy as np

    train_idx, test_idx = split
    binary = sigmoid_if_binary and classes == 2

    def build() -> Any:
        head = keras.layers.Dense(1, activation="sigmoid") if binary else keras.layers.Dense(classes, "softmax")
        model = keras.Sequential([*body(), keras.layers.Dropout(ctx.hyper("dropout")), head])
        compile_classifier(model, ctx, "binary_crossentropy" if binary else "sparse_categorical_crossentropy")
        return model

    validation = (x[test_idx], y[test_idx])
    model = fit(ctx, build, x[train_idx], y[train_idx], ctx.int("epochs"), ctx.int("batch_size"), validation)
    out = np.asarray(model(x[test_idx], training=False))
    return model, (out[:, 0] >= 0.5).astype(np.int64) if binary else np.argmax(out, axis=1)
