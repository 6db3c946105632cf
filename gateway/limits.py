"""Per-key rate limits (token buckets) and the usage ledger behind quotas and GetUsage.

Both live in the gateway's memory: a restart starts new periods' counts from
zero, and with several gateway replicas each enforces its own share (give each
replica the key's limits divided by the number of replicas, or put the ledger
in a shared store; see the gateway README).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.key_store import ApiKey
from lumen.common.v1 import common_pb2


@dataclass
class TokenBucket:
    """``rate`` tokens per second up to ``capacity``; a call takes one."""

    rate: float
    capacity: float
    tokens: float = field(init=False)
    stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def retune(self, rate: float, capacity: float) -> None:
        self.rate, self.capacity = rate, capacity
        self.tokens = min(self.tokens, capacity)

    def take(self, now: float | None = None) -> float:
        """Take a token: 0.0 when allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


def add_usage(total: common_pb2.Usage, usage: common_pb2.Usage | None) -> None:
    if usage is not None:
        total.input_tokens += usage.input_tokens
        total.output_tokens += usage.output_tokens
        total.images += usage.images


@dataclass
class MethodCounts:
    calls: int = 0
    errors: int = 0
    usage: common_pb2.Usage = field(default_factory=common_pb2.Usage)


@dataclass
class PeriodUsage:
    """What one key consumed in one quota period."""

    start: float  # Unix seconds, UTC-aligned multiple of the key's period
    length: int
    calls: int = 0
    usage: common_pb2.Usage = field(default_factory=common_pb2.Usage)
    methods: dict[str, MethodCounts] = field(default_factory=dict)

    @property
    def end(self) -> float:
        return self.start + self.length

    @property
    def tokens(self) -> int:
        return self.usage.input_tokens + self.usage.output_tokens


def period_start(now: float, length: int) -> float:
    return math.floor(now / length) * length


@dataclass
class Refusal:
    reason: str  # "rate" or "calls" / "tokens" / "images" (quota)
    message: str
    retry_after_s: float


class Ledger:
    """Token buckets and period usage of every key, by key id."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.buckets: dict[str, TokenBucket] = {}
        self.periods: dict[str, PeriodUsage] = {}

    def period(self, key: ApiKey) -> PeriodUsage:
        now = self.clock()
        current = self.periods.get(key.id)
        start = period_start(now, key.period_s)
        if current is None or current.start != start or current.length != key.period_s:
            current = self.periods[key.id] = PeriodUsage(start, key.period_s)
        return current

    def check_quota(self, key: ApiKey, reasons: tuple[str, ...] = ("calls", "tokens", "images")) -> Refusal | None:
        """Why the key may not start (or, for ``reasons`` tokens and images, go on with) a call."""
        period = self.period(key)
        wait = max(period.end - self.clock(), 0.0)
        for reason, used, limit in (
            ("calls", period.calls, key.calls_per_period),
            ("tokens", period.tokens, key.tokens_per_period),
            ("images", period.usage.images, key.images_per_period),
        ):
            if limit and used >= limit and reason in reasons:
                return Refusal(reason, f"quota of {limit} {reason} per {key.period_s}s used up", wait)
        return None

    def check_rate(self, key: ApiKey) -> Refusal | None:
        if not key.rate_limited:
            return None
        bucket = self.buckets.get(key.id)
        if bucket is None:
            bucket = self.buckets[key.id] = TokenBucket(key.rate_per_s, key.burst)
        elif (bucket.rate, bucket.capacity) != (key.rate_per_s, key.burst):
            bucket.retune(key.rate_per_s, key.burst)
        wait = bucket.take()
        if wait:
            return Refusal("rate", f"rate limit of {key.rate_per_s:g} calls/s (burst {key.burst}) exceeded", wait)
        return None

    def admit(self, key: ApiKey, method: str) -> None:
        """Count a call as it starts, so concurrent calls cannot overrun the calls quota."""
        period = self.period(key)
        period.calls += 1
        period.methods.setdefault(method, MethodCounts()).calls += 1

    def charge(self, key: ApiKey, method: str, usage: common_pb2.Usage | None) -> None:
        """Add consumption as it happens (a stream's message), so that quotas see it at once."""
        period = self.period(key)
        add_usage(period.methods.setdefault(method, MethodCounts()).usage, usage)
        add_usage(period.usage, usage)

    def settle(
        self, key: ApiKey, method: str, ok: bool, usage: common_pb2.Usage | None = None, shed: bool = False
    ) -> None:
        """Add a finished call's outcome and the consumption not charged yet. A call a server shed
        (``shed``) did no work: it is taken back from the calls counted, not counted as an error."""
        period = self.period(key)
        counts = period.methods.setdefault(method, MethodCounts())
        if shed:
            period.calls -= 1
            counts.calls -= 1
        else:
            counts.errors += 0 if ok else 1
        self.charge(key, method, usage)
