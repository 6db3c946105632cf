"""The loaded runtime behind a repository entry, for calls that use a runtime directly (no batcher).

A model that is not ready is refused the way Entry.predict refuses it: UNAVAILABLE
while it loads (a retry helps), FAILED_PRECONDITION when unloaded or failed.
"""

from __future__ import annotations

from typing import TypeVar

from shared.errors import FailedPrecondition, Unavailable
from shared.model import Model
from shared.repository import Entry, State

M = TypeVar("M", bound=Model)


def ready_runtime(entry: Entry, kind: type[M]) -> M:
    name = entry.config.name
    if entry.state is State.LOADING:
        raise Unavailable(f"model {name!r} is loading")
    if entry.state is not State.READY:
        raise FailedPrecondition(
            f"model {name!r} is {entry.state.name.lower()}{': ' + entry.error if entry.error else ''}; "
            "load it with ModelRepositoryService.LoadModel"
        )
    if not isinstance(entry.model, kind):
        raise FailedPrecondition(f"model {name!r} ({entry.config.framework}) cannot serve this call")
    return entry.model
