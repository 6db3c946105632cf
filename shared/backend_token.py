"""The gateway's identity on backend calls when mTLS is off: a shared token from a Secret.

The gateway sends the token in the metadata ``x-lumen-backend-token`` of every
call to a model service (a client interceptor on its backend channels); a model
service with ``backend_token_file`` set refuses any other call with
UNAUTHENTICATED before it reads the request. Health checks and reflection stay
open (probes). With mTLS (``tls_client_ca_file`` on the services,
``backend_tls_*`` on the gateway) the certificate is the identity and the token
is optional; both can be on together.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from shared.errors import Unauthenticated
from shared.grpc_types import Context, Handler
from shared.interceptors import HandlerInterceptor

TOKEN_KEY = "x-lumen-backend-token"


def read_token(path: str) -> str:
    """The token in ``path`` (surrounding whitespace ignored); at least 16 characters."""
    token = Path(path).read_text().strip()
    if len(token) < 16:
        raise ValueError(f"backend token file {path}: the token must have at least 16 characters")
    return token


async def _refuse(_requests: Any, _context: Context) -> AsyncIterator[Any]:
    raise Unauthenticated("this service accepts calls from the lumen gateway only (backend token missing or wrong)")
    yield  # type: ignore[unreachable]  # makes this an async generator: the request is never read


class BackendTokenInterceptor(HandlerInterceptor):
    """Model services: calls but health and reflection must carry the token."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    async def handle(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        presented = b""
        for name, value in details.invocation_metadata or ():
            if name == TOKEN_KEY and isinstance(value, str):
                presented = value.encode()
        if hmac.compare_digest(presented, self._token):
            return handler
        return grpc.stream_stream_rpc_method_handler(_refuse)


def server_interceptors(token_file: str) -> list[grpc.aio.ServerInterceptor]:
    return [BackendTokenInterceptor(read_token(token_file))] if token_file else []


class _WithToken(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """The gateway: adds the token to every call on a backend channel."""

    def __init__(self, token: str) -> None:
        self._token = token

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata.add(TOKEN_KEY, self._token)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )

    # The four call kinds differ only in their types: the request (unary) or the request iterator (stream) passes
    # through as it came, on the details with the token added.
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)

    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)

    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)

    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


def client_interceptors(token_file: str) -> list[grpc.aio.ClientInterceptor]:
    return [_WithToken(read_token(token_file))] if token_file else []
