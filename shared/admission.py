"""Admission control: a server sheds what it cannot serve instead of queueing it.

Every call but health and reflection takes a slot; with ``max_concurrent_rpcs``
slots taken, a new call is refused at once with RESOURCE_EXHAUSTED and a
google.rpc.RetryInfo, so clients back off while the calls admitted keep a
bounded latency, and probes still answer (grpc's own ``maximum_concurrent_rpcs``
would refuse health checks too, without RetryInfo). The request bytes the
admitted calls hold are bounded as well (``max_request_bytes_in_flight``),
counted as each message arrives: queued work is bounded in bytes, not only in
calls.

Draining (SIGTERM): new calls are refused with UNAVAILABLE, which clients and the
gateway retry on another replica, while the admitted ones finish; ``drain()``
returns when none is left. grpc's own ``server.stop(grace)`` refuses too, but a call
that reaches it as it starts is CANCELLED, which nobody retries.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from prometheus_client import Counter, Gauge

from shared.errors import ERROR_DOMAIN, ResourceExhausted, Unavailable

# ErrorInfo reason of a call shed here: it did no work, so a gateway does not count it against a key's quota.
SHED_REASON = "SERVER_OVERLOADED"
# Work an inner interceptor did at handler lookup, before admission ran, to undo when the call is shed:
# the gateway's key interceptor counts a call against its key's quota there.
undo_on_shed: ContextVar[Callable[[], Awaitable[None]] | None] = ContextVar("undo_on_shed", default=None)
SHED = Counter("lumen_rpc_shed_total", "Calls refused with RESOURCE_EXHAUSTED because the server was full.", ["reason"])
ADMITTED = Gauge("lumen_rpc_admitted", "Calls holding an admission slot now.")
BYTES_HELD = Gauge("lumen_rpc_request_bytes_in_flight", "Request bytes the admitted calls hold now.")


class Admission:
    """Slots for calls and a byte budget for their requests; 0 turns either limit off."""

    def __init__(self, max_calls: int = 0, max_bytes: int = 0, retry_after_s: float = 0.5) -> None:
        self.max_calls, self.max_bytes, self.retry_after_s = max_calls, max_bytes, retry_after_s
        self.calls = 0
        self.bytes = 0
        self._idle: asyncio.Event | None = None  # set once draining and no call is left

    def _shed(self, reason: str, state: str, limit: str) -> ResourceExhausted:
        """The error of a call shed because the server ``state`` (counted under ``reason``)."""
        SHED.labels(reason).inc()
        return ResourceExhausted(
            f"the server {state}; retry later",
            subject=f"server:{limit}",
            retry_after_s=self.retry_after_s,
            reason=SHED_REASON,
        )

    def enter(self) -> None:
        """Take a slot, or raise RESOURCE_EXHAUSTED with RetryInfo (UNAVAILABLE once draining).
        Single-threaded (the event loop)."""
        if self._idle is not None:
            SHED.labels("draining").inc()
            raise Unavailable("the server is shutting down; retry (another replica serves the call)")
        if self.max_calls and self.calls >= self.max_calls:
            raise self._shed("calls", f"is serving its maximum of {self.max_calls} calls", "concurrent_calls")
        self.calls += 1
        ADMITTED.set(self.calls)

    async def enter_or_undo(self) -> None:
        """enter(); when the call is shed, first undo what ``undo_on_shed`` names for it."""
        try:
            self.enter()
        except (ResourceExhausted, Unavailable):
            undo = undo_on_shed.get()
            if undo is not None:
                await undo()
            raise

    def leave(self) -> None:
        self.calls -= 1
        ADMITTED.set(self.calls)
        if self._idle is not None and self.calls == 0:
            self._idle.set()

    async def drain(self, timeout_s: float) -> None:
        """Refuse every new call from now on (UNAVAILABLE); return once no admitted call is left, or after
        ``timeout_s``."""
        if self._idle is None:
            self._idle = asyncio.Event()
            if self.calls == 0:
                self._idle.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout_s)

    def hold(self, size: int) -> None:
        """Count ``size`` request bytes against the budget, or raise RESOURCE_EXHAUSTED."""
        if self.max_bytes and self.bytes + size > self.max_bytes and self.bytes > 0:
            raise self._shed("bytes", f"holds its maximum of {self.max_bytes} request bytes", "request_bytes")
        self.bytes += size
        BYTES_HELD.set(self.bytes)

    def release(self, size: int) -> None:
        self.bytes -= size
        BYTES_HELD.set(self.bytes)


def is_shed(code: grpc.StatusCode | None, trailing_metadata: Iterable[tuple[str, Any]] | None) -> bool:
    """Whether a call ended as one a server's admission shed (RESOURCE_EXHAUSTED, ErrorInfo SHED_REASON)."""
    if code != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return False
    for name, value in trailing_metadata or ():
        if name != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        for detail in status_pb2.Status.FromString(value).details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info) and info.domain == ERROR_DOMAIN and info.reason == SHED_REASON:
                return True
    return False
