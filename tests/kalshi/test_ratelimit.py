"""The shared token buckets: the Lua script on a real redis-server, priorities, fallback."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st

from common.clock import ManualClock
from common.kalshi.ratelimit import (
    READ,
    REDIS_CALL_TIMEOUT_S,
    WRITE,
    BudgetError,
    LocalRateBudget,
    RedisRateBudget,
)
from tests.support.frozen import frozen_redis

KEYS = {READ: "dora:ratelimit:kid:read", WRITE: "dora:ratelimit:kid:write"}


def budget(aredis: aioredis.Redis, tier: str = "basic", **kwargs: object) -> RedisRateBudget:
    return RedisRateBudget(aredis, KEYS, tier, **kwargs)  # type: ignore[arg-type]


async def test_bucket_starts_full_then_asks_to_wait(aredis: aioredis.Redis) -> None:
    rb = budget(aredis, safety=1.0, reserve_fraction=0.0)
    for _ in range(10):  # basic write: capacity 100 = ten creates
        assert await rb.try_take(WRITE, 10) == 0.0
    wait_s = await rb.try_take(WRITE, 10)
    assert 0.05 < wait_s <= 0.11  # 10 tokens at 100/s
    assert await aredis.exists("dora:ratelimit:kid:write")
    assert await aredis.ttl("dora:ratelimit:kid:write") > 0


async def test_cancels_may_use_the_reserve_creates_may_not(aredis: aioredis.Redis) -> None:
    # 100 capacity, 20 reserved, 100 tokens/s refilled on Redis's own clock: what a slow box
    # refills while the loops run is allowed for, from the wall time they took
    rb = budget(aredis, safety=1.0, reserve_fraction=0.2, clock=ManualClock(1_700_000_000_000))
    start = time.monotonic()
    granted = 0
    while await rb.try_take(WRITE, 10) == 0.0:
        granted += 1
    cancels = 0
    while await rb.try_take(WRITE, 2, priority=True) == 0.0:
        cancels += 1
    refilled = int((time.monotonic() - start) * 100) + 1
    assert granted >= 8 and cancels >= 10  # creates left the reserve; cancels took it
    assert granted * 10 + cancels * 2 <= 100 + refilled
    assert granted <= 8 + refilled // 10


async def test_request_that_never_fits_is_refused(aredis: aioredis.Redis) -> None:
    rb = budget(aredis)
    with pytest.raises(BudgetError):
        await rb.try_take(WRITE, 10_000)
    assert rb.max_batch(WRITE, 10) == 7  # (90 - 18) // 10
    assert rb.max_batch(WRITE, 2, priority=True) == 45


async def test_penalize_empties_the_shared_bucket(aredis: aioredis.Redis) -> None:
    rb = budget(aredis)
    other = budget(aredis)
    await rb.penalize(READ)
    assert await other.try_take(READ, 10) > 0


@pytest.mark.parametrize(
    ("tier", "capacity", "rate", "at_least"),
    [("basic", 100, 100, 10), ("premier", 2000, 1000, 150)],  # premier: leases of many requests
)
async def test_many_clients_never_exceed_the_rate(
    aredis: aioredis.Redis, tier: str, capacity: int, rate: int, at_least: int
) -> None:
    """Four budgets on one bucket, hammering for 0.6 s: grants <= capacity + rate x time."""
    clients = [budget(aredis, tier, safety=1.0, reserve_fraction=0.0) for _ in range(4)]
    granted = 0
    start = time.monotonic()

    async def hammer(rb: RedisRateBudget) -> None:
        nonlocal granted
        while time.monotonic() - start < 0.6:
            await rb.acquire(WRITE, 10)
            granted += 1

    await asyncio.gather(*(hammer(c) for c in clients))
    elapsed = time.monotonic() - start
    assert granted <= (capacity + rate * elapsed) / 10 + 1
    assert granted >= at_least  # the initial burst at least


async def test_falls_back_to_local_when_redis_is_down() -> None:
    dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    rb = RedisRateBudget(dead, KEYS, "basic")
    assert await rb.try_take(READ, 10) == 0.0
    await dead.aclose()


async def test_a_redis_that_never_answers_falls_back_after_a_short_timeout() -> None:
    """A frozen redis-server (SIGSTOP) accepts connections and never answers: the request goes
    to the local budget after REDIS_CALL_TIMEOUT_S instead of hanging, so the exchange stays
    reachable (the executor cancels its quotes while Redis is away)."""
    async with frozen_redis() as port:
        frozen = aioredis.Redis(host="127.0.0.1", port=port)
        rb = RedisRateBudget(frozen, KEYS, "basic")
        started = time.monotonic()
        assert await rb.try_take(WRITE, 2, priority=True) == 0.0
        assert time.monotonic() - started < REDIS_CALL_TIMEOUT_S + 0.5
        await frozen.aclose()


async def test_local_budget_refills_on_the_clock() -> None:
    clock = ManualClock()
    rb = LocalRateBudget("basic", clock, safety=1.0, reserve_fraction=0.0)
    for _ in range(40):
        assert rb.try_take(READ, 10) == 0.0
    assert rb.try_take(READ, 10) == pytest.approx(0.05)
    clock.advance(50)
    assert rb.try_take(READ, 10) == 0.0
    waited = await rb.acquire(READ, 10)
    assert waited > 0


@given(st.lists(st.tuples(st.integers(0, 200), st.integers(1, 40), st.booleans()), max_size=60))
def test_local_budget_never_grants_more_than_refill_allows(
    steps: list[tuple[int, int, bool]],
) -> None:
    clock = ManualClock()
    rb = LocalRateBudget("basic", clock, safety=1.0, reserve_fraction=0.2)
    spent = 0
    elapsed = 0
    for advance_ms, cost, priority in steps:
        clock.advance(advance_ms)
        elapsed += advance_ms
        if rb.try_take(WRITE, cost, priority=priority) == 0.0:
            spent += cost
    assert spent <= 100 + 100 * elapsed / 1000


async def bucket_tokens(aredis: aioredis.Redis) -> float:
    return float(await aredis.hget("dora:ratelimit:kid:write", "tokens") or 0)


async def test_a_busy_process_leases_tokens_and_spends_them_without_round_trips(
    aredis: aioredis.Redis,
) -> None:
    clock = ManualClock(1_000_000)
    rb = budget(aredis, "premier", safety=1.0, reserve_fraction=0.0, clock=clock)
    assert await rb.try_take(WRITE, 10) == 0.0  # first: exactly one request's worth
    first = await bucket_tokens(aredis)
    assert 1989 <= first <= 1990
    assert await rb.try_take(WRITE, 10) == 0.0  # lease ran out at once: twice as much
    leased = await bucket_tokens(aredis)
    # 20 taken; Redis refills on its own clock meanwhile, so the bucket fell by at most that
    assert rb._leases[WRITE].size == 20 and first - leased <= 20
    assert await rb.try_take(WRITE, 10) == 0.0  # spent from the lease: Redis unchanged
    assert await bucket_tokens(aredis) == leased
    sizes = []
    for _ in range(40):
        await rb.try_take(WRITE, 10)
        sizes.append(rb._leases[WRITE].size)
    assert max(sizes) == 100  # capped at 5 % of the 2,000-token bucket
    clock.advance(rb.lease_ms + 1)  # the lease expires with tokens left: the next is smaller
    left = rb._leases[WRITE].size
    await rb.try_take(WRITE, 10)
    assert rb._leases[WRITE].size == left // 2


async def test_priority_requests_spend_the_lease_never_wait_for_one_and_a_429_drops_it(
    aredis: aioredis.Redis,
) -> None:
    rb = budget(aredis, "premier", safety=1.0, reserve_fraction=0.2)
    for _ in range(4):  # leases of 10, 20 (one spent from it), then 40
        await rb.try_take(WRITE, 10)
    assert rb._leases[WRITE].tokens == 30
    calls = count_calls(rb)
    # a cancel spends tokens already taken from the shared bucket: no round trip before it
    assert await rb.try_take(WRITE, 2, priority=True) == 0.0
    assert calls == [] and rb._leases[WRITE].tokens == 28
    # without lease tokens it takes its cost from the bucket itself (no refill to wait for)
    rb._leases[WRITE].tokens = 1
    before = await bucket_tokens(aredis)
    assert await rb.try_take(WRITE, 2, priority=True) == 0.0
    assert calls == [("take", 2)]
    assert before - await bucket_tokens(aredis) < 3  # exactly its cost (refill aside)
    await rb.penalize(WRITE)
    assert WRITE not in rb._leases
    assert await rb.try_take(WRITE, 10) > 0  # the drained bucket, not a leftover lease


def count_calls(rb: RedisRateBudget) -> list[tuple[str, int]]:
    """The script calls ``rb`` makes from now on: (mode, tokens granted)."""
    calls: list[tuple[str, int]] = []
    real = rb._call

    async def counted(bucket: str, cost: int, reserve: int, mode: str, want: int = 0) -> Any:
        granted, wait_ms = await real(bucket, cost, reserve, mode, want)
        calls.append((mode, granted))
        return granted, wait_ms

    rb._call = counted  # type: ignore[method-assign]
    return calls


async def test_a_burst_of_requests_shares_one_refill(aredis: aioredis.Redis) -> None:
    """Forty writes at once (one pass over many markets): not forty round trips and forty
    leases, but one refill in flight at a time, sized for the requests queued behind it."""
    rb = budget(aredis, "premier", safety=1.0, reserve_fraction=0.0, clock=ManualClock(1_000_000))
    calls = count_calls(rb)
    waited = await asyncio.gather(*(rb.try_take(WRITE, 10) for _ in range(40)))
    assert waited == [0.0] * 40
    assert len(calls) <= 3
    assert sum(granted for _, granted in calls) == 400  # what the forty cost: none to waste


async def test_an_empty_bucket_is_asked_once_per_wait(aredis: aioredis.Redis) -> None:
    clock = ManualClock(1_000_000)
    rb = budget(aredis, "premier", safety=1.0, reserve_fraction=0.0, clock=clock)
    await rb.penalize(WRITE)
    calls = count_calls(rb)
    waits = await asyncio.gather(*(rb.try_take(WRITE, 10) for _ in range(20)))
    assert calls == [("lease", 0)]  # the others learn the wait from the first answer
    assert all(0 < w <= waits[0] for w in waits)
    clock.advance(waits[0] * 1000 + 1)
    await asyncio.sleep(waits[0] + 0.005)  # Redis' own clock refills the bucket
    assert await rb.try_take(WRITE, 10) == 0.0
    assert calls == [("lease", 0), ("lease", 10)]


async def test_a_hung_redis_costs_one_timeout_not_one_per_queued_request(
    aredis: aioredis.Redis,
) -> None:
    """Redis stops answering: the refill in flight times out, and the requests queued behind it
    use the local fallback at once instead of each waiting out a timeout of its own; Redis is
    asked again a second later."""
    clock = ManualClock(1_000_000)
    rb = budget(aredis, "premier", clock=clock)
    calls = 0

    async def hung(bucket: str, cost: int, reserve: int, mode: str, want: int = 0) -> Any:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)
        raise TimeoutError("no answer")

    rb._call = hung  # type: ignore[method-assign]
    started = time.monotonic()
    waits = await asyncio.gather(*(rb.try_take(WRITE, 10) for _ in range(10)))
    assert time.monotonic() - started < 0.6  # one timeout, not ten
    assert calls == 1 and waits == [0.0] * 10  # the fallback granted them
    clock.advance(1_001)
    await rb.try_take(WRITE, 10)
    assert calls == 2
