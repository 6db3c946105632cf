"""Per-item validation for batch RPCs: a bad text gets its own status, the
others are still answered (nlp.proto's batch convention)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from shared.errors import InvalidArgument, LumenError
from shared.validation import check_total_chars

__all__ = ["Checked", "Outcome", "check_count", "check_texts", "check_total_chars"]

T = TypeVar("T")
Outcome = T | LumenError  # one item's result, or why it has none


def check_count(items: Sequence[object], field: str, maximum: int, minimum: int = 1) -> None:
    """The call fails when the number of items is out of range."""
    if len(items) < minimum:
        raise InvalidArgument(field, f"must hold at least {minimum} item(s)")
    if len(items) > maximum:
        raise InvalidArgument(field, f"holds {len(items)} items; at most {maximum} per call")


@dataclass(frozen=True)
class Checked:
    valid: list[int]  # indices of items that passed
    errors: dict[int, LumenError]

    def texts(self, texts: Sequence[str]) -> list[str]:
        return [texts[i] for i in self.valid]

    def merge(self, size: int, results: Sequence[T]) -> list[Outcome[T]]:
        """Results of the valid items put back in place, errors elsewhere."""
        out: list[Outcome[T]] = list(self.errors.get(i) for i in range(size))  # type: ignore[misc]
        for index, result in zip(self.valid, results, strict=True):
            out[index] = result
        return out


def check_texts(texts: Sequence[str], field: str, max_chars: int, allow_empty: bool = False) -> Checked:
    valid: list[int] = []
    errors: dict[int, LumenError] = {}
    for i, text in enumerate(texts):
        if not allow_empty and not text.strip():
            errors[i] = InvalidArgument(f"{field}[{i}]", "must not be empty or only whitespace")
        elif len(text) > max_chars:
            errors[i] = InvalidArgument(f"{field}[{i}]", f"has {len(text)} characters; at most {max_chars}")
        else:
            valid.append(i)
    return Checked(valid, errors)
