"""One market's hot state corrupted by hand in Redis (a key of the wrong type, a position field
that is not a number): that market is not quoted, with the reason in its targets; every other
market is quoted as usual and the step does not fail. It used to fail every step that read it
(WRONGTYPE raised from the shared pipeline, SchemaError from the position), so the markets read
with it were not quoted either, and on the fused read the script failed and was turned off."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from common.clock import ManualClock
from common.events import book_event
from common.keys import Keys
from common.messages import encode_event
from common.redis_codec import decode_targets
from common.runtime import run_service
from common.settings import Settings
from services.strategy.service import StrategyService
from tests.services.test_strategy import NOW, seed, started

K = Keys()
BAD, GOOD = "KX-A", "KX-B"  # one slice of the sweep: read and computed together

Corrupt = Callable[[aioredis.Redis], Awaitable[object]]


async def wrong_type(r: aioredis.Redis, key: str) -> None:
    await r.delete(key)
    await r.set(key, "300")


CASES: dict[str, tuple[Corrupt, str]] = {
    "pos-type": (lambda r: wrong_type(r, K.pos(BAD)), "bad_position"),
    "pos-field": (lambda r: r.hset(K.pos(BAD), "position", "three"), "bad_position"),
    "orders-type": (lambda r: wrong_type(r, K.orders(BAD)), "bad_orders"),
    "book-type": (lambda r: wrong_type(r, K.book(BAD)), "bad_book"),
    "market-type": (lambda r: wrong_type(r, K.market(BAD)), "no_market_info"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_one_corrupt_market_is_not_quoted_and_the_others_are(
    settings: Settings, aredis: aioredis.Redis, case: str
) -> None:
    corrupt, reason = CASES[case]
    for ticker in (BAD, GOOD):
        await seed(aredis, K, ticker, 4000, 4600)
    await corrupt(aredis)
    code = await asyncio.wait_for(
        run_service(StrategyService(settings), settings, clock=ManualClock(NOW), once=True), 20
    )
    assert code == 0
    good = decode_targets(GOOD, await aredis.hgetall(K.targets(GOOD)))
    assert good.ask is not None and good.ask.price == 4500
    bad = decode_targets(BAD, await aredis.hgetall(K.targets(BAD)))
    assert bad.bid is None and bad.ask is None and bad.reason == reason


@pytest.mark.parametrize("case", ["pos-type", "orders-type", "book-type"])
async def test_a_corrupt_market_named_in_the_stream_keeps_the_fused_read_and_the_others(
    settings: Settings, aredis: aioredis.Redis, case: str
) -> None:
    """The script that reads the state with the stream answers for the other markets and is
    not turned off by one key of the wrong type."""
    corrupt, reason = CASES[case]
    for ticker in (BAD, GOOD):
        await seed(aredis, K, ticker, 4000, 4600)
    service, ctx = await started(settings, aredis)
    await service.step(ctx)  # the facts of both markets are known from here on
    await corrupt(aredis)
    await aredis.hset(K.book(GOOD), "depth", '{"bids": [[4100, 2000]], "asks": [[4600, 2000]]}')
    for ticker in (BAD, GOOD):
        await aredis.xadd(K.stream("md"), encode_event("book", book_event(ticker, 2, NOW, NOW)))
    for _ in range(3):
        await service.step(ctx)
    await service.stop(ctx)
    assert service.reader is not None and service.reader.fused
    good = decode_targets(GOOD, await aredis.hgetall(K.targets(GOOD)))
    assert good.bid is not None and good.bid.price == 4200  # the new book answered
    bad = decode_targets(BAD, await aredis.hgetall(K.targets(BAD)))
    assert bad.bid is None and bad.ask is None and bad.reason == reason


async def test_a_market_config_of_the_wrong_type_leaves_the_others_quoted(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The config refresh (``ConfigCache``) at start and every few seconds read every market's
    ``dora:cfg:market`` in one pipeline: one of the wrong type failed the start."""
    for ticker in (BAD, GOOD):
        await seed(aredis, K, ticker, 4000, 4600)
    await wrong_type(aredis, K.cfg_market(BAD))
    code = await asyncio.wait_for(
        run_service(StrategyService(settings), settings, clock=ManualClock(NOW), once=True), 20
    )
    assert code == 0
    good = decode_targets(GOOD, await aredis.hgetall(K.targets(GOOD)))
    assert good.ask is not None and good.ask.price == 4500
    assert not await aredis.exists(K.targets(BAD))  # no config: not one of its markets


async def test_a_targets_key_of_the_wrong_type_is_written_again_and_the_others_stay_published(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """``dora:targets`` is the strategy's own: one of the wrong type failed the publish of every
    market sent with it, and they were all published again (and again) at each computation."""
    for ticker in (BAD, GOOD):
        await seed(aredis, K, ticker, 4000, 4600)
    await wrong_type(aredis, K.targets(BAD))
    service, ctx = await started(settings, aredis)
    await service.step(ctx)
    assert service.publisher is not None
    await service.publisher.drain()
    assert GOOD in service.last and BAD not in service.last
    assert not await aredis.exists(K.targets(BAD))  # deleted: the next computation writes it
    service.last_full_ms = None  # every market due again
    await service.step(ctx)
    await service.publisher.drain()
    await service.stop(ctx)
    for ticker in (BAD, GOOD):
        targets = decode_targets(ticker, await aredis.hgetall(K.targets(ticker)))
        assert targets.ask is not None and targets.ask.price == 4500, ticker


def test_a_value_that_does_not_read_is_said_once_until_it_reads_or_changes() -> None:
    """The strategy computes a market at each book change and every second: one line, not one
    a computation."""
    from services.strategy.reader import BadValueLog

    lines: list[tuple[str, str, str]] = []

    class Log:
        def warning(self, event: str, market: str, reason: str) -> None:
            lines.append((event, market, reason))

    said = BadValueLog(Log())
    for _ in range(3):
        said.warn("bad_position", BAD, "WRONGTYPE")
        said.read_whole(GOOD)
    said.warn("bad_book", BAD, "WRONGTYPE")  # another value of it: said too
    said.warn("bad_position", BAD, "position is not a number")  # a new reason: said again
    said.read_whole(BAD)
    said.warn("bad_position", BAD, "position is not a number")  # broken again after reading
    assert lines == [
        ("bad_position", BAD, "WRONGTYPE"),
        ("bad_book", BAD, "WRONGTYPE"),
        ("bad_position", BAD, "position is not a number"),
        ("bad_position", BAD, "position is not a number"),
    ]
