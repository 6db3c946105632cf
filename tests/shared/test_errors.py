from __future__ import annotations

import grpc
from google.rpc import error_details_pb2

from shared.errors import InvalidArgument, NotFound, ResourceExhausted


def _unpack(status, kind):
    for detail in status.details:
        if detail.Is(kind.DESCRIPTOR):
            message = kind()
            detail.Unpack(message)
            return message
    raise AssertionError(f"no {kind.DESCRIPTOR.name} detail")


def test_invalid_argument_carries_bad_request_with_field() -> None:
    error = InvalidArgument("texts[2]", "must not be empty")
    status = error.to_status_proto()
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    bad = _unpack(status, error_details_pb2.BadRequest)
    assert bad.field_violations[0].field == "texts[2]"
    assert error.to_grpc_status().code is grpc.StatusCode.INVALID_ARGUMENT


def test_not_found_carries_resource_info() -> None:
    status = NotFound("model", "nope", "model.name").to_status_proto()
    assert status.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert _unpack(status, error_details_pb2.ResourceInfo).resource_name == "nope"


def test_resource_exhausted_carries_retry_info() -> None:
    status = ResourceExhausted("queue full", subject="model:x", retry_after_s=0.25).to_status_proto()
    assert _unpack(status, error_details_pb2.RetryInfo).retry_delay.ToMilliseconds() == 250
