"""The server interceptor every lumen server runs.

For each call it: takes or makes a request id (metadata ``x-request-id``) and
puts it in the logging context and the response's trailing metadata; maps
errors to gRPC status in one place (LumenError -> its code with google.rpc
details, anything unexpected -> INTERNAL with a generic message, logged);
opens the call's trace span when tracing is on (shared.tracing);
writes one access-log line; counts the call and its latency in Prometheus;
sheds the call with RESOURCE_EXHAUSTED and RetryInfo when the server is full
(shared.admission).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc
import grpc.aio

from lumen.common.v1 import common_pb2
from shared import metrics, tracing
from shared.admission import Admission
from shared.errors import LumenError
from shared.grpc_types import Behavior, Context, Continuation, Handler, Req, Resp
from shared.log import request_id

log = logging.getLogger("lumen.access")
errors_log = logging.getLogger("lumen.errors")

REQUEST_ID_KEY = "x-request-id"
# Trailing metadata carrying the call's lumen.common.v1.Usage (serialized), so
# the gateway can account tokens and images without parsing payloads.
USAGE_KEY = "lumen-usage-bin"


def usage_of(message: Any) -> common_pb2.Usage | None:
    usage = getattr(message, "usage", None)
    return usage if isinstance(usage, common_pb2.Usage) else None


def incoming_request_id(context: Context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and 0 < len(value) <= 128:
            return value
    return os.urandom(16).hex()  # a uuid4's randomness without building a UUID on every call


@functools.cache
def _method_metrics(method: str, code: grpc.StatusCode) -> tuple[Any, Any]:
    """The call counter and latency histogram of one method (and code), looked up once: labels() takes
    a lock and builds its key on every call. Methods are the servers' own (unknown ones never get here)."""
    return metrics.RPC_TOTAL.labels(method, code.name), metrics.RPC_LATENCY.labels(method)


class _Call:
    """Bookkeeping of one call: start, request id, admission, final code."""

    def __init__(self, method: str, context: Context, admission: Admission) -> None:
        self.method = method
        self.context = context
        self.admission = admission
        self.admitted = False
        self.rid = incoming_request_id(context)
        self.token = request_id.set(self.rid)
        self.start = time.perf_counter()
        self.code = grpc.StatusCode.OK
        self.span = tracing.server_span(method, context.invocation_metadata())
        metrics.RPC_IN_FLIGHT.inc()

    async def __aenter__(self) -> _Call:
        """Take the call's place in the server; when it is full, the call fails (RESOURCE_EXHAUSTED) and closes."""
        try:
            await self.admission.enter_or_undo()
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)  # raises: __aexit__ is not run when this fails
        self.admitted = True
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        """Any exception becomes the call's status (fail raises); the books close either way."""
        try:
            if exc is not None:
                await self.fail(exc)
        finally:
            self.finish()

    async def fail(self, exc: BaseException) -> None:
        """Turn ``exc`` into the call's status; always raises."""
        rid_md = ((REQUEST_ID_KEY, self.rid),)
        if isinstance(exc, asyncio.CancelledError):
            self.code = grpc.StatusCode.CANCELLED
            raise exc
        if isinstance(exc, grpc.aio.AbortError):  # servicer aborted on its own
            # grpc.aio answers None until a code is set, though its stubs say StatusCode.
            self.code = cast("grpc.StatusCode | None", self.context.code()) or grpc.StatusCode.UNKNOWN
            raise exc
        if isinstance(exc, LumenError):
            status = exc.to_grpc_status()
            self.code = status.code
            await self.context.abort(status.code, status.details, tuple(status.trailing_metadata) + rid_md)
        errors_log.error("unexpected error in %s", self.method, exc_info=exc)
        self.code = grpc.StatusCode.INTERNAL
        await self.context.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {self.rid})", rid_md)

    def finish(self) -> None:
        if self.admitted:
            self.admission.leave()
        elapsed = time.perf_counter() - self.start
        metrics.RPC_IN_FLIGHT.dec()
        total, latency = _method_metrics(self.method, self.code)
        total.inc()
        latency.observe(elapsed)
        if log.isEnabledFor(logging.INFO):  # peer() is a call into grpc: not made for a line nobody writes
            log.info("%s %s %.2fms peer=%s", self.method, self.code.name, elapsed * 1e3, self.context.peer())
        if self.span is not None:  # after the access line, which carries its trace id
            self.span.end(self.code, self.rid)
        request_id.reset(self.token)

    def ok(self, usage: common_pb2.Usage | None = None) -> None:
        trailing = [*(self.context.trailing_metadata() or ()), (REQUEST_ID_KEY, self.rid)]
        if usage is not None and usage.ByteSize():
            trailing.append((USAGE_KEY, usage.SerializeToString()))
        self.context.set_trailing_metadata(tuple(trailing))


def _wrap_unary(
    method: str, behavior: Callable[..., Awaitable[Any]], admission: Admission
) -> Callable[..., Awaitable[Any]]:
    async def wrapped(request_or_iterator: Any, context: Context) -> Any:
        async with _Call(method, context, admission) as call:
            response = await behavior(request_or_iterator, context)
            call.ok(usage_of(response))
            return response

    return wrapped


def _wrap_streaming(
    method: str, behavior: Callable[..., Any], admission: Admission
) -> Callable[..., AsyncIterator[Any]]:
    async def wrapped(request_or_iterator: Any, context: Context) -> AsyncIterator[Any]:
        async with _Call(method, context, admission) as call:
            result = behavior(request_or_iterator, context)
            total = common_pb2.Usage()
            if inspect.isasyncgen(result):
                async for response in result:
                    usage = usage_of(response)
                    if usage is not None:
                        total.input_tokens += usage.input_tokens
                        total.output_tokens += usage.output_tokens
                        total.images += usage.images
                    yield response
            else:  # a coroutine that writes with context.write()
                await result
            call.ok(total)

    return wrapped


def wrap_handler(
    handler: grpc.RpcMethodHandler[Req, Resp],
    unary: Callable[[Behavior], Behavior],
    streaming: Callable[[Behavior], Behavior],
) -> grpc.RpcMethodHandler[Req, Resp]:
    """The same handler with its behavior wrapped: ``unary`` for calls with one
    response, ``streaming`` for calls with a response stream."""
    codec = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), *codec)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), *codec)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), *codec)
    assert handler.stream_stream is not None  # a handler has exactly one of the four
    return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), *codec)


def is_infrastructure(method: str) -> bool:
    """Health probes and reflection: no access log, no metrics, no API key."""
    return method.startswith("/grpc.")


class HandlerInterceptor(grpc.aio.ServerInterceptor):
    """The shape of every lumen server interceptor: grpc's handler of a call in, the handler to run out.

    Calls grpc has no handler for pass through untouched, and so do health and
    reflection unless ``infrastructure`` is set (an interceptor that must see them too)."""

    infrastructure = False

    async def handle(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Continuation[Req, Resp],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Req, Resp] | None:
        handler = await continuation(handler_call_details)
        if handler is None or (not self.infrastructure and is_infrastructure(handler_call_details.method)):
            return handler
        return await self.handle(handler, handler_call_details)


class ServerInterceptor(HandlerInterceptor):
    """Request id, status mapping, access log, metrics, and admission (calls shed when full)."""

    def __init__(self, admission: Admission | None = None) -> None:
        self.admission = admission or Admission()

    async def handle(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        method = details.method
        return wrap_handler(
            handler,
            lambda b: _wrap_unary(method, b, self.admission),
            lambda b: _wrap_streaming(method, b, self.admission),
        )
