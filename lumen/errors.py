"""Errors the SDK raises: one exception per gRPC status, with the google.rpc details decoded.

Every failed call through `lumen.Client` or `lumen.AsyncClient` raises a `LumenError` subclass
chosen by status code (``except lumen.errors.NotFound``), carrying what the server sent in its
``grpc-status-details-bin`` trailer: BadRequest field violations (which request field is wrong),
RetryInfo (how long to wait), ErrorInfo (a stable reason such as ``RATE_LIMITED``),
ResourceInfo (the model, collection or gallery not found), QuotaFailure violations, and the
request id the server logged. `LumenError` is a `grpc.RpcError` with ``code()``, ``details()``
and ``trailing_metadata()``, so code written against grpc's errors keeps working.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"
REQUEST_ID_KEY = "x-request-id"


@dataclass(frozen=True)
class FieldViolation:
    """One wrong request field: its path (``texts[3]``, ``params.top_p``) and what is wrong."""

    field: str
    description: str
    reason: str = ""


@dataclass(frozen=True)
class ErrorInfo:
    """Why, as a stable UPPER_SNAKE_CASE reason within a domain, with facts about it."""

    reason: str
    domain: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResourceInfo:
    """The resource the error is about: type (``model``, ``collection``...) and name."""

    resource_type: str
    resource_name: str
    owner: str = ""
    description: str = ""


@dataclass(frozen=True)
class QuotaViolation:
    subject: str  # "key:<id>", "server:concurrent_calls"
    description: str


class LumenError(grpc.RpcError):
    """A failed call: status code, message and the decoded google.rpc details."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        status: status_pb2.Status | None = None,
        trailing_metadata: tuple[tuple[str, str | bytes], ...] = (),
    ) -> None:
        self.status_code = code
        self.message = message
        self.status = status or status_pb2.Status(code=code.value[0], message=message)
        self._trailing = trailing_metadata
        self.request_id: str | None = next(
            (str(v) for k, v in trailing_metadata if k == REQUEST_ID_KEY and isinstance(v, str)), None
        )
        self.field_violations: tuple[FieldViolation, ...] = ()
        self.retry_delay: float | None = None  # seconds, from RetryInfo
        self.error_info: ErrorInfo | None = None
        self.resource_info: ResourceInfo | None = None
        self.quota_violations: tuple[QuotaViolation, ...] = ()
        self.other_details: tuple[any_pb2.Any, ...] = ()  # detail types not decoded above, as sent
        self._decode(self.status.details)
        super().__init__(str(self))

    # grpc.Call's error interface, for code that catches grpc.RpcError.
    def code(self) -> grpc.StatusCode:
        return self.status_code

    def details(self) -> str:
        return self.message

    def trailing_metadata(self) -> Any:
        """The trailers as (key, value) pairs: x-request-id, grpc-status-details-bin..."""
        return self._trailing

    @property
    def fields(self) -> list[str]:
        """The request fields the server named as wrong."""
        return [v.field for v in self.field_violations if v.field]

    def __str__(self) -> str:
        line = f"{self.status_code.name}: {self.message}"
        if self.fields:
            line += f" (field: {', '.join(self.fields)})"
        return line

    def _decode(self, details: Iterable[any_pb2.Any]) -> None:
        other = []
        for detail in details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = _unpack(detail, error_details_pb2.BadRequest())
                self.field_violations += tuple(
                    FieldViolation(v.field, v.description, v.reason) for v in bad.field_violations
                )
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = _unpack(detail, error_details_pb2.RetryInfo())
                self.retry_delay = retry.retry_delay.ToNanoseconds() / 1e9
            elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = _unpack(detail, error_details_pb2.ErrorInfo())
                self.error_info = ErrorInfo(info.reason, info.domain, dict(info.metadata))
            elif detail.Is(error_details_pb2.ResourceInfo.DESCRIPTOR):
                res = _unpack(detail, error_details_pb2.ResourceInfo())
                self.resource_info = ResourceInfo(res.resource_type, res.resource_name, res.owner, res.description)
            elif detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
                quota = _unpack(detail, error_details_pb2.QuotaFailure())
                self.quota_violations += tuple(QuotaViolation(v.subject, v.description) for v in quota.violations)
            else:
                other.append(detail)
        self.other_details = tuple(other)

    @classmethod
    def of(cls, exc: grpc.RpcError) -> LumenError:
        """The LumenError (subclass by code) for an error a grpc or grpc.aio call raised."""
        if isinstance(exc, LumenError):
            return exc
        code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN  # type: ignore[attr-defined]
        message = (exc.details() if hasattr(exc, "details") else str(exc)) or ""  # type: ignore[attr-defined]
        raw = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None  # type: ignore[attr-defined]
        trailing: tuple[tuple[str, str | bytes], ...] = tuple((k, v) for k, v in raw or ())  # type: ignore[misc,has-type]
        status = None
        for key, value in trailing:
            if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
                status = status_pb2.Status.FromString(value)
        return BY_CODE.get(code, LumenError)(code, message, status, trailing)


def _unpack(detail: any_pb2.Any, message: Any) -> Any:
    detail.Unpack(message)
    return message


class InvalidArgument(LumenError):
    """A request field is wrong: see ``field_violations``."""


class NotFound(LumenError):
    """A named model, collection, gallery or person does not exist: see ``resource_info``."""


class AlreadyExists(LumenError):
    pass


class PermissionDenied(LumenError):
    """The API key may not use this service or method."""


class Unauthenticated(LumenError):
    """No API key, or one the gateway does not know."""


class ResourceExhausted(LumenError):
    """A rate, quota or size limit: ``retry_delay`` says when to try again, when retrying helps."""


class FailedPrecondition(LumenError):
    pass


class Unavailable(LumenError):
    """The gateway or a backend cannot be reached now (also: a TLS handshake that failed)."""


class DeadlineExceeded(LumenError):
    pass


class Cancelled(LumenError):
    pass


class Internal(LumenError):
    """A server bug; ``request_id`` finds its log line."""


BY_CODE: dict[grpc.StatusCode, type[LumenError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.INTERNAL: Internal,
}
