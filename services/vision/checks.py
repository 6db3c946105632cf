"""Request checks and model look-up shared by the vision data planes; errors name the field."""

from __future__ import annotations

import math

from shared.errors import InvalidArgument, NotFound
from shared.repository import Entry, ModelRepository


def unit_interval(value: float | None, field: str, default: float) -> float:
    """A score threshold in [0, 1]; None (unset) gives ``default``."""
    if value is None:
        return default
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InvalidArgument(field, f"must be in [0, 1], got {value}")
    return float(value)


def distance_threshold(value: float | None, field: str, default: float) -> float:
    """A Euclidean distance threshold in (0, 4]; None (unset) gives ``default``."""
    if value is None:
        return default
    if not math.isfinite(value) or not 0.0 < value <= 4.0:
        raise InvalidArgument(field, f"must be in (0, 4], got {value}")
    return float(value)


def count_option(value: int, field: str, default: int, maximum: int) -> int:
    """A count where 0 selects ``default``; otherwise 1..maximum."""
    if value == 0:
        return default
    if not 1 <= value <= maximum:
        raise InvalidArgument(field, f"must be between 1 and {maximum} (0 selects {default}), got {value}")
    return int(value)


def text_length(value: str, field: str, maximum: int) -> None:
    if len(value) > maximum:
        raise InvalidArgument(field, f"has {len(value)} characters; at most {maximum}")


def find_model(repository: ModelRepository, name: str, version: str, task: str, field: str = "model") -> Entry:
    """The entry for ``name`` (or the task's default); a model of another task is INVALID_ARGUMENT."""
    if len(name) > 128:
        raise InvalidArgument(f"{field}.name", "has more than 128 characters")
    try:
        return repository.get(name, task, version)
    except NotFound:
        other = next((e for e in repository.entries() if name and e.config.name == name), None)
        if other is not None and other.config.task != task:
            raise InvalidArgument(
                f"{field}.name", f"{name!r} is a {other.config.task} model; this call needs a {task} model"
            ) from None
        if field != "model":
            raise NotFound(f"{task} model", name or "(default)", f"{field}.name") from None
        raise
