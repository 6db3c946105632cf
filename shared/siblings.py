"""Run sibling coroutines of one call together; when one fails, cancel the rest.

``asyncio.gather`` leaves the other awaitables running after the first error
(for a batch of generations, each keeps the model busy for nothing), and a
TaskGroup raises an ExceptionGroup, which would lose the failing part's typed
error and so its status. This raises the first error itself, once the
siblings are cancelled and have finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def gather_or_cancel(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
