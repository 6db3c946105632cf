"""Training time of a key's jobs within a period (GatewayService.GetUsage shows it)."""

from __future__ import annotations

from collections.abc import Iterable

from services.training.records import JobRecord


def training_time(jobs: Iterable[JobRecord], start: float, end: float, now: float) -> tuple[float, int]:
    """(seconds, jobs) that ran within [start, end): each job from its start to its end (now while it runs).

    A job's start_time is its first launch; time QUEUED before it is not counted."""
    seconds, count = 0.0, 0
    for job in jobs:
        if job.start_time is None:
            continue  # never ran (cancelled while queued)
        ran = min(job.end_time if job.end_time is not None else now, end) - max(job.start_time, start)
        if ran > 0:
            seconds, count = seconds + ran, count + 1
    return seconds, count
