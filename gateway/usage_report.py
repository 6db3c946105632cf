"""GetUsageResponse from a key's limits and what it consumed in the current period."""

from __future__ import annotations

from google.protobuf import timestamp_pb2

from gateway.key_store import ApiKey
from gateway.limits import PeriodUsage
from lumen.gateway.v1 import gateway_pb2 as pb


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromSeconds(int(seconds))
    return stamp


def _left(limit: int, used: int) -> int:
    return max(limit - used, 0) if limit else 0


def usage_report(key: ApiKey, period: PeriodUsage) -> pb.GetUsageResponse:
    quota = pb.Quota(
        rate_limit_per_second=key.rate_per_s if key.rate_limited else 0.0,
        burst=key.burst if key.rate_limited else 0,
        calls_limit=key.calls_per_period,
        calls_remaining=_left(key.calls_per_period, period.calls),
        tokens_limit=key.tokens_per_period,
        tokens_remaining=_left(key.tokens_per_period, period.tokens),
        images_limit=key.images_per_period,
        images_remaining=_left(key.images_per_period, period.usage.images),
        period_end=_timestamp(period.end),
    )
    return pb.GetUsageResponse(
        key_id=key.id,
        period_start=_timestamp(period.start),
        calls=period.calls,
        usage=period.usage,
        methods=[
            pb.MethodUsage(method=name, calls=counts.calls, errors=counts.errors, usage=counts.usage)
            for name, counts in sorted(period.methods.items())
        ],
        quota=quota,
    )
