"""What every composite call needs: the backends' channels, the caller's key,
the metadata to send on, and the time budget."""

from __future__ import annotations

from dataclasses import dataclass

import grpc.aio

from gateway.backends import Backend
from gateway.fanout import Budget
from gateway.key_store import ApiKey
from shared.errors import PermissionDenied


@dataclass
class Scope:
    backends: dict[str, Backend]
    key: ApiKey
    metadata: tuple[tuple[str, str], ...]
    budget: Budget

    def channel(self, backend: str) -> grpc.aio.Channel:
        """The backend's channel, once the caller's key is checked for it (a part's PERMISSION_DENIED)."""
        if not self.key.may_use(backend):
            raise PermissionDenied(f"key {self.key.id!r} may not use the {backend} service")
        return self.backends[backend].channel

    def require(self, backend: str) -> None:
        """Fail the whole call with PERMISSION_DENIED unless the key may use ``backend``."""
        self.channel(backend)
