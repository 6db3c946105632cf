"""The progress event every recipe reports (the worker turns it into Job.progress)."""

from __future__ import annotations

from typing import Any


def event(epoch: int, total: int, step: int, steps: int, resumed: int, logs: dict, eta: float) -> dict[str, Any]:
    metrics = {k: float(v) for k, v in logs.items() if k != "loss"}
    return {
        "event": "progress",
        "epoch": epoch,
        "total_epochs": total,
        "step": step,
        "total_steps": steps,
        "loss": float(logs.get("loss", 0.0)),
        "metrics": metrics,
        "eta_s": max(0.0, float(eta)),
        "fraction": min(1.0, (epoch + (step / steps if step < steps else 0)) / total) if total else 1.0,
        "resumed_from_epoch": resumed,
    }
