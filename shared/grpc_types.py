"""Type aliases for code that handles any call (interceptors, relays, per-call helpers).

grpc's stubs (types-grpcio) make contexts and handlers generic in their messages. Code that sees every
method sees any request and any response, which is what these aliases say.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeAlias, TypeVar, cast

import grpc
import grpc.aio

Req = TypeVar("Req")
Resp = TypeVar("Resp")

# A call's metadata as grpc hands it to servers (key, value) pairs; values are bytes for -bin keys.
Metadata: TypeAlias = Iterable[tuple[str, str | bytes]] | None
# The context of a call of any method.
Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
# grpc's stubs type a handler's behaviours as the sync server's; on grpc.aio they are coroutine
# functions or async generators, so wrappers take and give them as plain callables.
Behavior: TypeAlias = Callable[..., Any]
# What a server interceptor is given; quoted: grpc.RpcMethodHandler is generic in the stubs only.
Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Req, Resp] | None]]"
# The handler of a call of any method (quoted for the same reason).
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


def time_remaining(context: Context) -> float | None:
    """Seconds left before the call's deadline; None when it has none (grpc.aio answers None, though
    its stubs say float)."""
    return cast("float | None", context.time_remaining())
