import asyncio

import redis.asyncio as aioredis

from common.book import BookState, YesBook
from common.clock import ManualClock
from common.config import MarketConfig
from common.domain import MarketMeta, MarketStatus
from common.grid import PriceGrid
from common.keys import Keys
from common.messages import decode_event
from common.redis_codec import decode_targets, encode_book, encode_market, encode_market_config
from common.runtime import run_service
from common.settings import Settings
from services.strategy.service import StrategyService
from tests.support.state import mark_restored

NOW = 1_800_000_000_000


async def seed(
    r: aioredis.Redis, k: Keys, ticker: str, bid: int, ask: int, stale: bool = False
) -> None:
    await mark_restored(r, k)
    config = MarketConfig(ticker, enabled=True, min_spread=200, quote_size=500)
    await r.sadd(k.cfg_markets, ticker)
    await r.hset(k.cfg_market(ticker), mapping=encode_market_config(config, 1))
    meta = MarketMeta(ticker, MarketStatus.ACTIVE, NOW + 86_400_000, PriceGrid.linear_cent())
    await r.hset(k.market(ticker), mapping=encode_market(meta))
    book = BookState(ticker, YesBook(((bid, 1000),), ((ask, 1000),)), 1, NOW, NOW, stale)
    await r.hset(k.book(ticker), mapping=encode_book(book))


