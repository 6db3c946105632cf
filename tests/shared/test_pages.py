"""AIP-158 pages: cut by key, opaque tokens bound to the request's other fields, refusals naming the field."""

from __future__ import annotations

import pytest

from shared.errors import InvalidArgument
from shared.pages import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, page


def walk(items: list[str], size: int, query: str = "") -> list[list[str]]:
    pages, token = [], ""
    while True:
        found, token = page(items, str, size, token, query)
        pages.append(found)
        if not token:
            return pages


def test_pages_cover_everything_once_in_key_order() -> None:
    items = [f"m{i:02d}" for i in range(7)][::-1]
    assert walk(items, 3) == [["m00", "m01", "m02"], ["m03", "m04", "m05"], ["m06"]]
    assert walk(items, 7) == [sorted(items)]  # an exact fit has no further page
    assert walk([], 3) == [[]]


def test_sizes_default_and_cap() -> None:
    items = [f"{i:05d}" for i in range(MAX_PAGE_SIZE + 5)]
    assert len(page(items, str, 0, "")[0]) == DEFAULT_PAGE_SIZE
    assert len(page(items, str, MAX_PAGE_SIZE * 10, "")[0]) == MAX_PAGE_SIZE


def test_a_token_is_cut_by_key_not_offset() -> None:
    first, token = page(["b", "c", "d", "e"], str, 2, "")
    assert first == ["b", "c"]
    # "a" inserted and "d" deleted between pages: nothing repeats, nothing after "c" is skipped.
    assert page(["a", "b", "c", "e", "f"], str, 2, token)[0] == ["e", "f"]


@pytest.mark.parametrize(
    ("size", "token", "query", "field"),
    [
        (-1, "", "", "page_size"),
        (2, "not a token", "", "page_token"),
        (2, "eyJ2IjoxfQ", "", "page_token"),  # base64 of a JSON object without the fields
        (2, None, "task=other", "page_token"),  # a token of another query
    ],
)
def test_bad_requests_name_their_field(size: int, token: str | None, query: str, field: str) -> None:
    if token is None:
        token = page(["a", "b", "c"], str, 1, "")[1]
    with pytest.raises(InvalidArgument) as refused:
        page(["a", "b", "c"], str, size, token, query)
    assert refused.value.violations[0][0] == field
