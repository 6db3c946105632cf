"""One item's answer in a batch call: a value, or the error that item got.

Batch RPCs answer every item with its own google.rpc.Status (a bad text or an
undecodable image does not fail the call); every service builds those answers
from `Result` and turns them into a status with `Result.status`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from google.rpc import status_pb2

from shared.errors import OK_STATUS, LumenError, status_proto_for

T = TypeVar("T")
U = TypeVar("U")
P = TypeVar("P")  # a proto message type


@dataclass(frozen=True)
class Result(Generic[T]):
    _value: T | None = None
    error: LumenError | None = None

    @classmethod
    def of(cls, value: T) -> Result[T]:
        return cls(value)

    @staticmethod
    def failed(error: LumenError) -> Result[Any]:
        return Result(None, error)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def value(self) -> T:
        """The value; raises the item's error when it has none."""
        if self.error is not None:
            raise self.error
        return cast(T, self._value)

    def map(self, fn: Callable[[T], U]) -> Result[U]:
        return Result(fn(self.value)) if self.error is None else Result.failed(self.error)

    @property
    def status(self) -> status_pb2.Status:
        """The item's google.rpc.Status: OK, or its error's code, message and details."""
        return OK_STATUS if self.error is None else status_proto_for(self.error)


@dataclass(frozen=True)
class Checked:
    """Which items of a batch passed their checks, and the error of each one that did not."""

    valid: list[int]  # indices of items that passed, in order
    errors: dict[int, LumenError]

    def pick(self, items: Sequence[T]) -> list[T]:
        return [items[i] for i in self.valid]

    def merge(self, size: int, values: Sequence[T]) -> list[Result[T]]:
        """Values of the valid items put back in place, errors elsewhere."""
        out: list[Result[T]] = [Result.failed(self.errors[i]) if i in self.errors else Result() for i in range(size)]
        for index, value in zip(self.valid, values, strict=True):
            out[index] = Result(value)
        return out


def check_each(items: Sequence[T], check: Callable[[int, T], LumenError | None]) -> Checked:
    """Run ``check`` on every item; the items it finds no error in are the valid ones."""
    valid: list[int] = []
    errors: dict[int, LumenError] = {}
    for i, item in enumerate(items):
        error = check(i, item)
        if error is None:
            valid.append(i)
        else:
            errors[i] = error
    return Checked(valid, errors)


def item_messages(
    results: Sequence[Result[T]], message: Callable[..., P], fields: Callable[[T], dict[str, Any]]
) -> list[P]:
    """One proto per item: ``message(status=..., **fields(value))``, only the status where it failed."""
    return [message(status=r.status, **(fields(r.value) if r.ok else {})) for r in results]