async def test_one_pass_publishes_targets_for_owned_markets(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k = Keys()
    await seed(aredis, k, "KX-A", 4000, 4600)
    await seed(aredis, k, "KX-B", 4000, 4600, stale=True)
    clock = ManualClock(NOW)
    code = await asyncio.wait_for(
        run_service(StrategyService(settings), settings, clock=clock, once=True), 20
    )
    assert code == 0
    a = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
    assert a.bid and a.ask and (a.bid.price, a.ask.price) == (4100, 4500) and a.bid.size == 500
    b = decode_targets("KX-B", await aredis.hgetall(k.targets("KX-B")))
    assert b.bid is None and b.ask is None and b.reason == "book_stale"
    entries = await aredis.xrange(k.stream("targets"))
    events = [decode_event(f) for _, f in entries]
    assert sorted(p["ticker"] for _, p in events) == ["KX-A", "KX-B"]
    kind, payload = events[0]
    assert kind == "targets" and decode_targets(payload["ticker"], payload).reason in (
        "quoting",
        "book_stale",
    )


async def test_two_shards_publish_exactly_what_one_shard_does(
    redis_url: str, aredis: aioredis.Redis
) -> None:
    from common.settings import load_settings
    from common.sharding import shard_of

    k = Keys()
    tickers = [f"KX-{i}" for i in range(12)]
    for n, t in enumerate(tickers):
        await seed(aredis, k, t, 3000 + 100 * n, 3600 + 120 * n)

    async def run(count: int) -> dict[str, dict[str, str]]:
        for t in tickers:
            await aredis.delete(k.targets(t))
        for index in range(count):
            s = load_settings(
                {
                    "DORA_REDIS_URL": redis_url,
                    "DORA_SHARD_INDEX": str(index),
                    "DORA_SHARD_COUNT": str(count),
                },
                read_file=False,
            )
            await asyncio.wait_for(
                run_service(StrategyService(s), s, clock=ManualClock(NOW), once=True), 20
            )
        return {t: await aredis.hgetall(k.targets(t)) for t in tickers}

    one, two = await run(1), await run(2)
    assert all(one[t] for t in tickers) and one == two
    assert {shard_of(t, 2) for t in tickers} == {0, 1}


async def test_our_own_orders_are_not_the_market_we_improve_on(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    from common.domain import Order, OrderStatus, Side
    from common.redis_codec import encode_order

    k = Keys()
    await seed(aredis, k, "KX-A", 4000, 4600)
    # the book as the exchange shows it: our bid at 0.41 is the best; the others bid 0.40
    book = BookState(
        "KX-A", YesBook(((4100, 500), (4000, 1000)), ((4600, 1000),)), 2, NOW, NOW, False
    )
    await aredis.hset(k.book("KX-A"), mapping=encode_book(book))
    ours = Order("KX-A", Side.BID, 4100, 500, "c1", "o1", OrderStatus.RESTING, 0, 500)
    await aredis.hset(k.orders("KX-A"), "c1", encode_order(ours))
    await asyncio.wait_for(
        run_service(StrategyService(settings), settings, clock=ManualClock(NOW), once=True), 20
    )
    targets = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
    assert (
        targets.bid is not None and targets.bid.price == 4100
    )  # one tick over the others, not over us


async def test_it_remembers_fresh_levels_between_passes(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """A maker re-centred far higher between two reads of the book: the levels it added are the
    fair value, so the strategy does not rest one tick inside the stale ask left at 0.45."""
    k = Keys()
    await seed(aredis, k, "KX-A", 4000, 4400)
    before = BookState(
        "KX-A",
        YesBook(((4000, 2000), (3900, 2000)), ((4400, 2000), (4500, 2000))),
        1,
        NOW,
        NOW,
        False,
    )
    after = BookState(
        "KX-A",
        YesBook(((4000, 2000), (3900, 2000)), ((4500, 500), (6200, 1000), (6300, 1000))),
        2,
        NOW + 5_000,
        NOW + 5_000,
        False,
    )
    service, clock = StrategyService(settings), ManualClock(NOW)
    await aredis.hset(k.book("KX-A"), mapping=encode_book(before))
    await asyncio.wait_for(run_service(service, settings, clock=clock, once=True), 20)
    clock.advance(5_000)
    await aredis.hset(k.book("KX-A"), mapping=encode_book(after))
    await asyncio.wait_for(run_service(service, settings, clock=clock, once=True), 20)
    targets = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
    assert targets.ask is not None and targets.ask.price > 5000 and "+fresh" in targets.ask.reason
    # a strategy that saw only the second book knows nothing fresh: one tick inside 0.45
    await asyncio.wait_for(
        run_service(StrategyService(settings), settings, clock=clock, once=True), 20
    )
    targets = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
    assert targets.ask is not None and targets.ask.price == 4400


async def test_stream_lag_is_the_wait_of_the_oldest_entry_read(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Three book events read in one batch, published 300, 120 and 10 ms ago: the heartbeat's
    md_lag_ms is 300 (the wait a tick paid), not 10 (how fresh the newest was)."""
    from common.events import book_event
    from common.log import get_logger
    from common.messages import encode_event
    from common.runtime import Context

    k = Keys()
    await seed(aredis, k, "KX-A", 4000, 4600)
    clock = ManualClock(NOW)
    ctx = Context("strategy", settings, aredis, k, clock, get_logger("strategy"))
    service = StrategyService(settings)
    await service.start(ctx)
    for age_ms in (300, 120, 10):
        event = book_event("KX-A", 1, NOW, NOW, 0, 0)
        await aredis.xadd(k.stream("md"), encode_event("book", event), id=f"{NOW - age_ms}-0")
    touched, _ = await service._read_events(ctx)
    await service.stop(ctx)
    assert touched == {"KX-A"} and ctx.status["md_lag_ms"] == 300


async def test_an_external_fair_value_moves_the_quotes_until_it_is_stale(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The trader's model says 0.60 in a 0.40/0.46 market: selling one tick inside at 0.45
    would lose, so the ask goes to 0.61; once the value is older than fv_stale_ms it is ignored."""
    from common.fair_inputs import ExternalFair
    from common.redis_codec import encode_fv

    k = Keys()
    await seed(aredis, k, "KX-A", 4000, 4600)
    await aredis.hset(k.fv("KX-A"), mapping=encode_fv(ExternalFair(6000, NOW - 1_000, 100)))
    clock = ManualClock(NOW)
    await asyncio.wait_for(
        run_service(StrategyService(settings), settings, clock=clock, once=True), 20
    )
    targets = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
    assert targets.ask is not None and targets.ask.price == 6100 and "+fv" in targets.ask.reason
    assert targets.bid is not None and targets.bid.price == 4100
    clock.advance(settings.fv_stale_ms)  # now older than fv_stale_ms
    await asyncio.wait_for(
        run_service(StrategyService(settings), settings, clock=clock, once=True), 20
    )
    targets = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
    assert targets.ask is not None and targets.ask.price == 4500 and "+fv" not in targets.ask.reason


async def test_a_fair_value_that_does_not_read_is_ignored(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k = Keys()
    await seed(aredis, k, "KX-A", 4000, 4600)
    await aredis.hset(k.fv("KX-A"), mapping={"price": "lots", "ts_ms": str(NOW)})
    clock = ManualClock(NOW)
    await asyncio.wait_for(
        run_service(StrategyService(settings), settings, clock=clock, once=True), 20
    )
    targets = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
    assert targets.ask is not None and targets.ask.price == 4500


async def test_its_own_fills_markouts_measure_the_toxicity(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """We bought 5 contracts; 10 s later the others' mid is 2 c lower. With the measured
    toxicity on, the 2 c min spread doubles and the strategy joins the best instead of
    improving; the same book without those fills gets one tick inside."""
    from common.domain import Fill, Position, Side
    from common.events import fill_event
    from common.log import get_logger
    from common.messages import encode_event
    from common.quoting import QuotingParams
    from common.runtime import Context

    params = QuotingParams(tox_min_contracts=500, tox_free=0, tox_span=100, tox_max=10_000)
    k = Keys()
    await seed(aredis, k, "KX-A", 4000, 4400)
    moved = BookState("KX-A", YesBook(((3800, 1000),), ((4200, 1000),)), 2, NOW, NOW, False)

    async def run(fills: bool) -> tuple[int | None, int | None]:
        await seed(aredis, k, "KX-A", 4000, 4400)
        clock = ManualClock(NOW)
        ctx = Context("strategy", settings, aredis, k, clock, get_logger("strategy"))
        service = StrategyService(settings, params)
        await service.start(ctx)
        await service.step(ctx)
        first = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
        assert first.bid is not None and first.bid.price == 4100
        if fills:
            fill = Fill("f1", "o1", "KX-A", Side.BID, 4100, 500, 0, False, NOW)
            event = fill_event(fill, Position("KX-A", 500, 500 * 4100))
            await aredis.xadd(k.stream("fills"), encode_event("fill", event))
        clock.advance(10_000)
        await aredis.hset(k.book("KX-A"), mapping=encode_book(moved))
        await service.step(ctx)
        await service.stop(ctx)
        t = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
        return (t.bid and t.bid.price, t.ask and t.ask.price)

    assert await run(fills=False) == (3900, 4100)
    assert await run(fills=True) == (3800, 4200)
