"""The gateway's key interceptor: authentication, service permissions, rate limits, quotas, usage.

It runs inside the shared interceptor (shared.interceptors), which comes
first: the request id is already set, and the typed errors raised here
(UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED with RetryInfo) are
turned into statuses and access-log lines there. The key itself is never
logged, never put in an error message and never forwarded to a backend; only
its non-secret id is used from here on.

The key is checked from the call's metadata alone, before grpc receives and
parses the request: a call without a valid key (or past its rate or quota)
is refused without its body being read, so a keyless flood of large messages
costs the gateway little memory.

Streams are billed message by message as they pass (their usage field,
gateway.usage_meter), so a stream cancelled or failed midway is billed what
it computed, and a stream ends with RESOURCE_EXHAUSTED once the key's tokens
or images quota runs out.

Health checks and reflection (``/grpc.*``) need no key: probes and tools use
them. GetUsage needs a valid key but no service permission and no quota left,
so that a key can always see why it is refused; it is rate limited and not
counted.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

import grpc
import grpc.aio
from prometheus_client import Counter

from gateway.key_store import LOCAL_KEY, ApiKey, KeyStore
from gateway.limits import Refusal
from gateway.meter import MemoryMeter, Meter
from gateway.usage_meter import scan_usage
from lumen.common.v1 import common_pb2
from shared.admission import SHED_REASON, is_shed, undo_on_shed
from shared.errors import LumenError, PermissionDenied, ResourceExhausted, Unauthenticated
from shared.grpc_types import Context, Handler, Metadata
from shared.interceptors import USAGE_KEY, HandlerInterceptor, usage_of, wrap_handler

GET_USAGE = "/lumen.gateway.v1.GatewayService/GetUsage"
BEARER = "bearer "

REFUSED = Counter(
    "lumen_gateway_refused_total",
    "Calls the gateway refused before serving them, by key id ('-' without a valid key) and reason.",
    ["key_id", "reason"],
)

_caller: contextvars.ContextVar[ApiKey | None] = contextvars.ContextVar("lumen_api_key", default=None)


# Metadata the gateway adds to backend calls (clients cannot set it: only x-request-id is passed on).
KEY_ID_METADATA = "x-lumen-key-id"
KEY_TRAINING_JOBS_METADATA = "x-lumen-key-training-jobs"
KEY_DATASET_BYTES_METADATA = "x-lumen-key-dataset-bytes"


def current_key() -> ApiKey | None:
    """The key of the call being served, or None outside a call."""
    return _caller.get()


def caller() -> ApiKey:
    """The key of the call being served (LOCAL_KEY with keys off). Fails closed outside a call."""
    key = _caller.get()
    if key is None:
        raise Unauthenticated("no API key context for this call")
    return key


def presented_secret(metadata: Metadata) -> str | None:
    for name, value in metadata or ():
        if not isinstance(value, str):
            continue
        if name == "x-api-key" and value:
            return value.strip()
        if name == "authorization" and value[: len(BEARER)].lower() == BEARER:
            return value[len(BEARER) :].strip()
    return None


def usage_in_trailers(context: Context) -> common_pb2.Usage | None:
    """Usage a forwarded call relayed from its backend (raw-bytes responses carry no usage field)."""
    for name, value in context.trailing_metadata() or ():
        if name == USAGE_KEY and isinstance(value, bytes):
            return common_pb2.Usage.FromString(value)
    return None


def _shed(exc: BaseException, context: Context) -> bool:
    """Whether ``exc`` ends a call that a server's admission shed (this gateway's request-byte budget,
    or a backend's, relayed as it answered): no work was done, so the key's calls quota gets it back.
    Rate tokens stay taken: they bound how fast a key may try."""
    if isinstance(exc, ResourceExhausted):
        return exc.reason == SHED_REASON
    return isinstance(exc, grpc.aio.AbortError) and is_shed(context.code(), context.trailing_metadata())


class Guard:
    """Decides whether a call may run and keeps every key's usage.

    ``routes`` maps a full service name to the key permission it needs
    ("nlp", "vision", "embeddings" or "gateway"); ``store`` None means keys off.
    """

    def __init__(
        self,
        store: KeyStore | None,
        routes: Mapping[str, str],
        meter: Meter | None = None,
        admin_methods: Iterable[str] = (),
    ) -> None:
        self.store = store
        self.routes = dict(routes)
        self.meter: Meter = meter or MemoryMeter()
        self.admin_methods = frozenset(admin_methods)

    def known_key(self, key_id: str) -> ApiKey | None:
        if self.store is None:
            return LOCAL_KEY if key_id == LOCAL_KEY.id else None
        return self.store.keys.get(key_id)

    def authenticate(self, metadata: Metadata) -> ApiKey:
        if self.store is None:
            return LOCAL_KEY
        secret = presented_secret(metadata)
        if not secret:
            REFUSED.labels("-", "missing_key").inc()
            raise Unauthenticated(
                "missing API key: send it as x-api-key or authorization: Bearer <key>", reason="API_KEY_MISSING"
            )
        key = self.store.find(secret)
        if key is None:
            REFUSED.labels("-", "invalid_key").inc()
            raise Unauthenticated("invalid API key", reason="API_KEY_INVALID")
        return key

    async def admit(self, metadata: Metadata, method: str) -> ApiKey:
        """The caller's key if the call may run now (and then counted); raises the status to answer otherwise."""
        key = self.authenticate(metadata)
        counted = method != GET_USAGE
        if counted:
            service = self.routes.get(method[1:].split("/", 1)[0], "")
            if not key.may_use(service):
                REFUSED.labels(key.id, "permission").inc()
                raise PermissionDenied(
                    f"key {key.id!r} may not use the {service or 'requested'} service",
                    reason="SERVICE_NOT_ALLOWED",
                    metadata={"key_id": key.id, "service": service},
                )
            if method in self.admin_methods and not key.admin:
                REFUSED.labels(key.id, "admin").inc()
                raise PermissionDenied(
                    f"{method.rsplit('/', 1)[1]} needs an admin key; key {key.id!r} is not one",
                    reason="ADMIN_KEY_REQUIRED",
                    metadata={"key_id": key.id, "method": method},
                )
        # Quota (counted calls only), rate and counting in one step: atomic across gateway replicas.
        self.refuse_if(key, await self.meter.admit(key, method, counted))
        return key

    def refuse_if(self, key: ApiKey, refusal: Refusal | None) -> None:
        if refusal is not None:
            REFUSED.labels(key.id, refusal.reason).inc()
            raise ResourceExhausted(
                refusal.message,
                subject=f"key:{key.id}",
                retry_after_s=refusal.retry_after_s,
                # "rate", or the quota that ran out: "calls", "tokens" or "images".
                reason="RATE_LIMITED" if refusal.reason == "rate" else "QUOTA_EXCEEDED",
                metadata={"key_id": key.id, "limit": refusal.reason},
            )


