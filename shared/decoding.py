"""The request parse step every lumen server runs (health and reflection included).

grpc.aio parses a request with the handler's deserializer before any
interceptor or servicer runs, and answers bytes that do not parse (or a string
field that is not UTF-8) with UNKNOWN "Unexpected DecodeError"; inside a
request stream the error surfaces in the servicer's loop as INTERNAL. So the
innermost interceptor hands grpc a pass-through deserializer (the request stays
bytes on the wire side) and parses each message itself, where a failure becomes
INVALID_ARGUMENT with a google.rpc.BadRequest naming the message.

A request stream that ends in an error is also drained (bounded) before the
status goes out: grpc.aio's client turns a write that fails because the server
already answered into INTERNAL "Internal error from Core", losing our status,
whenever the client was still sending (the gateway's relay is such a client).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import grpc.aio

from shared.errors import InvalidArgument

Deserializer = Callable[[bytes], Any]

# After an error, how much of the rest of a request stream is read and dropped
# so the client ends its sending before it gets the status.
DRAIN_MESSAGES = 256
DRAIN_SECONDS = 2.0


class UndecodableRequest(InvalidArgument):
    """The request bytes are not a valid message of the method's request type."""


def _parse(deserialize: Deserializer, raw: bytes, where: str) -> Any:
    try:
        return deserialize(raw)
    except Exception as exc:  # DecodeError, UnicodeDecodeError, ...: every parse failure
        raise UndecodableRequest(
            where, f"the request bytes are not a valid message of this method's request type ({type(exc).__name__})"
        ) from None


class _RequestStream:
    """The servicer's view of a request stream (parsed), remembering whether it ended."""

    def __init__(self, deserialize: Deserializer | None, raw: AsyncIterator[bytes]) -> None:
        self.deserialize, self.raw, self.ended = deserialize, raw, False

    async def messages(self) -> AsyncIterator[Any]:
        index = 0
        async for raw in self.raw:
            yield raw if self.deserialize is None else _parse(self.deserialize, raw, f"request[{index}]")
            index += 1
        self.ended = True

    async def drain(self) -> None:
        """Read what the client is still sending (bounded in count and time), dropping it."""
        if self.ended:
            return
        # RuntimeError: another task (a relay's sender) is still reading the stream.
        with contextlib.suppress(Exception, asyncio.TimeoutError):
            async with asyncio.timeout(DRAIN_SECONDS):
                n = 0
                async for _ in self.raw:
                    n += 1
                    if n >= DRAIN_MESSAGES:
                        return


async def _abort(context: grpc.aio.ServicerContext, exc: UndecodableRequest) -> None:
    status = exc.to_grpc_status()
    await context.abort(status.code, status.details, tuple(status.trailing_metadata))


def _unary_request(deserialize: Deserializer, behavior: Callable[..., Any], streaming_response: bool) -> Any:
    if streaming_response:

        async def unary_stream(raw: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                request = _parse(deserialize, raw, "request")
            except UndecodableRequest as exc:
                await _abort(context, exc)
            result = behavior(request, context)
            if hasattr(result, "__aiter__"):
                async for response in result:
                    yield response
            else:  # a coroutine that writes with context.write()
                await result

        return unary_stream

    async def unary_unary(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        try:
            request = _parse(deserialize, raw, "request")
        except UndecodableRequest as exc:
            await _abort(context, exc)
        return await behavior(request, context)

    return unary_unary


def _stream_request(deserialize: Deserializer | None, behavior: Callable[..., Any], streaming_response: bool) -> Any:
    # A chunk that does not parse raises UndecodableRequest inside the servicer's
    # loop; it leaves the servicer as itself (a LumenError) and is answered here.
    if streaming_response:

        async def stream_stream(raw: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            requests = _RequestStream(deserialize, raw)
            try:
                result = behavior(requests.messages(), context)
                if hasattr(result, "__aiter__"):
                    async for response in result:
                        yield response
                else:
                    await result
            except UndecodableRequest as exc:
                await requests.drain()
                await _abort(context, exc)
            except Exception:
                await requests.drain()
                raise

        return stream_stream

    async def stream_unary(raw: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> Any:
        requests = _RequestStream(deserialize, raw)
        try:
            return await behavior(requests.messages(), context)
        except UndecodableRequest as exc:
            await requests.drain()
            await _abort(context, exc)
        except Exception:
            await requests.drain()
            raise

    return stream_unary


def parsing_handler(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """``handler`` with grpc's request parsing replaced by ours (raw-bytes handlers keep their bytes)."""
    deserialize = handler.request_deserializer
    if deserialize is None and not (handler.stream_unary or handler.stream_stream):
        return handler
    serialize = handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            _unary_request(deserialize, handler.unary_unary, False), response_serializer=serialize
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            _unary_request(deserialize, handler.unary_stream, True), response_serializer=serialize
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            _stream_request(deserialize, handler.stream_unary, False), response_serializer=serialize
        )
    return grpc.stream_stream_rpc_method_handler(
        _stream_request(deserialize, handler.stream_stream, True), response_serializer=serialize
    )


class ParseInterceptor(grpc.aio.ServerInterceptor):
    """Innermost interceptor: the servicer gets parsed messages, grpc hands over bytes."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        return handler if handler is None else parsing_handler(handler)
