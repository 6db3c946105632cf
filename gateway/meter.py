"""Where rate limits, quotas and usage are kept: this gateway's memory, or Redis shared by replicas.

One interface, two implementations, chosen by LUMEN_GATEWAY_REDIS_URL:
- `MemoryMeter` (default): gateway.limits.Ledger in this process; with N gateway
  replicas a key gets N times its quota.
- `RedisMeter`: one truth for every replica. Admission is one Lua script, so
  "check the quota, take a rate token, count the call" is atomic across
  replicas: a key with a quota of N calls gets exactly N accepted however many
  gateways it calls. Usage counters live in one hash per key and period, which
  expires a period after the period ends; the token bucket uses Redis' clock.

When Redis is away: a call of a key with limits (rate or quota) fails at once
with UNAVAILABLE (short socket timeouts, no client retries); a key without
limits is admitted uncounted (nothing to enforce), and usage a finished call
could not record is logged and dropped (lumen_gateway_usage_lost_total).
Service returns by itself when Redis does: the client reconnects on the next call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol, cast

from prometheus_client import Counter

from gateway.key_store import ApiKey
from gateway.limits import Ledger, MethodCounts, PeriodUsage, Refusal, period_start
from lumen.common.v1 import common_pb2
from shared.errors import Unavailable

log = logging.getLogger(__name__)

USAGE_LOST = Counter(
    "lumen_gateway_usage_lost_total",
    "Calls whose usage could not be recorded (the shared store was unreachable), by what was lost.",
    ["what"],
)


class Meter(Protocol):
    async def admit(self, key: ApiKey, method: str, counted: bool) -> Refusal | None:
        """Check the quota (when ``counted``) and the rate, then count the call; or the refusal."""
        ...

    async def settle(
        self, key: ApiKey, method: str, ok: bool, usage: common_pb2.Usage | None, shed: bool = False
    ) -> None:
        """Add a finished call's outcome and consumption (never raises for the store's sake); a call
        a server shed (``shed``: it did no work) is taken back from the calls counted."""
        ...

    async def charge(self, key: ApiKey, method: str, usage: common_pb2.Usage) -> Refusal | None:
        """Add a streamed message's usage as it passes; the refusal when the key's tokens or
        images quota was already used up before it (the stream must end there)."""
        ...

    async def period(self, key: ApiKey) -> PeriodUsage: ...

    async def close(self) -> None: ...


class MemoryMeter:
    """This process's Ledger; no await between check and count, so admission is atomic here."""

    def __init__(self, ledger: Ledger | None = None) -> None:
        self.ledger = ledger or Ledger()

    async def admit(self, key: ApiKey, method: str, counted: bool) -> Refusal | None:
        refusal = (self.ledger.check_quota(key) if counted else None) or self.ledger.check_rate(key)
        if refusal is None and counted:
            self.ledger.admit(key, method)
        return refusal

    async def settle(
        self, key: ApiKey, method: str, ok: bool, usage: common_pb2.Usage | None, shed: bool = False
    ) -> None:
        self.ledger.settle(key, method, ok, usage, shed)

    async def charge(self, key: ApiKey, method: str, usage: common_pb2.Usage) -> Refusal | None:
        refusal = self.ledger.check_quota(key, ("tokens", "images"))
        self.ledger.charge(key, method, usage)
        return refusal

    async def period(self, key: ApiKey) -> PeriodUsage:
        return self.ledger.period(key)

    async def close(self) -> None:
        return None


# KEYS: usage hash, bucket hash. ARGV: counted, calls/tokens/images limits, rate, burst, method, usage TTL.
_ADMIT = """
local counted = ARGV[1] == '1'
if counted then
  local h = redis.call('HMGET', KEYS[1], 'calls', 'in', 'out', 'img')
  local calls = tonumber(h[1]) or 0
  local tokens = (tonumber(h[2]) or 0) + (tonumber(h[3]) or 0)
  local images = tonumber(h[4]) or 0
  local cl, tl, il = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  if cl > 0 and calls >= cl then return {'calls', '0'} end
  if tl > 0 and tokens >= tl then return {'tokens', '0'} end
  if il > 0 and images >= il then return {'images', '0'} end
end
local rate = tonumber(ARGV[5])
if rate > 0 then
  local burst = tonumber(ARGV[6])
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local b = redis.call('HMGET', KEYS[2], 'tokens', 'stamp')
  local tokens = tonumber(b[1]) or burst
  local stamp = tonumber(b[2]) or now
  tokens = math.min(burst, tokens + math.max(now - stamp, 0) * rate)
  local wait = 0
  if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
  redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'stamp', tostring(now))
  redis.call('EXPIRE', KEYS[2], math.ceil(burst / rate) + 60)
  if wait > 0 then return {'rate', tostring(wait)} end
end
if counted then
  redis.call('HINCRBY', KEYS[1], 'calls', 1)
  redis.call('HINCRBY', KEYS[1], 'm:' .. ARGV[7] .. ':calls', 1)
  redis.call('EXPIRE', KEYS[1], ARGV[8])
end
return {'', '0'}
"""

_FIELDS = {"in": "input_tokens", "out": "output_tokens", "img": "images"}


