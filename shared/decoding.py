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
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio

from shared.admission import Admission
from shared.errors import InvalidArgument, ResourceExhausted
from shared.grpc_types import Behavior, Context, Handler, Req, Resp
from shared.interceptors import HandlerInterceptor, is_infrastructure

Deserializer = Callable[[bytes], Any]

# After an error, how much of the rest of a request stream is read and dropped
# so the client ends its sending before it gets the status.
DRAIN_MESSAGES = 256
DRAIN_SECONDS = 2.0


class UndecodableRequest(InvalidArgument):
    """The request bytes are not a valid message of the method's request type."""


class _Held:
    """The request bytes one call holds against the server's budget (none for health and reflection)."""

    def __init__(self, admission: Admission | None) -> None:
        self.admission, self.size = admission, 0

    def take(self, size: int, replace: bool = False) -> None:
        """Hold ``size`` more bytes; ``replace``: instead of the ones held (a stream's previous
        chunk, handed to the servicer already)."""
        if self.admission is None:
            return
        if replace:
            self.free()
        self.admission.hold(size)
        self.size += size

    def free(self) -> None:
        if self.admission is not None and self.size:
            self.admission.release(self.size)
            self.size = 0


def _parse(deserialize: Deserializer | None, raw: bytes, where: str) -> Any:
    if deserialize is None:
        return raw
    try:
        return deserialize(raw)
    except Exception as exc:  # DecodeError, UnicodeDecodeError, ...: every parse failure
        raise UndecodableRequest(
            where, f"the request bytes are not a valid message of this method's request type ({type(exc).__name__})"
        ) from None


class _RequestStream:
    """The servicer's view of a request stream (parsed), remembering whether it ended.

    As a context manager around the call: a call that fails drains the rest of the
    stream first, and a message that does not parse (or fit the byte budget) is
    answered with its own status."""

    def __init__(
        self,
        deserialize: Deserializer | None,
        raw: AsyncIterator[bytes],
        admission: Admission | None,
        context: Context,
    ) -> None:
        self.deserialize, self.raw, self.context, self.ended = deserialize, raw, context, False
        self.held = _Held(admission)

    async def __aenter__(self) -> _RequestStream:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        try:
            if isinstance(exc, Exception):
                await self.drain()
                if isinstance(exc, (UndecodableRequest, ResourceExhausted)):
                    await _abort(self.context, exc)
        finally:
            self.held.free()

    async def messages(self) -> AsyncIterator[Any]:
        index = 0
        async for raw in self.raw:
            self.held.take(len(raw), replace=True)
            yield _parse(self.deserialize, raw, f"request[{index}]")
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


async def _abort(context: Context, exc: UndecodableRequest | ResourceExhausted) -> None:
    status = exc.to_grpc_status()
    await context.abort(status.code, status.details, tuple(status.trailing_metadata))


def _unary_request(
    deserialize: Deserializer | None, behavior: Behavior, streaming_response: bool, admission: Admission | None
) -> Behavior:
    async def admit(raw: bytes, held: _Held, context: Context) -> Any:
        """The parsed request; one that does not parse or fit the byte budget is answered with its status."""
        try:
            held.take(len(raw))
            return _parse(deserialize, raw, "request")
        except (UndecodableRequest, ResourceExhausted) as exc:
            await _abort(context, exc)  # raises: grpc.aio's abort ends the call
            raise

    if streaming_response:

        async def unary_stream(raw: bytes, context: Context) -> AsyncIterator[Any]:
            held = _Held(admission)
            try:
                request = await admit(raw, held, context)
                result = behavior(request, context)
                if hasattr(result, "__aiter__"):
                    async for response in result:
                        yield response
                else:  # a coroutine that writes with context.write()
                    await result
            finally:
                held.free()

        return unary_stream

    async def unary_unary(raw: bytes, context: Context) -> Any:
        held = _Held(admission)
        try:
            request = await admit(raw, held, context)
            return await behavior(request, context)
        finally:
            held.free()

    return unary_unary


def _stream_request(
    deserialize: Deserializer | None, behavior: Behavior, streaming_response: bool, admission: Admission | None
) -> Behavior:
    # A chunk that does not parse (or does not fit the byte budget) raises inside the
    # servicer's loop; it leaves the servicer as itself (a LumenError) and is answered
    # by _RequestStream.
    if streaming_response:

        async def stream_stream(raw: AsyncIterator[bytes], context: Context) -> AsyncIterator[Any]:
            async with _RequestStream(deserialize, raw, admission, context) as requests:
                result = behavior(requests.messages(), context)
                if hasattr(result, "__aiter__"):
                    async for response in result:
                        yield response
                else:
                    await result

        return stream_stream

    async def stream_unary(raw: AsyncIterator[bytes], context: Context) -> Any:
        async with _RequestStream(deserialize, raw, admission, context) as requests:
            return await behavior(requests.messages(), context)

    return stream_unary


def parsing_handler(
    handler: grpc.RpcMethodHandler[Req, Resp], admission: Admission | None = None
) -> grpc.RpcMethodHandler[Any, Resp]:
    """``handler`` with grpc's request parsing replaced by ours (raw-bytes handlers keep their bytes),
    each request's bytes held against ``admission``'s budget while the call runs. (The request type
    is Any: grpc hands the new handler bytes, the servicer still gets ``Req``.)"""
    deserialize = handler.request_deserializer
    serialize = handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            _unary_request(deserialize, handler.unary_unary, False, admission), response_serializer=serialize
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            _unary_request(deserialize, handler.unary_stream, True, admission), response_serializer=serialize
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            _stream_request(deserialize, handler.stream_unary, False, admission), response_serializer=serialize
        )
    assert handler.stream_stream is not None  # a handler has exactly one of the four
    return grpc.stream_stream_rpc_method_handler(
        _stream_request(deserialize, handler.stream_stream, True, admission), response_serializer=serialize
    )


class ParseInterceptor(HandlerInterceptor):
    """Innermost interceptor: the servicer gets parsed messages, grpc hands over bytes.

    Health and reflection are parsed too, but their bytes are not counted: probes
    must answer however full the server is."""

    def __init__(self, admission: Admission | None = None) -> None:
        self.admission = admission

    infrastructure = True

    async def handle(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        return parsing_handler(handler, None if is_infrastructure(details.method) else self.admission)
