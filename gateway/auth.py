"""The gateway's key interceptor: authentication, service permissions, rate limits, quotas, usage.

It runs inside the shared interceptor (shared.interceptors), which comes
first: the request id is already set, and the typed errors raised here
(UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED with RetryInfo) are
turned into statuses and access-log lines there. The key itself is never
logged, never put in an error message and never forwarded to a backend; only
its non-secret id is used from here on.

Health checks and reflection (``/grpc.*``) need no key: probes and tools use
them. GetUsage needs a valid key but no service permission and no quota left,
so that a key can always see why it is refused; it is rate limited and not
counted.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc
import grpc.aio
from prometheus_client import Counter

from gateway.key_store import LOCAL_KEY, ApiKey, KeyStore
from gateway.limits import Refusal, add_usage
from gateway.meter import MemoryMeter, Meter
from lumen.common.v1 import common_pb2
from shared.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from shared.interceptors import USAGE_KEY, WrappingInterceptor, usage_of

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


def current_key() -> ApiKey | None:
    """The key of the call being served, or None outside a call."""
    return _caller.get()


def caller() -> ApiKey:
    """The key of the call being served (LOCAL_KEY with keys off). Fails closed outside a call."""
    key = _caller.get()
    if key is None:
        raise Unauthenticated("no API key context for this call")
    return key


def presented_secret(metadata: Any) -> str | None:
    for name, value in metadata or ():
        if not isinstance(value, str):
            continue
        if name == "x-api-key" and value:
            return value.strip()
        if name == "authorization" and value[: len(BEARER)].lower() == BEARER:
            return value[len(BEARER) :].strip()
    return None


def usage_in_trailers(context: grpc.aio.ServicerContext) -> common_pb2.Usage | None:
    """Usage a forwarded call relayed from its backend (raw-bytes responses carry no usage field)."""
    for name, value in context.trailing_metadata() or ():
        if name == USAGE_KEY and isinstance(value, bytes):
            return common_pb2.Usage.FromString(value)
    return None


class Guard:
    """Decides whether a call may run and keeps every key's usage.

    ``routes`` maps a full service name to the key permission it needs
    ("nlp", "vision", "embeddings" or "gateway"); ``store`` None means keys off.
    """

    def __init__(self, store: KeyStore | None, routes: Mapping[str, str], meter: Meter | None = None) -> None:
        self.store = store
        self.routes = dict(routes)
        self.meter: Meter = meter or MemoryMeter()

    @property
    def enabled(self) -> bool:
        return self.store is not None

    def known_key(self, key_id: str) -> ApiKey | None:
        if self.store is None:
            return LOCAL_KEY if key_id == LOCAL_KEY.id else None
        return self.store.keys.get(key_id)

    def authenticate(self, metadata: Any) -> ApiKey:
        if self.store is None:
            return LOCAL_KEY
        secret = presented_secret(metadata)
        if not secret:
            REFUSED.labels("-", "missing_key").inc()
            raise Unauthenticated("missing API key: send it as x-api-key or authorization: Bearer <key>")
        key = self.store.find(secret)
        if key is None:
            REFUSED.labels("-", "invalid_key").inc()
            raise Unauthenticated("invalid API key")
        return key

    async def admit(self, metadata: Any, method: str) -> ApiKey:
        """The caller's key if the call may run now (and then counted); raises the status to answer otherwise."""
        key = self.authenticate(metadata)
        counted = method != GET_USAGE
        if counted:
            service = self.routes.get(method[1:].split("/", 1)[0], "")
            if not key.may_use(service):
                REFUSED.labels(key.id, "permission").inc()
                raise PermissionDenied(f"key {key.id!r} may not use the {service or 'requested'} service")
        # Quota (counted calls only), rate and counting in one step: atomic across gateway replicas.
        self._refuse_if(key, await self.meter.admit(key, method, counted))
        return key

    def _refuse_if(self, key: ApiKey, refusal: Refusal | None) -> None:
        if refusal is not None:
            REFUSED.labels(key.id, refusal.reason).inc()
            raise ResourceExhausted(refusal.message, subject=f"key:{key.id}", retry_after_s=refusal.retry_after_s)


class KeyInterceptor(WrappingInterceptor):
    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    async def _start(self, method: str, context: grpc.aio.ServicerContext) -> tuple[ApiKey, contextvars.Token, bool]:
        key = await self.guard.admit(context.invocation_metadata(), method)
        return key, _caller.set(key), method != GET_USAGE

    def unary(self, method: str, behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            key, token, counted = await self._start(method, context)
            ok, usage = False, None
            try:
                response = await behavior(request, context)
                ok, usage = True, usage_of(response) or usage_in_trailers(context)
                return response
            finally:
                _caller.reset(token)
                if counted:
                    await self.guard.meter.settle(key, method, ok, usage)

        return wrapped

    def streaming(self, method: str, behavior: Callable[..., Any]) -> Callable[..., AsyncIterator[Any]]:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            key, token, counted = await self._start(method, context)
            ok, total = False, common_pb2.Usage()
            try:
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    async for response in result:
                        add_usage(total, usage_of(response))
                        yield response
                else:  # a coroutine that writes with context.write()
                    await result
                ok = True
                if not total.ByteSize():
                    add_usage(total, usage_in_trailers(context))
            finally:
                # A stream the client abandons may be closed from another context; the
                # variable dies with the call's task anyway.
                with contextlib.suppress(ValueError):
                    _caller.reset(token)
                if counted:
                    await self.guard.meter.settle(key, method, ok, total)

        return wrapped
