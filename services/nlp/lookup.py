"""Which model serves a request: name or per-RPC default, task check, runtime check.

One RPC may accept models of several tasks (ClassifyText takes any text
classifier, including the sentiment classifiers), so the lookup tries every
task this service knows and then checks that the one found suits the RPC:
an unknown name is NOT_FOUND naming "model", a model of the wrong kind is
INVALID_ARGUMENT naming "model" (as nlp.proto states).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from services.nlp import tasks
from shared.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from shared.repository import Entry, ModelRepository, State

T = TypeVar("T")


class ModelLookup:
    def __init__(self, repository: ModelRepository) -> None:
        self.repository = repository

    def entry(self, name: str, version: str, accepted: Sequence[str], default: str = "") -> Entry:
        """The READY entry serving ``name``; when empty, ``default`` (the RPC's default from the
        settings) if the repository has it, else the repository's default model of ``accepted[0]``."""
        if not name and default and self._exists(default):
            name = default
        if not name:
            entry = self.repository.get("", accepted[0], version)
        else:
            entry = self._by_name(name, version)
            if entry.config.task not in accepted:
                raise InvalidArgument(
                    "model",
                    f"{name!r} is a {entry.config.task} model; this call needs one of: {', '.join(accepted)}",
                )
        # As Entry.predict answers: loading is worth a retry, unloaded or failed is not.
        if entry.state is State.LOADING:
            raise Unavailable(f"model {entry.config.name!r} is loading")
        if entry.state is not State.READY or entry.model is None:
            raise FailedPrecondition(
                f"model {entry.config.name!r} is {entry.state.name.lower()}"
                f"{': ' + entry.error if entry.error else ''}; load it with ModelRepositoryService.LoadModel"
            )
        return entry

    def runtime(self, entry: Entry, kind: type[T], what: str) -> T:
        """``entry``'s model as ``kind``, or INVALID_ARGUMENT naming "model"."""
        if not isinstance(entry.model, kind):
            raise InvalidArgument("model", f"{entry.config.name!r} ({entry.config.framework}) has no {what}")
        return entry.model

    def _exists(self, name: str) -> bool:
        return any(self._find(name, task) is not None for task in tasks.ALL)

    def _find(self, name: str, task: str) -> Entry | None:
        try:
            return self.repository.get(name, task)
        except NotFound:
            return None

    def _by_name(self, name: str, version: str) -> Entry:
        for task in tasks.ALL:
            try:
                return self.repository.get(name, task, version)
            except NotFound as exc:
                if exc.field == "model.version":
                    raise
        raise NotFound("nlp model", name, "model.name")
