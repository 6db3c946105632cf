"""Running the parts of a composite call in parallel under one deadline.

Each part is a coroutine given its own timeout (which also travels to the
backend as the call's deadline, so the backend stops working on it). The whole
fan-out ends a little before the caller's deadline: parts still running then
are cancelled and reported DEADLINE_EXCEEDED, while finished parts are kept.
A failed part becomes a google.rpc.Status carrying the backend's own code,
message and details.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import grpc.aio
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from shared.errors import InvalidArgument, LumenError, status_proto_for
from shared.grpc_types import Context, time_remaining

log = logging.getLogger(__name__)

T = TypeVar("T")
STATUS_DETAILS_KEY = "grpc-status-details-bin"
MAX_PART_TIMEOUT_MS = 600_000
OK = status_pb2.Status(code=code_pb2.OK)


def status_of(exc: BaseException) -> status_pb2.Status:
    """The google.rpc.Status a failed part reports."""
    if isinstance(exc, grpc.aio.AioRpcError):
        for key, value in exc.trailing_metadata() or ():
            if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
                return status_pb2.Status.FromString(value)  # the backend's rich status, details included
        return status_pb2.Status(code=exc.code().value[0], message=exc.details() or "")
    if isinstance(exc, (asyncio.TimeoutError, asyncio.CancelledError)):
        return status_pb2.Status(code=code_pb2.DEADLINE_EXCEEDED, message="part did not finish before the deadline")
    if not isinstance(exc, LumenError):
        log.error("composite part failed unexpectedly", exc_info=exc)
    return status_proto_for(exc)


def renamed(status: status_pb2.Status, old: str, new: str) -> status_pb2.Status:
    """A backend status about its own request's field ``old`` (e.g. "texts[0]") restated for the
    gateway request's field ``new`` (e.g. "text"), in the message and in BadRequest details."""
    out = status_pb2.Status(code=status.code, message=status.message.replace(old, new))
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            for violation in bad.field_violations:
                if violation.field == old or violation.field.startswith((f"{old}.", f"{old}[")):
                    violation.field = new + violation.field[len(old) :]
            packed = any_pb2.Any()
            packed.Pack(bad)
            out.details.append(packed)
        else:
            out.details.append(detail)
    return out


class BackendError(LumenError):
    """A backend's failure that fails the whole gateway call, passed on with its code and details."""

    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.status = status
        self.code = grpc.StatusCode.UNKNOWN
        for code in grpc.StatusCode:
            if code.value[0] == status.code:
                self.code = code

    def to_status_proto(self) -> status_pb2.Status:
        return self.status


async def backend_call(call: Awaitable[T]) -> T:
    """Await a backend call whose failure fails the gateway call with the backend's status."""
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        raise BackendError(status_of(exc)) from None


def check_part_timeout(part_timeout_ms: int) -> None:
    if part_timeout_ms > MAX_PART_TIMEOUT_MS:
        raise InvalidArgument("part_timeout_ms", f"must be 0 to {MAX_PART_TIMEOUT_MS}, got {part_timeout_ms}")


@dataclass
class Budget:
    """The time a composite call's backend work may take (event-loop clock)."""

    deadline: float
    part_timeout_s: float | None = None

    @classmethod
    def of(cls, context: Context, default_timeout_s: float, margin_s: float, part_timeout_ms: int = 0) -> Budget:
        remaining = time_remaining(context)
        if remaining is None:
            remaining = default_timeout_s
        # Keep a margin to build and send the answer, but never more than a fifth of a short deadline.
        margin = min(margin_s, remaining / 5)
        loop = asyncio.get_running_loop()
        return cls(loop.time() + max(remaining - margin, 0.0), part_timeout_ms / 1000 if part_timeout_ms else None)

    def left(self) -> float:
        return max(self.deadline - asyncio.get_running_loop().time(), 0.0)

    def part_timeout(self) -> float:
        left = self.left()
        return min(left, self.part_timeout_s) if self.part_timeout_s else left


async def run_parts(
    parts: Mapping[str, Callable[[float], Coroutine[Any, Any, T]]],
    budget: Budget,
    rename: tuple[str, str] | None = None,
) -> dict[str, T | status_pb2.Status]:
    """Run every part at once; each name maps to its result or to the Status it failed with.

    ``rename`` (backend field, caller's field) restates the backends' errors in the caller's terms,
    e.g. ("texts[0]", "text") when one text was sent as a batch of one.
    """
    tasks: dict[str, asyncio.Task[T]] = {
        name: asyncio.create_task(part(budget.part_timeout())) for name, part in parts.items()
    }
    if not tasks:
        return {}
    try:
        _, pending = await asyncio.wait(tasks.values(), timeout=budget.left())
    except asyncio.CancelledError:  # the caller went away: stop the backend calls too
        for task in tasks.values():
            task.cancel()
        raise
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    results: dict[str, Any] = {}
    for name, task in tasks.items():
        if task in pending or task.cancelled():
            results[name] = status_pb2.Status(
                code=code_pb2.DEADLINE_EXCEEDED, message=f"{name} did not finish before the call's deadline"
            )
        elif (error := task.exception()) is not None:
            status = status_of(error)
            results[name] = renamed(status, *rename) if rename else status
        else:
            results[name] = task.result()
    return results
