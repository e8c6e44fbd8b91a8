"""One market's ``dora:pos`` corrupted by hand (a key of the wrong type, a field that is not a
number): the executor starts and refreshes every other market; that market has its quotes
pulled (``bad_position``) and, its position unknown, so is the account's exposure: no market
adds risk (the limits contract: fail closed) until it reads again; the others' resting quotes
stay. A ``dora:risk`` of the
wrong type is an unreadable risk state: the quotes are pulled at once, not after it grows old.
Before, WRONGTYPE failed the start (retried for ever: nothing quoted) and the full refresh
stopped at that market (the positions after it not refreshed, the ledger not synced)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from common.domain import Position
from common.keys import Keys
from common.redis_codec import encode_position
from common.settings import Settings
from services.executor.safety import REFRESH_CHUNK
from tests.services.test_executor import FakeExchange, publish, seed, started, steps

K = Keys()
BAD, GOOD = "KX-A", "KX-B"


async def corrupt(r: aioredis.Redis, how: str) -> None:
    if how == "type":
        await r.delete(K.pos(BAD))
        await r.set(K.pos(BAD), "300")
    else:
        await r.hset(K.pos(BAD), "position", "three")


@pytest.mark.parametrize("how", ["type", "field"])
async def test_one_corrupt_position_at_start_holds_every_add_until_it_reads(
    settings: Settings, aredis: aioredis.Redis, how: str
) -> None:
    exchange = FakeExchange(aredis, K)
    for ticker in (BAD, GOOD):
        await seed(aredis, K, ticker)
        await aredis.hset(K.pos(ticker), mapping=encode_position(Position(ticker, 100)))
    await corrupt(aredis, how)  # found by the ledger's rebuild at start
    service, ctx = await started(settings, aredis, exchange)
    try:
        for ticker in (BAD, GOOD):
            await publish(aredis, K, ticker, 4100, 4500)
        await steps(service, ctx)
        await service.loop._housekeeping(full=True)  # the full refresh reads both
        await steps(service, ctx, 2)
        assert BAD in service.markets.bad_positions
        assert service.markets.positions[GOOD].position == 100  # the others still read
        assert f"position of {BAD} unreadable" in service.safety.blocked.reason
        assert exchange.orders == {}  # the account's exposure is not known: nothing added
        # it reads again: both quoted
        await aredis.delete(K.pos(BAD))
        await aredis.hset(K.pos(BAD), mapping=encode_position(Position(BAD, 100)))
        await service.loop._housekeeping(full=True)
        await steps(service, ctx, 3)
        assert BAD not in service.markets.bad_positions and not service.safety.blocked.reason
        assert {o.ticker for o in exchange.orders.values()} == {BAD, GOOD}
    finally:
        await service.stop(ctx)


async def test_a_corrupt_position_appearing_later_pulls_its_quotes_and_holds_adds(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    exchange = FakeExchange(aredis, K)
    for ticker in (BAD, GOOD):
        await seed(aredis, K, ticker)
    service, ctx = await started(settings, aredis, exchange)
    try:
        for ticker in (BAD, GOOD):
            await publish(aredis, K, ticker, 4100, 4500)
        await steps(service, ctx)
        assert {o.ticker for o in exchange.orders.values()} == {BAD, GOOD}
        await corrupt(aredis, "type")
        await service.safety.refresh_risk(full=True)  # does not raise
        await publish(aredis, K, BAD, 4000, 4500)  # a pass of that market
        await steps(service, ctx, 3)
        assert sorted((o.ticker, o.price) for o in exchange.orders.values()) == [
            (GOOD, 4100),
            (GOOD, 4500),
        ]
        await publish(aredis, K, GOOD, 4300, 4500)  # a move up adds risk: held
        await steps(service, ctx, 3)
        assert sorted((o.ticker, o.price) for o in exchange.orders.values()) == [
            (GOOD, 4100),
            (GOOD, 4500),
        ]
    finally:
        await service.stop(ctx)


async def test_the_full_refresh_reads_the_markets_after_a_corrupt_one(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    tickers = [f"KX{i:02d}" for i in range(REFRESH_CHUNK + 5)]
    for ticker in tickers:
        await seed(aredis, K, ticker)
    service, ctx = await started(settings, aredis, FakeExchange(aredis, K))
    try:
        for i, ticker in enumerate(tickers):
            service.markets.positions[ticker] = Position(ticker)
            await aredis.hset(K.pos(ticker), mapping=encode_position(Position(ticker, i + 1)))
        await aredis.delete(K.pos(tickers[0]))
        await aredis.set(K.pos(tickers[0]), "1")
        await service.safety.refresh_risk(full=True)
        positions = {t: p.position for t, p in service.markets.positions.items()}
        assert {t: positions.get(t) for t in tickers[1:]} == {
            t: i + 2 for i, t in enumerate(tickers[1:])
        }
        assert list(service.markets.bad_positions) == [tickers[0]]
    finally:
        await service.stop(ctx)


async def test_a_risk_hash_of_the_wrong_type_pulls_the_quotes_at_once(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    exchange = FakeExchange(aredis, K)
    await seed(aredis, K, GOOD)
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, K, GOOD, 4100, 4500)
        await steps(service, ctx)
        assert len(exchange.orders) == 2
        await aredis.delete(K.risk)
        await aredis.set(K.risk, "halted")
        await service.loop._housekeeping(full=False)
        assert "risk state unreadable" in service.safety.pulled.reason
        assert "WRONGTYPE" in service.safety.pulled.reason
        await service.safety.cancel_all_task  # type: ignore[misc]
        assert exchange.orders == {}
    finally:
        await service.stop(ctx)


@pytest.mark.parametrize("key", [K.orders(BAD), K.targets(BAD), K.market(BAD)])
async def test_the_executor_starts_with_one_market_key_of_the_wrong_type(
    settings: Settings, aredis: aioredis.Redis, key: str
) -> None:
    """Its start read each market's working orders and latest targets: one key of the wrong type
    failed the start (retried for ever, nothing quoted). A working-orders key that is not a hash
    is dropped (reconcile learns what rests at the exchange)."""
    exchange = FakeExchange(aredis, K)
    for ticker in (BAD, GOOD):
        await seed(aredis, K, ticker)
    await aredis.delete(key)
    await aredis.set(key, "x")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, K, GOOD, 4100, 4500)
        await steps(service, ctx)
        assert sorted((o.ticker, o.price) for o in exchange.orders.values()) == [
            (GOOD, 4100),
            (GOOD, 4500),
        ]
    finally:
        await service.stop(ctx)
