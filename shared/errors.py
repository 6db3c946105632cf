"""Typed errors and their one mapping to gRPC status with google.rpc details.

Servicers and runtimes raise these; the error interceptor (shared.interceptors)
turns them into a status with rich details. Anything else becomes INTERNAL with
a generic message and is logged with its request id.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

ERROR_DOMAIN = "lumen"


class LumenError(Exception):
    """Base class: an error the caller is meant to see, with its gRPC code.

    ``reason`` (UPPER_SNAKE_CASE, stable for programs to branch on) and ``metadata`` add a
    google.rpc.ErrorInfo in domain "lumen" (AIP-193), for errors a client may want to tell apart
    within one code (a missing key from a wrong one, a rate from a quota)."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, reason: str = "", metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason, self.metadata = reason, metadata or {}

    def details(self) -> list[any_pb2.Any]:
        """google.rpc detail messages packed in Any; subclasses add theirs."""
        if not self.reason:
            return []
        return [_pack(error_details_pb2.ErrorInfo(reason=self.reason, domain=ERROR_DOMAIN, metadata=self.metadata))]

    def to_status_proto(self) -> status_pb2.Status:
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=self.details())

    def to_grpc_status(self) -> grpc.Status:
        return rpc_status.to_status(self.to_status_proto())


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


class InvalidArgument(LumenError):
    """A request field is wrong; each violation names its field path."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, description: str, more: Sequence[tuple[str, str]] = ()) -> None:
        self.violations = [(field, description), *more]
        super().__init__("; ".join(f"{f}: {d}" for f, d in self.violations))

    def details(self) -> list[any_pb2.Any]:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in self.violations
            ]
        )
        return [_pack(bad)]


class NotFound(LumenError):
    """A named resource (model, collection, gallery, person) does not exist."""

    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, resource_type: str, name: str, field: str = "") -> None:
        self.resource_type, self.name, self.field = resource_type, name, field
        where = f" ({field})" if field else ""
        super().__init__(f"{resource_type} {name!r} not found{where}")

    def details(self) -> list[any_pb2.Any]:
        info = error_details_pb2.ResourceInfo(resource_type=self.resource_type, resource_name=self.name)
        return [_pack(info)]


class AlreadyExists(LumenError):
    code = grpc.StatusCode.ALREADY_EXISTS

    def __init__(self, resource_type: str, name: str) -> None:
        self.resource_type, self.name = resource_type, name
        super().__init__(f"{resource_type} {name!r} already exists")

    def details(self) -> list[any_pb2.Any]:
        return [_pack(error_details_pb2.ResourceInfo(resource_type=self.resource_type, resource_name=self.name))]


class ResourceExhausted(LumenError):
    """A limit was hit: queue full, quota, rate, size. Carries RetryInfo when retrying helps."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(
        self,
        message: str,
        subject: str = "",
        retry_after_s: float | None = None,
        reason: str = "",
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason, metadata)
        self.subject, self.retry_after_s = subject, retry_after_s

    def details(self) -> list[any_pb2.Any]:
        out = [
            *super().details(),
            _pack(
                error_details_pb2.QuotaFailure(
                    violations=[
                        error_details_pb2.QuotaFailure.Violation(subject=self.subject, description=self.message)
                    ]
                )
            ),
        ]
        if self.retry_after_s is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(int(self.retry_after_s * 1e9))
            out.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
        return out


class FailedPrecondition(LumenError):
    """The system is not in a state to serve this (e.g. the model is still loading)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(LumenError):
    """Temporarily unable to serve; retrying later may work."""

    code = grpc.StatusCode.UNAVAILABLE


class Unauthenticated(LumenError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(LumenError):
    code = grpc.StatusCode.PERMISSION_DENIED


def status_proto_for(exc: BaseException) -> status_pb2.Status:
    """google.rpc.Status for a per-item result in a batch response."""
    if isinstance(exc, LumenError):
        return exc.to_status_proto()
    return status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")


OK_STATUS = status_pb2.Status(code=code_pb2.OK)
