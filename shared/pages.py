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
    limit = size(page_size)
    ordered = sorted(items, key=key)
    if page_token:
        last = after(page_token, query)
        ordered = [item for item in ordered if key(item) > last]
    chunk = ordered[:limit]
    more = len(ordered) > limit
    return chunk, token(key(chunk[-1]), query) if more else ""


# For lists a store pages itself (a query with the key and a limit): the same sizes and tokens.
def size(page_size: int) -> int:
    """How many items a page holds: 0 gives the default, past the maximum the maximum (AIP-158)."""
    if page_size < 0:
        raise InvalidArgument("page_size", f"must be 0 (default {DEFAULT_PAGE_SIZE}) or more, got {page_size}")
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def token(last: str, query: str = "") -> str:
    """The next page's token: it continues after the key ``last``, for the same ``query`` only."""
    raw = json.dumps({"v": 1, "after": last, "query": query}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def after(page_token: str, query: str = "") -> str:
    """The key a page starts after ("" for the first page); INVALID_ARGUMENT naming page_token otherwise."""
    if not page_token:
        return ""
    try:
        fields = json.loads(base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4)))
        last, given = fields["after"], fields["query"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidArgument("page_token", "is not a token this List call gave (pass next_page_token as is)") from None
    if not isinstance(last, str) or given != query:
        raise InvalidArgument("page_token", "was given for a request with other fields; keep them for every page")
    return last