class RedisMeter:
    def __init__(self, url: str, timeout_s: float = 1.0, clock: Callable[[], float] = time.time) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.clock = clock
        # No client-side retries: a call needing Redis fails within timeout_s, the next one reconnects.
        self.redis = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self._admit = self.redis.register_script(_ADMIT)

    def _usage_key(self, key: ApiKey) -> tuple[str, float]:
        start = period_start(self.clock(), key.period_s)
        return f"lumen:usage:{key.id}:{key.period_s}:{int(start)}", start

    async def admit(self, key: ApiKey, method: str, counted: bool) -> Refusal | None:
        usage_key, start = self._usage_key(key)
        limited = key.rate_limited or key.calls_per_period or key.tokens_per_period or key.images_per_period
        try:
            reason, wait = await self._admit(
                keys=[usage_key, f"lumen:bucket:{key.id}"],
                args=[
                    "1" if counted else "0",
                    key.calls_per_period,
                    key.tokens_per_period,
                    key.images_per_period,
                    key.rate_per_s if key.rate_limited else 0,
                    key.burst,
                    method,
                    2 * key.period_s + 60,
                ],
            )
        except _unreachable() as exc:
            if not limited:
                USAGE_LOST.labels("call").inc()
                return None
            log.warning("Redis unreachable: %s", exc)
            raise Unavailable("the rate and quota store is unreachable; retry later") from None
        if not reason:
            return None
        if reason == "rate":
            message = f"rate limit of {key.rate_per_s:g} calls/s (burst {key.burst}) exceeded"
            return Refusal("rate", message, float(wait))
        limit = {"calls": key.calls_per_period, "tokens": key.tokens_per_period, "images": key.images_per_period}
        wait_s = max(start + key.period_s - self.clock(), 0.0)
        return Refusal(reason, f"quota of {limit[reason]} {reason} per {key.period_s}s used up", wait_s)

    async def settle(
        self, key: ApiKey, method: str, ok: bool, usage: common_pb2.Usage | None, shed: bool = False
    ) -> None:
        usage_key, _ = self._usage_key(key)
        amounts = {"in": 0, "out": 0, "img": 0}
        if usage is not None:
            amounts = {"in": usage.input_tokens, "out": usage.output_tokens, "img": usage.images}
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                if shed:  # admitted and counted, then shed by a server: no work done
                    pipe.hincrby(usage_key, "calls", -1)
                    pipe.hincrby(usage_key, f"m:{method}:calls", -1)
                elif not ok:
                    pipe.hincrby(usage_key, f"m:{method}:errors", 1)
                for field, amount in amounts.items():
                    if amount:
                        pipe.hincrby(usage_key, field, amount)
                        pipe.hincrby(usage_key, f"m:{method}:{field}", amount)
                pipe.expire(usage_key, 2 * key.period_s + 60)
                await pipe.execute()
        except _unreachable() as exc:
            USAGE_LOST.labels("usage").inc()
            log.warning("usage of key %s not recorded (%s): %s", key.id, method, exc)

    async def charge(self, key: ApiKey, method: str, usage: common_pb2.Usage) -> Refusal | None:
        usage_key, start = self._usage_key(key)
        amounts = {"in": usage.input_tokens, "out": usage.output_tokens, "img": usage.images}
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for field, amount in amounts.items():
                    pipe.hincrby(usage_key, field, amount)
                    if amount:
                        pipe.hincrby(usage_key, f"m:{method}:{field}", amount)
                pipe.expire(usage_key, 2 * key.period_s + 60)
                results = await pipe.execute()
        except _unreachable() as exc:
            USAGE_LOST.labels("usage").inc()
            log.warning("usage of key %s not recorded (%s): %s", key.id, method, exc)
            return None
        # Each field's total after this message (its HINCRBY's answer), less this message:
        # what was used before it.
        totals, at = {}, 0
        for field, amount in amounts.items():
            totals[field] = int(results[at]) - amount
            at += 2 if amount else 1
        wait = max(start + key.period_s - self.clock(), 0.0)
        tokens = totals["in"] + totals["out"]
        if key.tokens_per_period and tokens >= key.tokens_per_period:
            return Refusal("tokens", f"quota of {key.tokens_per_period} tokens per {key.period_s}s used up", wait)
        if key.images_per_period and totals["img"] >= key.images_per_period:
            return Refusal("images", f"quota of {key.images_per_period} images per {key.period_s}s used up", wait)
        return None

    async def period(self, key: ApiKey) -> PeriodUsage:
        usage_key, start = self._usage_key(key)
        try:
            # decode_responses=True: keys and values are str (redis-py's types allow bytes too).
            raw = cast("dict[str, str]", await self.redis.hgetall(usage_key))
        except _unreachable() as exc:
            log.warning("Redis unreachable: %s", exc)
            raise Unavailable("the usage store is unreachable; retry later") from None
        period = PeriodUsage(start, key.period_s, calls=int(raw.get("calls", 0)))
        for field, name in _FIELDS.items():
            setattr(period.usage, name, int(raw.get(field, 0)))
        for entry, value in raw.items():
            if not entry.startswith("m:"):
                continue
            method, what = entry[2:].rsplit(":", 1)
            counts = period.methods.setdefault(method, MethodCounts())
            if what == "calls":
                counts.calls = int(value)
            elif what == "errors":
                counts.errors = int(value)
            elif what in _FIELDS:
                setattr(counts.usage, _FIELDS[what], int(value))
        return period

    async def close(self) -> None:
        await self.redis.aclose()


def _unreachable() -> tuple[type[BaseException], ...]:
    from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

    return (ConnectionError, TimeoutError, BusyLoadingError, OSError)


def open_meter(redis_url: str) -> Meter:
    """Redis when ``redis_url`` is set (redis:// or rediss://), else this process's memory."""
    if redis_url:
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                f"redis URL must start with redis://, rediss:// or unix://, got {redis_url.split(':')[0]}:"
            )
        return RedisMeter(redis_url)
    return MemoryMeter()
