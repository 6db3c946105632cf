"""The hyperparameters most recipes share, with their usual ranges (free of TensorFlow, like base)."""

from __future__ import annotations

from services.training.recipes.base import Hyper


def epochs(default: int, most: int, what: str) -> Hyper:
    return Hyper("epochs", default, 1, most, f"Passes over the training {what}.")


def batch_size(default: int, what: str) -> Hyper:
    return Hyper("batch_size", default, 1, 4096, f"{what} per step.")


def adam_learning_rate(default: float) -> Hyper:
    return Hyper("learning_rate", default, 1e-5, 1.0, "Adam's learning rate.", integer=False)


def dropout(default: float, where: str) -> Hyper:
    return Hyper("dropout", default, 0.0, 0.9, f"Dropout {where}.", integer=False)
