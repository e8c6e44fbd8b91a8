"""Redis forgetting the ledger's newest writes while keeping the rest (a restart from an AOF
written every second, a failover to a replica that lagged): the executor's memory says it wrote
what Redis no longer holds, so nothing writes it again, and the room it held is given away.

The short chaos run saw an event $0.07-0.14 past its limit 15-20 s after a Redis kill -9 and
restart from its AOF (the executor had rebuilt the ledger 1.5 s before the kill).
"""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from common.keys import Keys
from common.ledger import NO_CAP, Ledger, field, read_event_worst, read_total
from common.settings import Settings
from tests.common.test_ledger_events import execute_on, ledger_of
from tests.services.test_executor import FakeExchange, publish, started, steps
from tests.services.test_executor_ledger import event_worst_at_exchange, seed_event

LIMIT = 6_000_000  # $6: two markets quoted both sides ($2.75 each), not three


async def snapshot(r: aioredis.Redis, names: list[str]) -> dict[str, bytes | None]:
    return {name: await r.dump(name) for name in names}


async def roll_back(r: aioredis.Redis, saved: dict[str, bytes | None]) -> None:
    """Put keys back as they were: the writes since were lost."""
    for name, value in saved.items():
        await r.delete(name)
        if value is not None:
            await r.restore(name, 0, value)


@pytest.mark.parametrize("exclusive", [True, False])
async def test_ledger_writes_lost_by_redis_are_never_given_away(
    settings: Settings, redis_url: str, exclusive: bool
) -> None:
    k = Keys()
    raw = aioredis.Redis.from_url(redis_url)  # DUMP/RESTORE want bytes
    aredis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    tickers = [f"KXEV-{i}" for i in range(4)]
    await seed_event(aredis, k, tickers, "KXEV", exclusive)
    await aredis.hset(k.cfg_events, mapping={"KXEV": "6", "version": "1"})
    exchange = FakeExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, tickers[0], 4100, 4500)
        await steps(service, ctx, 3)
        saved = await snapshot(raw, [k.ledger, k.ledger_event("KXEV")])
        await publish(aredis, k, tickers[1], 4100, 4500)
        await steps(service, ctx, 3)
        assert {o.ticker for o in exchange.orders.values()} == set(tickers[:2])
        held = event_worst_at_exchange(exchange, tickers, exclusive)
        # what rests and the room ahead of it (services/executor/ahead.py)
        assert held <= await read_event_worst(aredis, k, "KXEV") <= LIMIT
        await roll_back(raw, saved)  # Redis restarted without the last second of writes
        for t in tickers[2:]:
            await publish(aredis, k, t, 4100, 4500)
        await steps(service, ctx, 4)
        assert event_worst_at_exchange(exchange, tickers, exclusive) <= LIMIT
        # the ledger holds at least what rests again, and quoting went on
        worst = event_worst_at_exchange(exchange, tickers, exclusive)
        assert worst <= await read_event_worst(aredis, k, "KXEV") <= LIMIT
    finally:
        await service.stop(ctx)
        await raw.aclose()
        await aredis.aclose()


async def test_a_writer_refused_for_lost_writes_until_it_rebuilds(redis_url: str) -> None:
    """The ledger's mark tells a writer that Redis lost steps it had acknowledged: an idle
    writer reading it, and any step it sends, learn so; a rebuild from memory ends it."""
    k = Keys()
    raw = aioredis.Redis.from_url(redis_url)
    r = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        ledger = await ledger_of(r, k)
        execute = execute_on(r)
        bid_a, bid_b = field("bid", "A"), field("bid", "B")
        assert (await ledger.reserve(execute, "A", {bid_a: 3_000_000}, 10_000_000)).ok
        saved = await snapshot(raw, [k.ledger])
        assert (await ledger.reserve(execute, "B", {bid_b: 4_000_000}, 10_000_000)).ok
        assert ledger.check_mark(await r.hget(k.ledger, ledger.mark), ledger.acked)
        await roll_back(raw, saved)
        assert await read_total(r, k) == 3_000_000  # B's $4 are gone from Redis, not from memory
        assert (
            not ledger.check_mark(await r.hget(k.ledger, ledger.mark), ledger.acked) and ledger.lost
        )
        ledger.lost = ""  # a step learns it as well, without the read
        answer = await ledger.reserve(execute, "A", {bid_a: 6_000_000}, 10_000_000)
        assert answer.outcome == "lost" and ledger.lost
        release = await ledger.reserve(execute, "A", {bid_a: 0}, NO_CAP)
        assert release.outcome == "lost"  # nothing of ours is believed until the rebuild
        rebuilt = await ledger.rebuild(lambda _: True, {bid_a: 3_000_000, bid_b: 4_000_000})
        assert rebuilt.ok and not ledger.lost
        assert await read_total(r, k) == 7_000_000  # the mark is not money
        assert ledger.check_mark(await r.hget(k.ledger, ledger.mark), ledger.acked)
        more = {bid_a: 6_500_000}
        answer = await ledger.reserve(execute, "A", more, 10_000_000, before={bid_a: 3_000_000})
        assert answer.outcome == "denied"  # $3.50 more on the $7 held passes the $10 cap
    finally:
        await raw.aclose()
        await r.aclose()


async def test_a_new_writer_of_a_shard_is_not_refused_for_its_predecessors_steps(
    redis_url: str,
) -> None:
    """A successor (a newer lease token) starts with a rebuild: the predecessor's mark, higher
    in steps but of an older token, is not a loss."""
    k = Keys()
    r = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        old = await ledger_of(r, k)
        for money in range(1, 20):
            await old.reserve(execute_on(r), "A", {field("bid", "A"): money * 1000}, NO_CAP)
        await r.set(k.lease("executor"), "8:test")
        new = Ledger(r, k, k.lease("executor"), lambda: 8)
        assert new.check_mark(
            await r.hget(k.ledger, new.mark), new.acked
        )  # nothing acknowledged yet
        assert (await new.rebuild(lambda _: True, {field("bid", "A"): 5000})).ok
        answer = await new.reserve(execute_on(r), "A", {field("bid", "A"): 6000}, 10_000_000)
        assert answer.ok and answer.total == 6000
    finally:
        await r.aclose()


async def test_a_step_answered_while_the_mark_was_read_is_no_loss(redis_url: str) -> None:
    """The risk refresh reads the mark while passes' steps are answered: a step answered after
    the read was sent may have run after it. Compared with the newest step acknowledged by the
    time the read came back, the mark looked lost: a false alarm (an error in the demo's log, a
    rebuild, every step refused meanwhile)."""
    k = Keys()
    r = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        ledger = await ledger_of(r, k)
        execute = execute_on(r)
        assert (await ledger.reserve(execute, "A", {field("bid", "A"): 1000}, NO_CAP)).ok
        before_read = ledger.acked
        mark = await r.hget(k.ledger, ledger.mark)  # the read runs here...
        assert (await ledger.reserve(execute, "A", {field("bid", "A"): 2000}, NO_CAP)).ok
        assert ledger.acked > before_read  # ...and a step is answered before it returns
        assert ledger.check_mark(mark, before_read) and not ledger.lost
        assert not ledger.check_mark(mark, ledger.acked)  # what the refresh compared before
    finally:
        await r.aclose()
