"""Every page of a List RPC (AIP-158), for the SDK and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def every_page(call: Callable[[Any, Any], Any], method: Any, request: Any, field: str) -> list[Any]:
    """The items in ``field`` of every page ``call(method, request)`` returns, first page to last."""
    items: list[Any] = []
    while True:
        page = call(method, request)
        items += getattr(page, field)
        if not page.next_page_token:
            return items
        request.page_token = page.next_page_token