async def _refused(exc: LumenError) -> AsyncIterator[Any]:
    """A call refused before its request is read: the handler is a stream one whatever the method,
    so grpc never receives (up to max_message_bytes) or parses the body of a call without a key."""
    raise exc
    yield  # type: ignore[unreachable]  # an async generator, as the shared interceptor's streaming wrapper expects


class KeyInterceptor(HandlerInterceptor):
    """Admits each call from its metadata alone, before grpc reads the request, then counts it.

    ``usage_fields`` (gateway.usage_meter.usage_fields) names the usage field of each
    streamed response, read as each message passes to bill it at once and end the
    stream when the key's quota runs out."""

    def __init__(self, guard: Guard, usage_fields: Mapping[str, int] | None = None) -> None:
        self.guard = guard
        self.usage_fields = dict(usage_fields or {})

    async def handle(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        method = details.method
        try:
            key = await self.guard.admit(details.invocation_metadata, method)
        except LumenError as exc:
            refusal = exc
            return grpc.stream_stream_rpc_method_handler(lambda _requests, _context: _refused(refusal))
        counted = method != GET_USAGE
        if counted:  # the server's admission runs after this and may shed the call: then it is not counted
            undo_on_shed.set(lambda: self.guard.meter.settle(key, method, False, None, shed=True))
        return wrap_handler(
            handler,
            lambda b: self.unary(key, method, counted, b),
            lambda b: self.streaming(key, method, counted, b),
        )

    def unary(
        self, key: ApiKey, method: str, counted: bool, behavior: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        async def wrapped(request: Any, context: Context) -> Any:
            token = _caller.set(key)
            ok, usage, shed = False, None, False
            try:
                response = await behavior(request, context)
                ok, usage = True, usage_of(response) or usage_in_trailers(context)
                return response
            except BaseException as exc:
                shed = _shed(exc, context)
                raise
            finally:
                _caller.reset(token)
                if counted:
                    await self.guard.meter.settle(key, method, ok, usage, shed)

        return wrapped

    def _message_usage(self, method: str, response: Any) -> common_pb2.Usage | None:
        field = self.usage_fields.get(method)
        if field and isinstance(response, bytes):  # a forwarded stream's raw message
            return scan_usage(response, field)
        return usage_of(response)

    def streaming(
        self, key: ApiKey, method: str, counted: bool, behavior: Callable[..., Any]
    ) -> Callable[..., AsyncIterator[Any]]:
        async def wrapped(request: Any, context: Context) -> AsyncIterator[Any]:
            token = _caller.set(key)
            ok, charged, shed = False, False, False
            try:
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    # aclosing: leaving early (quota, client gone) closes the relay at once,
                    # which cancels the backend call.
                    async with contextlib.aclosing(result) as responses:
                        async for response in responses:
                            usage = self._message_usage(method, response)
                            if counted and usage is not None and usage.ByteSize():
                                # Billed as it passes; the message that uses the quota up is
                                # delivered, the next one ends the stream with RESOURCE_EXHAUSTED
                                # (billed all the same: the backend computed it).
                                charged = True
                                self.guard.refuse_if(key, await self.guard.meter.charge(key, method, usage))
                            yield response
                else:  # a coroutine that writes with context.write()
                    await result
                ok = True
            except BaseException as exc:
                shed = _shed(exc, context)
                raise
            finally:
                # A stream the client abandons may be closed from another context; the
                # variable dies with the call's task anyway.
                with contextlib.suppress(ValueError):
                    _caller.reset(token)
                if counted:
                    usage = None if charged else usage_in_trailers(context)
                    await self.guard.meter.settle(key, method, ok, usage, shed)

        return wrapped
