"""The account's rate budget: Kalshi's read and write token buckets (API.md §7), mirrored in Redis
so every process of the account draws on one budget (DESIGN.md §5).

One Lua script refills and takes atomically on Redis' own clock, so processes on different hosts
agree. Cancels (and other risk-reducing writes) are served first: an ordinary write may not take
the last ``reserve`` tokens of the write bucket, a priority write may. The mirror runs a little
below the exchange's numbers (``safety``) so that jitter between our grant and the exchange's
arrival never produces a 429. When a 429 comes anyway, ``penalize`` empties the shared bucket so
every process pauses together instead of storming. ``LocalRateBudget`` is the same algorithm in
one process, for tests and as the fallback while Redis is unreachable.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from common.clock import Clock
from common.log import get_logger

READ = "read"
WRITE = "write"

# tokens per request (API.md §7.1); anything not listed costs DEFAULT_COST
DEFAULT_COST = 10
COST_CREATE = 10
COST_BATCH_CREATE_ITEM = 10
COST_AMEND = 10
COST_DECREASE = 10
COST_CANCEL = 2
COST_BATCH_CANCEL_ITEM = 2
COST_CANCEL_ALL = 2
COST_GET_ORDER = 2
COST_ORDER_GROUP = DEFAULT_COST


@dataclass(frozen=True, slots=True)
class Bucket:
    refill_per_s: int
    capacity: int


# tier: (read, write) per API.md §7.1: capacity is 2 s of refill for Basic/Advanced read and
# every write bucket above Basic, 1 s for Basic write and the higher tiers' read
TIERS: dict[str, tuple[Bucket, Bucket]] = {
    "basic": (Bucket(200, 400), Bucket(100, 100)),
    "advanced": (Bucket(300, 600), Bucket(300, 600)),
    "expert": (Bucket(600, 600), Bucket(600, 1200)),
    "premier": (Bucket(1000, 1000), Bucket(1000, 2000)),
    "paragon": (Bucket(2000, 2000), Bucket(2000, 4000)),
    "prime": (Bucket(4000, 4000), Bucket(4000, 8000)),
    "prestige": (Bucket(10000, 10000), Bucket(8000, 16000)),
}

# KEYS[1]: the bucket hash {tokens, ts_ms}
# ARGV: capacity, refill_per_s, cost, reserve (tokens this request must leave), ttl_ms, mode
# mode "take": returns {cost, 0} when granted, {0, wait_ms} otherwise, {-1, 0} if it can never fit
# mode "lease": like take, but grants up to ARGV[7] tokens (at least cost) when there are more
# mode "drain": empties the bucket (after a 429), returns {1, 0}
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local reserve = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = cap
  ts = now
end
if now > ts then
  tokens = math.min(cap, tokens + (now - ts) * rate / 1000)
  ts = now
end
if ARGV[6] == 'drain' then
  redis.call('HSET', KEYS[1], 'tokens', 0, 'ts', ts)
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {1, 0}
end
if cost + reserve > cap then
  return {-1, 0}
end
local granted = 0
local wait = 0
if tokens >= cost + reserve then
  local take = cost
  if ARGV[6] == 'lease' then
    take = math.max(cost, math.min(tonumber(ARGV[7]), math.floor(tokens - reserve)))
  end
  tokens = tokens - take
  granted = take
else
  wait = math.ceil((cost + reserve - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', ts)
redis.call('PEXPIRE', KEYS[1], ttl)
return {granted, wait}
"""


# Leasing: a non-priority request takes a few requests' worth of tokens from the shared bucket
# in one round trip and spends them locally for up to LEASE_MS. Tokens are taken before the
# requests go out, never after, so the exchange's bucket always holds at least what ours says;
# a lease left unspent just expires (its size adapts to the rate so few are wasted). One refill
# is in flight per bucket at a time: a burst of requests (a pass over many markets) queues behind
# it and shares one round trip instead of each asking Redis and each leasing.
LEASE_MS = 1_000
LEASE_MAX_FRACTION = 0.05
REDIS_RETRY_MS = 1_000  # Redis failed: the local fallback alone this long before asking again
# A Redis that does not answer (frozen, a network partition) fails the call after this long: the
# exchange must stay reachable without Redis (the executor pulls its quotes when Redis is away).
REDIS_CALL_TIMEOUT_S = 0.5
LEASE_QUEUED_FRACTION = 0.25  # a lease for requests already waiting for it is never wasted


