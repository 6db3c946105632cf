"""grpc.health.v1 for every server: grpc's servicer, but Watch streams end when the server drains.

A Watch stream is a call in flight for as long as its watcher lives (the gateway keeps one
on every backend), so with grpc's own servicer `server.stop(grace)` always waited out the
whole grace period, idle or not: every restart and rolling update of a model service took
20 s longer than its calls needed. Here a watcher gets NOT_SERVING, then its stream ends
(OK), and the drain waits only for real calls.
"""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# A HealthCheckResponse.ServingStatus value (the enum's values are ints in the stubs).
Status = int
Context = grpc.aio.ServicerContext[health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse]


class HealthServicer(health_pb2_grpc.HealthServicer):
    """Check and Watch as grpc_health's aio servicer answers them; `set` and `enter_graceful_shutdown` too."""

    def __init__(self) -> None:
        self._status: dict[str, Status] = {"": health_pb2.HealthCheckResponse.SERVING}
        self._changed = asyncio.Condition()
        self._draining = False

    async def Check(self, request: health_pb2.HealthCheckRequest, context: Context) -> health_pb2.HealthCheckResponse:
        status = self._status.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service '{request.service}'")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: Context) -> None:
        last: Status | None = None
        async with self._changed:
            while True:
                status = self._status.get(request.service, health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
                if status != last:
                    await context.write(health_pb2.HealthCheckResponse(status=status))
                    last = status
                if self._draining:
                    return
                await self._changed.wait()

    async def set(self, service: str, status: Status) -> None:
        """Ignored once draining: NOT_SERVING is final."""
        async with self._changed:
            if not self._draining:
                self._status[service] = status
                self._changed.notify_all()

    async def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING for good; Watch streams send it and end."""
        async with self._changed:
            self._draining = True
            for service in self._status:
                self._status[service] = health_pb2.HealthCheckResponse.NOT_SERVING
            self._changed.notify_all()
