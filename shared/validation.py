"""Request checks shared by the services; each failure names the field.

One rule for a text (`text_error`), applied two ways: `check_texts` fails the
call on the first bad text (embeddings, where one answer covers every text),
`check_each_text` gives each bad text its own error and lets the others be
answered (nlp's batch RPCs, see shared.results).
"""

from __future__ import annotations

from collections.abc import Sequence, Sized

from shared.errors import InvalidArgument
from shared.results import Checked, check_each


def check_count(items: Sized, field: str, maximum: int, minimum: int = 1, noun: str = "item") -> None:
    """The call fails when the number of items is out of range."""
    if len(items) < minimum:
        raise InvalidArgument(field, f"must hold at least {minimum} {noun}(s)")
    if len(items) > maximum:
        raise InvalidArgument(field, f"holds {len(items)} {noun}s; at most {maximum} per call")


def text_error(text: str, field: str, max_chars: int, allow_empty: bool = False) -> InvalidArgument | None:
    if not allow_empty and not text.strip():
        return InvalidArgument(field, "must not be empty or only whitespace")
    if len(text) > max_chars:
        return InvalidArgument(field, f"has {len(text)} characters; at most {max_chars}")
    return None


def check_texts(texts: list[str], field: str, max_items: int, max_chars: int) -> None:
    """1..max_items non-blank texts of at most max_chars characters each; else the call fails."""
    check_count(texts, field, max_items, noun="text")
    for i, text in enumerate(texts):
        error = text_error(text, f"{field}[{i}]", max_chars)
        if error is not None:
            raise error


def check_each_text(texts: list[str], field: str, max_chars: int, allow_empty: bool = False) -> Checked:
    """Each text checked on its own: the bad ones get their error, the others are answered."""
    return check_each(texts, lambda i, text: text_error(text, f"{field}[{i}]", max_chars, allow_empty))


def check_total_chars(texts: Sequence[str], field: str, maximum: int) -> None:
    """The call fails when its texts together are longer than ``maximum`` characters: the
    bound that keeps one call's CPU time within budget (see make bench-limits)."""
    total = sum(len(t) for t in texts)
    if total > maximum:
        raise InvalidArgument(field, f"hold {total} characters together; at most {maximum} per call")


def check_top_k(top_k: int, field: str = "top_k", maximum: int = 1000) -> None:
    if top_k < 1 or top_k > maximum:
        raise InvalidArgument(field, f"must be between 1 and {maximum}, got {top_k}")