@dataclass(slots=True)
class _Lease:
    tokens: int
    expires_ms: float
    size: int


class RateBudget(Protocol):
    async def acquire(self, bucket: str, cost: int, *, priority: bool = False) -> float:
        """Wait until ``cost`` tokens are taken from ``bucket``; returns the seconds waited."""
        ...

    async def penalize(self, bucket: str) -> None:
        """A 429 came: empty the bucket so every user of it pauses."""
        ...

    def max_batch(self, bucket: str, unit_cost: int, *, priority: bool = False) -> int:
        """The largest batch of ``unit_cost`` items one request may carry."""
        ...


class BudgetError(ValueError):
    """A request that can never fit its bucket (bigger than the capacity)."""


class _Limits:
    def __init__(self, tier: str, safety: float, reserve_fraction: float) -> None:
        if tier not in TIERS:
            raise ValueError(f"rate tier must be one of {', '.join(TIERS)}, was {tier!r}")
        if not 0 < safety <= 1:
            raise ValueError(f"safety must be in (0, 1], was {safety}")
        read, write = TIERS[tier]
        self.tier = tier
        self.buckets = {
            READ: Bucket(
                max(1, int(read.refill_per_s * safety)), max(1, int(read.capacity * safety))
            ),
            WRITE: Bucket(
                max(1, int(write.refill_per_s * safety)), max(1, int(write.capacity * safety))
            ),
        }
        self.reserve = {READ: 0, WRITE: int(self.buckets[WRITE].capacity * reserve_fraction)}

    def bucket(self, name: str) -> Bucket:
        try:
            return self.buckets[name]
        except KeyError:
            raise ValueError(f"bucket must be read or write, was {name!r}") from None

    def reserve_for(self, name: str, priority: bool) -> int:
        return 0 if priority else self.reserve[name]

    def max_batch(self, name: str, unit_cost: int, priority: bool) -> int:
        usable = self.bucket(name).capacity - self.reserve_for(name, priority)
        return max(1, usable // unit_cost)

    def check_fits(self, name: str, cost: int, priority: bool) -> None:
        if cost + self.reserve_for(name, priority) > self.bucket(name).capacity:
            raise BudgetError(
                f"a request of {cost} tokens never fits the {self.tier} {name} bucket "
                f"(capacity {self.bucket(name).capacity}, reserve {self.reserve_for(name, priority)})"
            )


def _jittered(wait_s: float) -> float:
    return wait_s * (1.0 + random.random() * 0.25) + 0.001


class LocalRateBudget:
    """The bucket algorithm in this process only (tests, fallback)."""

    def __init__(
        self,
        tier: str = "basic",
        clock: Clock | None = None,
        *,
        safety: float = 0.9,
        reserve_fraction: float = 0.2,
    ) -> None:
        self.limits = _Limits(tier, safety, reserve_fraction)
        self.clock = clock or Clock()
        self._state: dict[str, tuple[float, float]] = {}

    def try_take(self, bucket: str, cost: int, *, priority: bool = False) -> float:
        """Take now and return 0, or return the seconds to wait (nothing taken)."""
        limits = self.limits.bucket(bucket)
        self.limits.check_fits(bucket, cost, priority)
        now = self.clock.monotonic_ms()
        tokens, ts = self._state.get(bucket, (float(limits.capacity), now))
        tokens = min(limits.capacity, tokens + max(0.0, now - ts) * limits.refill_per_s / 1000)
        need = cost + self.limits.reserve_for(bucket, priority)
        if tokens >= need:
            self._state[bucket] = (tokens - cost, now)
            return 0.0
        self._state[bucket] = (tokens, now)
        return math.ceil((need - tokens) * 1000 / limits.refill_per_s) / 1000

    async def acquire(self, bucket: str, cost: int, *, priority: bool = False) -> float:
        waited = 0.0
        while True:
            wait_s = self.try_take(bucket, cost, priority=priority)
            if wait_s == 0.0:
                return waited
            wait_s = _jittered(wait_s)
            waited += wait_s
            await self.clock.sleep(wait_s)

    async def penalize(self, bucket: str) -> None:
        self._state[bucket] = (0.0, self.clock.monotonic_ms())

    def max_batch(self, bucket: str, unit_cost: int, *, priority: bool = False) -> int:
        return self.limits.max_batch(bucket, unit_cost, priority)


class RedisRateBudget:
    """The shared budget: one Redis key per bucket, ``bucket_keys`` = {READ: key, WRITE: key}
    (one pair per account: ``common.connect`` names them after the API key id)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        bucket_keys: Mapping[str, str],
        tier: str = "basic",
        *,
        clock: Clock | None = None,
        safety: float = 0.9,
        reserve_fraction: float = 0.2,
        fallback: LocalRateBudget | None = None,
        lease_ms: int = LEASE_MS,
    ) -> None:
        missing = {READ, WRITE} - set(bucket_keys)
        if missing:
            raise ValueError(f"bucket_keys needs a Redis key for {sorted(missing)}")
        self.redis = redis
        self.bucket_keys = dict(bucket_keys)
        self.limits = _Limits(tier, safety, reserve_fraction)
        self.clock = clock or Clock()
        self.fallback = fallback or LocalRateBudget(
            tier, self.clock, safety=safety * 0.5, reserve_fraction=reserve_fraction
        )
        self._script: Any = redis.register_script(_LUA)
        self._log = get_logger("kalshi.ratelimit")
        self._redis_down = False
        self._redis_retry_ms = 0.0  # while Redis is down: when to ask it again
        self.lease_ms = lease_ms  # 0: every request asks Redis
        self._leases: dict[str, _Lease] = {}
        self._refilling: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}  # requests in try_take waiting on the refill
        self._empty_until: dict[str, float] = {}  # the last refill's answer: wait until then

    def key(self, bucket: str) -> str:
        return self.bucket_keys[bucket]

    async def _call(
        self, bucket: str, cost: int, reserve: int, mode: str, want: int = 0
    ) -> tuple[int, int]:
        limits = self.limits.bucket(bucket)
        ttl_ms = max(10_000, 2 * 1000 * limits.capacity // limits.refill_per_s)
        answer = await self._script(
            keys=[self.key(bucket)],
            args=[limits.capacity, limits.refill_per_s, cost, reserve, ttl_ms, mode, want],
        )
        return int(answer[0]), int(answer[1])

    async def try_take(self, bucket: str, cost: int, *, priority: bool = False) -> float:
        self.limits.check_fits(bucket, cost, priority)
        if self.lease_ms > 0 and self._spend_lease(bucket, cost):
            # tokens this process already took from the shared bucket: no round trip, for a
            # cancel as for a place (a cancel's Redis round trip came before its request)
            return 0.0
        if priority or self.lease_ms <= 0:
            # never queued behind a refill: straight to the bucket, its reserve included
            return await self._take(bucket, cost, priority, "take", cost)
        # One refill in flight per bucket: requests arriving meanwhile queue behind it and are
        # served from the lease it brings (sized for them too), not by a round trip each.
        self._waiting[bucket] = self._waiting.get(bucket, 0) + 1
        try:
            async with self._refill_lock(bucket):
                if self._spend_lease(bucket, cost):
                    return 0.0
                now_ms = self.clock.monotonic_ms()
                empty_ms = self._empty_until.get(bucket, 0.0) - now_ms
                if empty_ms > 0:  # the last refill found the bucket empty: no need to ask again
                    return empty_ms / 1000
                want = self._next_lease_size(bucket, cost, now_ms, self._waiting[bucket])
                wait_s = await self._take(bucket, cost, False, "lease", want)
                if wait_s > 0:
                    self._empty_until[bucket] = self.clock.monotonic_ms() + wait_s * 1000
                return wait_s
        finally:
            self._waiting[bucket] -= 1

    def _spend_lease(self, bucket: str, cost: int) -> bool:
        lease = self._leases.get(bucket)
        if lease is None or lease.tokens < cost or self.clock.monotonic_ms() >= lease.expires_ms:
            return False
        lease.tokens -= cost  # taken from the shared bucket already: no round trip
        return True

    def _refill_lock(self, bucket: str) -> asyncio.Lock:
        lock = self._refilling.get(bucket)
        if lock is None:
            lock = self._refilling[bucket] = asyncio.Lock()
        return lock

    async def _take(self, bucket: str, cost: int, priority: bool, mode: str, want: int) -> float:
        """One round trip: take ``cost`` (in "lease" mode up to ``want``) tokens; 0 when taken,
        else the seconds to wait."""
        reserve = self.limits.reserve_for(bucket, priority)
        if self._redis_down and self.clock.monotonic_ms() < self._redis_retry_ms:
            # Redis failed a moment ago: requests queued behind a refill must not each wait
            # for their own timeout against a hung server.
            return self.fallback.try_take(bucket, cost, priority=priority)
        try:
            granted, wait_ms = await asyncio.wait_for(
                self._call(bucket, cost, reserve, mode, want), REDIS_CALL_TIMEOUT_S
            )
        except (RedisError, OSError) as exc:  # OSError includes TimeoutError
            if not self._redis_down:
                self._log.warning(
                    "rate_budget_fallback", reason=f"redis unavailable: {type(exc).__name__}"
                )
                self._redis_down = True
            self._redis_retry_ms = self.clock.monotonic_ms() + REDIS_RETRY_MS
            return self.fallback.try_take(bucket, cost, priority=priority)
        if self._redis_down:
            self._log.info("rate_budget_shared_again")
            self._redis_down = False
        self._redis_retry_ms = 0.0  # while Redis is down: when to ask it again
        if granted < 0:
            raise BudgetError(f"a request of {cost} tokens never fits the {bucket} bucket")
        if mode == "lease" and granted:
            now_ms = self.clock.monotonic_ms()
            left = self._leases.get(bucket)  # too few for this request, but ours: keep them
            carried = left.tokens if left is not None and now_ms < left.expires_ms else 0
            self._leases[bucket] = _Lease(granted - cost + carried, now_ms + self.lease_ms, want)
        return 0.0 if granted else wait_ms / 1000

    def _next_lease_size(self, bucket: str, cost: int, now_ms: float, waiting: int) -> int:
        """Tokens to lease: double the last lease when it ran out before expiring (the
        process is busy), halve it when tokens were left to expire (each one wasted), between
        one request and LEASE_MAX_FRACTION of the bucket; and at least enough for every request
        already queued for it (up to LEASE_QUEUED_FRACTION), which spend it at once."""
        capacity = self.limits.bucket(bucket).capacity
        ceiling = max(cost, int(capacity * LEASE_MAX_FRACTION))
        lease = self._leases.get(bucket)
        size = cost
        if lease is not None:
            size = lease.size * 2 if now_ms < lease.expires_ms else lease.size // 2
        queued = min(cost * waiting, int(capacity * LEASE_QUEUED_FRACTION))
        return max(cost, min(ceiling, size), queued)

    async def acquire(self, bucket: str, cost: int, *, priority: bool = False) -> float:
        waited = 0.0
        while True:
            wait_s = await self.try_take(bucket, cost, priority=priority)
            if wait_s == 0.0:
                return waited
            wait_s = _jittered(wait_s)
            waited += wait_s
            await asyncio.sleep(wait_s)

    async def penalize(self, bucket: str) -> None:
        self._leases.pop(bucket, None)  # everyone pauses, this process too
        try:
            await self._call(bucket, 0, 0, "drain")
        except (RedisError, OSError):
            await self.fallback.penalize(bucket)

    def max_batch(self, bucket: str, unit_cost: int, *, priority: bool = False) -> int:
        return self.limits.max_batch(bucket, unit_cost, priority)


class NoBudget:
    """No client-side limiting (benchmarks and tests of the 429 path)."""

    async def acquire(self, bucket: str, cost: int, *, priority: bool = False) -> float:
        return 0.0

    async def penalize(self, bucket: str) -> None:
        return None

    def max_batch(self, bucket: str, unit_cost: int, *, priority: bool = False) -> int:
        return max(1, TIERS["basic"][1].capacity // unit_cost)
