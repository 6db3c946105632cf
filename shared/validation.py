"""Request checks shared by servicers; each failure names the field."""

from __future__ import annotations

import math
from collections.abc import Sequence

from shared.errors import InvalidArgument, ResourceExhausted


def check_texts(texts: Sequence[str], field: str, max_items: int, max_chars: int) -> None:
    """1..max_items non-blank texts of at most max_chars characters each."""
    if not texts:
        raise InvalidArgument(field, "must hold at least one text")
    if len(texts) > max_items:
        raise InvalidArgument(field, f"holds {len(texts)} texts; at most {max_items} per call")
    for i, text in enumerate(texts):
        if not text.strip():
            raise InvalidArgument(f"{field}[{i}]", "must not be empty or only whitespace")
        if len(text) > max_chars:
            raise InvalidArgument(f"{field}[{i}]", f"has {len(text)} characters; at most {max_chars}")


def check_total_chars(texts: Sequence[str], field: str, maximum: int) -> None:
    """The call fails when its texts together are longer than ``maximum`` characters: the
    bound that keeps one call's CPU time within budget (see make bench-limits)."""
    total = sum(len(t) for t in texts)
    if total > maximum:
        raise InvalidArgument(field, f"hold {total} characters together; at most {maximum} per call")


def check_top_k(top_k: int, field: str = "top_k", maximum: int = 1000) -> None:
    if top_k < 1 or top_k > maximum:
        raise InvalidArgument(field, f"must be between 1 and {maximum}, got {top_k}")


def check_finite(values: Sequence[float], field: str) -> None:
    for i, value in enumerate(values):
        if not math.isfinite(value):
            raise InvalidArgument(f"{field}[{i}]", f"must be a finite number, got {value}")


def check_size(size: int, limit: int, what: str) -> None:
    if size > limit:
        raise ResourceExhausted(f"{what} is {size} bytes; the limit is {limit}", subject=what)
