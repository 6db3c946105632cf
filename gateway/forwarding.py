"""Pass-through of the model services' own RPCs: the gateway serves
lumen.embeddings.v1.EmbeddingService (and every other forwarded service) on its
own address and relays each call to the owning backend as raw bytes, never
parsing the payload. Deadlines, cancellation, the request id and the backend's
status with its google.rpc details all travel through; so does the backend's
trailing metadata of a successful call, whose usage (lumen-usage-bin) the key
interceptor (gateway.auth) counts against the caller's quota.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import TypeAlias

import grpc
import grpc.aio
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from gateway.backends import Backend, outgoing_metadata
from shared.grpc_types import time_remaining
from shared.interceptors import REQUEST_ID_KEY
from shared.log import request_id

log = logging.getLogger(__name__)

# Forwarded calls carry raw bytes both ways: nothing is (de)serialised on the gateway.
Context: TypeAlias = grpc.aio.ServicerContext[bytes, bytes]
Handler: TypeAlias = "grpc.RpcMethodHandler[bytes, bytes]"  # quoted: not subscriptable at run time


def _relayable(metadata: grpc.aio.Metadata | None) -> tuple[tuple[str, str | bytes], ...]:
    # The gateway's own interceptor adds x-request-id (the same id the backend got).
    return tuple((key, value) for key, value in metadata or () if key != REQUEST_ID_KEY)


async def relay_error(context: Context, exc: grpc.aio.AioRpcError) -> None:
    """End the client's call with the backend's code, message and details, and the request id
    (the interceptor adds it to successful calls only: an abort is the servicer's own ending)."""
    trailing = (*_relayable(exc.trailing_metadata()), (REQUEST_ID_KEY, request_id.get()))
    await context.abort(exc.code(), exc.details() or "", trailing)


async def relay_trailers(context: Context, call: grpc.aio.Call) -> None:
    """Pass the backend's trailing metadata of a successful call on: its usage (lumen-usage-bin),
    which the key interceptor also counts, and whatever else the backend reports."""
    context.set_trailing_metadata(_relayable(await call.trailing_metadata()))


def _timeout(context: Context, default: float | None) -> float | None:
    remaining = time_remaining(context)
    return remaining if remaining is not None else default


def _unary_request(backend: Backend, path: str, streaming_response: bool, default_timeout: float | None) -> Handler:
    if not streaming_response:
        unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = backend.channel.unary_unary(path)

        async def unary_unary(request: bytes, context: Context) -> bytes:
            call = unary(request, timeout=_timeout(context, default_timeout), metadata=outgoing_metadata(context))
            try:
                response = await call
            except grpc.aio.AioRpcError as exc:
                await relay_error(context, exc)
                raise  # unreachable: abort raises
            await relay_trailers(context, call)
            return response

        return grpc.unary_unary_rpc_method_handler(unary_unary)

    server_stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = backend.channel.unary_stream(path)

    async def unary_stream(request: bytes, context: Context) -> AsyncIterator[bytes]:
        call = server_stream(request, timeout=_timeout(context, None), metadata=outgoing_metadata(context))
        async for response in _relay_stream(call, context):
            yield response

    return grpc.unary_stream_rpc_method_handler(unary_stream)


def _stream_request(backend: Backend, path: str, streaming_response: bool, default_timeout: float | None) -> Handler:
    if not streaming_response:
        client_stream: grpc.aio.StreamUnaryMultiCallable[bytes, bytes] = backend.channel.stream_unary(path)

        async def stream_unary(requests: AsyncIterator[bytes], context: Context) -> bytes:
            call = client_stream(timeout=_timeout(context, default_timeout), metadata=outgoing_metadata(context))
            pump = asyncio.create_task(_pump(requests, call))
            try:
                response = await call
            except grpc.aio.AioRpcError as exc:
                await _stop(pump)
                await relay_error(context, exc)
                raise
            finally:
                pump.cancel()
                call.cancel()
            await relay_trailers(context, call)
            return response

        return grpc.stream_unary_rpc_method_handler(stream_unary)

    bidi: grpc.aio.StreamStreamMultiCallable[bytes, bytes] = backend.channel.stream_stream(path)

    async def stream_stream(requests: AsyncIterator[bytes], context: Context) -> AsyncIterator[bytes]:
        call = bidi(timeout=_timeout(context, None), metadata=outgoing_metadata(context))
        pump = asyncio.create_task(_pump(requests, call))
        try:
            async for response in _relay_stream(call, context, pump):
                yield response
        finally:
            pump.cancel()

    return grpc.stream_stream_rpc_method_handler(stream_stream)


async def _pump(
    requests: AsyncIterator[bytes],
    call: grpc.aio.StreamUnaryCall[bytes, bytes] | grpc.aio.StreamStreamCall[bytes, bytes],
) -> None:
    """The client's messages to the backend until either side ends. The backend may end the call
    (a refused chunk) while the client still sends: writing then fails, and that must not touch the
    call, whose own status is what the client gets (grpc's request-iterator consumer would cancel it)."""
    try:
        async for message in requests:
            await call.write(message)
        await call.done_writing()
    except asyncio.CancelledError:
        raise
    except Exception:  # the backend's status, read by the relay, says what happened
        log.debug("stopped relaying client messages on %s", call, exc_info=True)


async def _stop(pump: asyncio.Task[None]) -> None:
    """Stop reading the client before ending its call, so that no read is pending on a call we abort."""
    pump.cancel()
    await asyncio.gather(pump, return_exceptions=True)


async def _relay_stream(
    call: grpc.aio.UnaryStreamCall[bytes, bytes] | grpc.aio.StreamStreamCall[bytes, bytes],
    context: Context,
    pump: asyncio.Task[None] | None = None,
) -> AsyncIterator[bytes]:
    """Yield the backend's messages one by one; cancel the backend call if the client goes."""
    try:
        async for response in call:
            yield response
    except grpc.aio.AioRpcError as exc:
        if pump is not None:
            await _stop(pump)
        await relay_error(context, exc)
    finally:
        call.cancel()
    await relay_trailers(context, call)


def _method_handler(backend: Backend, path: str, method: MethodDescriptor, default_timeout: float | None) -> Handler:
    make: Callable[[Backend, str, bool, float | None], Handler]
    make = _stream_request if method.client_streaming else _unary_request
    return make(backend, path, method.server_streaming, default_timeout)


def forwarding_handler(
    backend: Backend, service: ServiceDescriptor, default_timeout: float | None
) -> grpc.GenericRpcHandler:
    """A generic handler serving every method of ``service`` by relaying to ``backend``."""
    handlers = {
        method.name: _method_handler(backend, f"/{service.full_name}/{method.name}", method, default_timeout)
        for method in service.methods
    }
    return grpc.method_handlers_generic_handler(service.full_name, handlers)
