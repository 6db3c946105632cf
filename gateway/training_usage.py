"""A key's training time for GetUsage, asked of the training service (it owns the job records).

Jobs run for minutes or hours after the call that created them, so their time
cannot be metered as calls pass; the training service sums the time of the
key's jobs within the period instead. GetUsage stays answerable when the
training service is away: the figure is then left out (0) and logged.
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf import timestamp_pb2

from gateway.auth import KEY_ID_METADATA
from gateway.backends import Backend
from gateway.key_store import ApiKey
from lumen.training.v1 import training_pb2, training_pb2_grpc
from shared.log import request_id

log = logging.getLogger(__name__)
TIMEOUT_S = 2.0


def _stamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


async def training_seconds(backend: Backend | None, key: ApiKey, start: float, end: float) -> float:
    """Seconds ``key``'s jobs ran within [start, end); 0 without a training backend or permission."""
    if backend is None or not key.may_use("training"):
        return 0.0
    stub = training_pb2_grpc.TrainingServiceStub(backend.channel)
    request = training_pb2.GetTrainingUsageRequest(start_time=_stamp(start), end_time=_stamp(end))
    # The key reported on, which an admin's GetUsage may name (not the caller's).
    metadata = (("x-request-id", request_id.get()), (KEY_ID_METADATA, key.id))
    try:
        reply = await stub.GetTrainingUsage(request, metadata=metadata, timeout=TIMEOUT_S)
    except grpc.aio.AioRpcError as exc:
        log.warning("training time of key %s unknown: %s %s", key.id, exc.code().name, exc.details())
        return 0.0
    return reply.training_seconds
