"""The request parse step every lumen server runs (health and reflection included).

grpc.aio parses a request with the handler's deserializer before any
interceptor or servicer runs, and answers bytes that do not parse (or a string
field that is not UTF-8) with UNKNOWN "Unexpected DecodeError"; inside a
request stream the error surfaces in the servicer's loop as INTERNAL. So the
innermost interceptor hands grpc a pass-through deserializer (the request stays
bytes on the wire side) and parses each message itself, where a failure becomes
INVALID_ARGUMENT with a google.rpc.BadRequest naming the message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import grpc.aio

from shared.errors import InvalidArgument

Deserializer = Callable[[bytes], Any]


class UndecodableRequest(InvalidArgument):
    """The request bytes are not a valid message of the method's request type."""


def _parse(deserialize: Deserializer, raw: bytes, where: str) -> Any:
    try:
        return deserialize(raw)
    except Exception as exc:  # DecodeError, UnicodeDecodeError, ...: every parse failure
        raise UndecodableRequest(
            where, f"the request bytes are not a valid message of this method's request type ({type(exc).__name__})"
        ) from None


async def _parsed_stream(deserialize: Deserializer, raw_requests: AsyncIterator[bytes]) -> AsyncIterator[Any]:
    index = 0
    async for raw in raw_requests:
        yield _parse(deserialize, raw, f"request[{index}]")
        index += 1


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


def _stream_request(deserialize: Deserializer, behavior: Callable[..., Any], streaming_response: bool) -> Any:
    # A chunk that does not parse raises UndecodableRequest inside the servicer's
    # loop; it leaves the servicer as itself (a LumenError) and is answered here.
    if streaming_response:

        async def stream_stream(raw: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                result = behavior(_parsed_stream(deserialize, raw), context)
                if hasattr(result, "__aiter__"):
                    async for response in result:
                        yield response
                else:
                    await result
            except UndecodableRequest as exc:
                await _abort(context, exc)

        return stream_stream

    async def stream_unary(raw: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> Any:
        try:
            return await behavior(_parsed_stream(deserialize, raw), context)
        except UndecodableRequest as exc:
            await _abort(context, exc)

    return stream_unary


def parsing_handler(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """``handler`` with grpc's request parsing replaced by ours (a no-op for raw-bytes handlers)."""
    deserialize = handler.request_deserializer
    if deserialize is None:
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
