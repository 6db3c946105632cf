"""Request checks shared by the vision data planes; errors name the field."""

from __future__ import annotations

import math

from shared.errors import InvalidArgument


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
