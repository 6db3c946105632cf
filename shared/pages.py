"""Pagination of List RPCs (AIP-158): page_size, an opaque page_token, next_page_token.

Pages are cut by key (the name each list is ordered by), not by offset, so a
page that follows an insertion or a deletion neither repeats nor skips an item.
The token is opaque to callers (base64 of the last key given and the request's
other fields); a token from another request, or no token at all, is
INVALID_ARGUMENT naming "page_token", a negative page_size names "page_size".
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import TypeVar

from shared.errors import InvalidArgument

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def page(
    items: Sequence[T], key: Callable[[T], str], page_size: int, page_token: str, query: str = ""
) -> tuple[list[T], str]:
    """The page of ``items`` (ordered by ``key``) after ``page_token``, and the next page's token ("" at the end).

    ``query`` holds the request's other fields (a filter): a token is only good for the same query."""
    if page_size < 0:
        raise InvalidArgument("page_size", f"must be 0 (default {DEFAULT_PAGE_SIZE}) or more, got {page_size}")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    ordered = sorted(items, key=key)
    if page_token:
        after = _after(page_token, query)
        ordered = [item for item in ordered if key(item) > after]
    chunk = ordered[:size]
    more = len(ordered) > size
    return chunk, _token(key(chunk[-1]), query) if more else ""


def _token(after: str, query: str) -> str:
    raw = json.dumps({"v": 1, "after": after, "query": query}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(token: str, query: str) -> str:
    try:
        fields = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after, given = fields["after"], fields["query"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidArgument("page_token", "is not a token this List call gave (pass next_page_token as is)") from None
    if not isinstance(after, str) or given != query:
        raise InvalidArgument("page_token", "was given for a request with other fields; keep them for every page")
    return after
