import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from common.book import BookState, YesBook
from common.clock import ManualClock
from common.config import MarketConfig
from common.direct_redis import DirectRedis
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
    # 20 contracts a side: not a thin market (``QuotingParams.benign_min_depth``)
    book = BookState(ticker, YesBook(((bid, 2000),), ((ask, 2000),)), 1, NOW, NOW, stale)
    await r.hset(k.book(ticker), mapping=encode_book(book))


async def published(service: StrategyService) -> None:
    """Wait for the targets the step sent: the step does not wait for Redis's answer, and a read
    on another connection may reach Redis first (seen on a loaded box)."""
    assert service.publisher is not None
    if service.publisher.inflight:
        await asyncio.wait(list(service.publisher.inflight))


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


class RoundTrips:
    """Records what a client sends: each command and each pipeline is one round trip, noted as
    the names of its commands. ``hold`` makes the round trips holding that command wait for
    ``release``; ``fail_next`` fails the next one holding it."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, hold: str = "", fail_next: str = ""
    ) -> None:
        self.sent: list[tuple[str, ...]] = []
        self.release = asyncio.Event()
        self.held = asyncio.Event()
        command, execute = aioredis.Redis.execute_command, aioredis.client.Pipeline.execute

        async def counted_command(client: Any, *args: Any, **options: Any) -> Any:
            self.sent.append((str(args[0]).upper(),))
            return await command(client, *args, **options)

        async def counted_execute(pipe: Any, *args: Any, _send: Any = None, **options: Any) -> Any:
            names = tuple(str(c[0][0]).upper() for c in pipe.command_stack)
            self.sent.append(names)
            if hold and hold in names:
                self.held.set()
                await self.release.wait()
            if fail_next and fail_next in names and not getattr(self, "failed", False):
                self.failed = True
                pipe.command_stack.clear()
                raise ConnectionError("Redis went away")
            if _send is not None:
                return await _send()
            return await execute(pipe, *args, **options)

        direct_execute = DirectRedis.execute

        async def counted_direct(direct: Any, pipe: Any, **options: Any) -> Any:
            # the same pipeline, on a connection of the caller's own (common.direct_redis)
            return await counted_execute(
                pipe, _send=lambda: direct_execute(direct, pipe, **options)
            )

        monkeypatch.setattr(aioredis.Redis, "execute_command", counted_command)
        monkeypatch.setattr(aioredis.client.Pipeline, "execute", counted_execute)
        monkeypatch.setattr(DirectRedis, "execute", counted_direct)

    def reads(self) -> int:
        """Round trips that read a market's hashes apart from the stream read."""
        return sum(1 for names in self.sent if "HGETALL" in names)


async def book_changes(aredis: aioredis.Redis, k: Keys, bid: int) -> None:
    from common.events import book_event
    from common.messages import encode_event

    book = BookState("KX-A", YesBook(((bid, 1000),), ((4600, 1000),)), bid, NOW, NOW, False)
    await aredis.hset(k.book("KX-A"), mapping=encode_book(book))
    await aredis.xadd(k.stream("md"), encode_event("book", book_event("KX-A", bid, NOW, NOW, 0, 0)))


async def started(
    settings: Settings, aredis: aioredis.Redis, clock: ManualClock | None = None
) -> tuple[StrategyService, Any]:
    from common.log import get_logger
    from common.runtime import Context

    ctx = Context(
        "strategy", settings, aredis, Keys(), clock or ManualClock(NOW), get_logger("strategy")
    )
    service = StrategyService(settings)
    await service.start(ctx)
    return service, ctx


async def until(predicate: Any, timeout_s: float = 5.0) -> None:
    async def wait() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(wait(), timeout_s)


async def test_a_tick_needs_no_round_trip_of_its_own_the_state_comes_with_the_read(
    settings: Settings, aredis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A book change used to cost the strategy a read of the book, position and own orders
    after the read of the streams; they now come with it (reader.py)."""
    k = Keys()
    await seed(aredis, k, "KX-A", 4000, 4600)
    service, ctx = await started(settings, aredis)
    await book_changes(aredis, k, 4000)
    await service.step(ctx)  # the first step also reads the market's facts (not yet known)
    trips = RoundTrips(monkeypatch)
    for bid in (4100, 4200):
        await book_changes(aredis, k, bid)
        await service.step(ctx)
    await service.stop(ctx)
    assert trips.reads() == 0
    assert ("XREAD", "EVAL") in trips.sent and ("HSET", "XADD") in trips.sent
    bids = [decode_event(f)[1]["bid_price"] for _, f in await aredis.xrange(k.stream("targets"))]
    assert bids == ["4100", "4200", "4300"]
    targets = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
    assert targets.bid is not None and targets.bid.price == 4300


async def test_a_book_change_is_read_while_the_last_targets_are_still_being_published(
    settings: Settings, aredis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The strategy listens while it publishes: the next book change is read at once, not after
    Redis answered the publish and a new read went out."""
    k = Keys()
    await seed(aredis, k, "KX-A", 4000, 4600)
    service, ctx = await started(settings, aredis)
    trips = RoundTrips(monkeypatch, hold="HSET")
    await book_changes(aredis, k, 4000)
    step = asyncio.create_task(service.step(ctx))
    await asyncio.wait_for(trips.held.wait(), 5)  # the publish is on its way, unanswered
    await book_changes(aredis, k, 4100)
    assert service.reader is not None
    await until(lambda: bool(service.reader and service.reader.batches))
    trips.release.set()
    await step
    await service.step(ctx)
    await service.stop(ctx)
    targets = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
    assert targets.bid is not None and targets.bid.price == 4200


async def test_targets_lost_with_a_failed_publish_are_published_again(
    settings: Settings, aredis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    k = Keys()
    await seed(aredis, k, "KX-A", 4000, 4600)
    clock = ManualClock(NOW)
    service, ctx = await started(settings, aredis, clock)
    RoundTrips(monkeypatch, fail_next="HSET")
    await service.step(ctx)  # computes KX-A's targets; their publish fails
    assert service.publisher is not None
    await service.publisher.drain()
    assert await aredis.hgetall(k.targets("KX-A")) == {}
    clock.advance(2_000)  # the sweep recomputes KX-A: the same targets, published again
    await service.step(ctx)
    await service.stop(ctx)
    targets = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
    assert targets.bid is not None and targets.bid.price == 4100


async def test_a_sharded_strategy_reads_the_named_markets_separately(
    settings: Settings, aredis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every shard reads every market's entries of the one md stream: the script would fetch
    the other shards' markets too, so a shard reads its own after the stream read."""
    from dataclasses import replace

    from common.sharding import shard_of

    k = Keys()
    await seed(aredis, k, "KX-A", 4000, 4600)
    sharded = replace(settings, shard_count=2, shard_index=shard_of("KX-A", 2))
    service, ctx = await started(sharded, aredis)
    await book_changes(aredis, k, 4000)
    await service.step(ctx)
    trips = RoundTrips(monkeypatch)
    for bid in (4100, 4200):
        await book_changes(aredis, k, bid)
        await service.step(ctx)
    await service.stop(ctx)
    assert trips.reads() == 2 and not any("EVAL" in names for names in trips.sent)
    targets = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
    assert targets.bid is not None and targets.bid.price == 4300


async def test_the_state_read_with_the_stream_is_what_the_targets_answer(
    settings: Settings, aredis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our own order rests at the best bid: the targets improve on the others' bid, not ours;
    then the market closes (a market event): its facts come with the read and the quotes go."""
    from common.domain import Order, OrderStatus, Side
    from common.events import book_event
    from common.messages import encode_event
    from common.redis_codec import encode_order

    k = Keys()
    await seed(aredis, k, "KX-A", 4000, 4600)
    service, ctx = await started(settings, aredis)
    await service.step(ctx)  # the market's facts are known from here on
    ours = Order("KX-A", Side.BID, 4100, 500, "c1", "o1", OrderStatus.RESTING, 0, 500)
    await aredis.hset(k.orders("KX-A"), "c1", encode_order(ours))
    # the book shows our bid at 0.41 and the others' at 0.40
    book = BookState(
        "KX-A", YesBook(((4100, 500), (4000, 1000)), ((4600, 1000),)), 2, NOW, NOW, False
    )
    await aredis.hset(k.book("KX-A"), mapping=encode_book(book))
    trips = RoundTrips(monkeypatch)
    await aredis.xadd(k.stream("md"), encode_event("book", book_event("KX-A", 2, NOW, NOW, 0, 0)))
    await service.step(ctx)
    assert service.publisher is not None
    await service.publisher.drain()
    assert trips.reads() == 0  # the state came with the read
    targets = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
    assert targets.bid is not None and targets.bid.price == 4100  # the others' 0.40 + a tick
    trips.sent.clear()  # (the test's own reads)
    meta = MarketMeta("KX-A", MarketStatus.CLOSED, NOW + 86_400_000, PriceGrid.linear_cent())
    await aredis.hset(k.market("KX-A"), mapping=encode_market(meta))
    await aredis.xadd(k.stream("md"), encode_event("market", {"ticker": "KX-A"}))
    await service.step(ctx)
    await service.stop(ctx)
    assert trips.reads() == 0
    targets = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
    assert targets.bid is None and targets.ask is None


async def test_a_redis_that_refuses_the_script_is_read_the_old_way(
    settings: Settings, aredis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.strategy import reader

    monkeypatch.setattr(reader, "_SCRIPT", "return redis.call('NOSUCHCOMMAND')")
    k = Keys()
    await seed(aredis, k, "KX-A", 4000, 4600)
    service, ctx = await started(settings, aredis)
    for bid in (4000, 4100):
        await book_changes(aredis, k, bid)
        await service.step(ctx)
    await service.stop(ctx)
    assert service.reader is not None and not service.reader.fused
    targets = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
    assert targets.bid is not None and targets.bid.price == 4200


async def test_a_publish_waits_only_for_one_on_its_way_with_the_same_market() -> None:
    """Targets of KX-A never overtake earlier targets of KX-A; KX-B's do not wait for them."""
    from common.log import get_logger
    from common.runtime import Context
    from services.strategy.service import Publisher

    order: list[str] = []
    answers: dict[str, asyncio.Event] = {}

    class Pipe:
        def __init__(self, name: str) -> None:
            self.name = name
            answers[name] = asyncio.Event()

        async def execute(self, raise_on_error: bool = True) -> list[object]:
            order.append(self.name)  # written to Redis
            await answers[self.name].wait()  # Redis's answer
            return []

    ctx = Context("strategy", Settings(), None, Keys(), ManualClock(NOW), get_logger("strategy"))  # type: ignore[arg-type]
    publisher = Publisher(ctx, {})
    publisher.send(Pipe("a1"), ["KX-A"])
    await asyncio.sleep(0)
    publisher.send(Pipe("a2"), ["KX-A", "KX-C"])
    publisher.send(Pipe("b1"), ["KX-B"])
    await asyncio.sleep(0.01)
    assert order == ["a1", "b1"]  # a2 waits for a1's answer, b1 did not
    answers["a1"].set()
    await asyncio.sleep(0.01)
    assert order == ["a1", "b1", "a2"]
    answers["a2"].set()
    answers["b1"].set()
    await publisher.drain()
    assert not publisher.inflight


async def test_while_the_step_is_busy_the_reader_keeps_one_read_out_not_more(
    settings: Settings, aredis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two reads came back that the step has not taken: the reader waits for it instead of
    reading on in ever smaller reads; once the step takes them it reads again."""
    k = Keys()
    await seed(aredis, k, "KX-A", 4000, 4600)
    service, ctx = await started(settings, aredis)
    reader = service.reader
    assert reader is not None
    trips = RoundTrips(monkeypatch)
    for bid in (4000, 4100, 4200, 4300):
        await book_changes(aredis, k, bid)
        await asyncio.sleep(0.05)
    assert len(reader.batches) == 2
    reads = sum(1 for names in trips.sent if "XREAD" in names)
    assert reads == 2  # the third is not out while the step has not taken the two
    batches = await reader.take(0.1)
    await until(lambda: len(reader.batches) == 1)  # the next read went out and brought the rest
    assert sum(len(e) for b in batches for _, e in b.response) == 2
    await service.stop(ctx)


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


async def test_a_fair_value_key_of_the_wrong_type_is_ignored_and_quoting_goes_on(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """``SET dora:fv:KX-A 5600`` (a string, not a hash) is the trader's mistake: it must not stop
    the strategy from quoting this market or any other."""
    k = Keys()
    await seed(aredis, k, "KX-A", 4000, 4600)
    await seed(aredis, k, "KX-B", 4000, 4600)
    await aredis.set(k.fv("KX-A"), "5600")
    clock = ManualClock(NOW)
    await asyncio.wait_for(
        run_service(StrategyService(settings), settings, clock=clock, once=True), 20
    )
    for ticker in ("KX-A", "KX-B"):
        targets = decode_targets(ticker, await aredis.hgetall(k.targets(ticker)))
        assert targets.ask is not None and targets.ask.price == 4500, ticker


async def test_a_fair_value_key_of_the_wrong_type_keeps_the_state_coming_with_the_read(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The same on the fused read (reader.py): the script answers, and is not turned off."""
    k = Keys()
    await seed(aredis, k, "KX-A", 4000, 4600)
    await aredis.set(k.fv("KX-A"), "5600")
    service, ctx = await started(settings, aredis)
    for bid in (4000, 4100):
        await book_changes(aredis, k, bid)
        await service.step(ctx)
    await service.stop(ctx)
    assert service.reader is not None and service.reader.fused
    targets = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
    assert targets.bid is not None and targets.bid.price == 4200


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

    # a 4-tick book of 10 contracts a side is thin: the 5-contract fill took the whole bid, and
    # ``taken_window_ms`` would pull it (test_a_thin_side_taken_whole_is_pulled_by_the_service)
    params = QuotingParams(
        tox_min_contracts=500, tox_free=0, tox_span=100, tox_max=10_000, taken_window_ms=0
    )
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
        await published(service)
        first = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
        assert first.bid is not None and first.bid.price == 4100
        clock.advance(10_000)
        # the book moved first: the fill's entry brings the market's state with it when read
        await aredis.hset(k.book("KX-A"), mapping=encode_book(moved))
        if fills:
            fill = Fill("f1", "o1", "KX-A", Side.BID, 4100, 500, 0, False, NOW)
            event = fill_event(fill, Position("KX-A", 500, 500 * 4100))
            await aredis.xadd(k.stream("fills"), encode_event("fill", event))
        await service.step(ctx)
        await service.stop(ctx)
        t = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
        return (t.bid and t.bid.price, t.ask and t.ask.price)

    assert await run(fills=False) == (3900, 4100)
    assert await run(fills=True) == (3800, 4200)


async def test_a_sweep_gives_way_to_a_book_change_read_meanwhile_and_is_never_starved(
    settings: Settings, aredis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The once-a-second recomputation of every market goes a slice at a time: a book change
    read while a slice is computed is answered before the rest (a sweep of 25 markets held the
    loop 3-8 ms in a latency run), and every step still sweeps one slice at least."""
    from services.strategy import service as module
    from services.strategy.reader import Batch

    k = Keys()
    tickers = [f"KX-{i:02d}" for i in range(12)]
    for t in tickers:
        await seed(aredis, k, t, 4000, 4600)
    clock = ManualClock(NOW)
    service, ctx = await started(settings, aredis, clock)
    await service.step(ctx)  # the first full pass: nothing read meanwhile, every slice
    assert set(service.last) == set(tickers)
    computed: list[list[str]] = []
    real = service._compute

    async def compute(ctx: Any, tickers: list[str], *args: Any) -> None:
        computed.append(list(tickers))
        await real(ctx, tickers, *args)
        assert service.reader is not None
        service.reader.batches.append(Batch([], {}, 0))  # a book change read meanwhile

    monkeypatch.setattr(service, "_compute", compute)
    clock.advance(2_000)  # every market due again
    await service.step(ctx)
    assert computed == [tickers[: module.SLICE]]  # one slice, then the book change's turn
    for _ in range(3):
        await service.step(ctx)
    assert sorted(t for part in computed for t in part) == tickers  # the rest, a slice a step
    await service.stop(ctx)


async def test_the_answer_to_a_book_change_goes_out_before_the_next_read(
    settings: Settings, aredis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader waits for the step's answer before it builds and sends its next read: that
    read (a pipeline with the fused script) cost every tick ~0.2 ms of the loop before the step
    could take what was read. The targets' write is sent first."""
    k = Keys()
    await seed(aredis, k, "KX-A", 4000, 4600)
    service, ctx = await started(settings, aredis)
    assert service.reader is not None
    # A read that times out goes out again at once: one sent between the test's own writes
    # would look like the next read. From here the reader's reads block until the change.
    service.reader.block_ms = 5_000
    await service.step(ctx)  # the first sweep: the market's targets are out
    await asyncio.sleep(0.3)  # the read before it timed out; the long one is on its way
    trips = RoundTrips(monkeypatch)
    await book_changes(aredis, k, 4100)
    await service.step(ctx)
    await until(lambda: any("XREAD" in names for names in trips.sent))
    # (the test's own book change is a lone HSET and XADD; the strategy's publish a pipeline)
    publish = next(i for i, names in enumerate(trips.sent) if names == ("HSET", "XADD"))
    read = next(i for i, names in enumerate(trips.sent) if "XREAD" in names)
    assert publish < read, trips.sent
    await service.stop(ctx)


async def test_a_thin_side_taken_whole_is_pulled_by_the_service(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """A thin book (4 ticks, 10 contracts a side) quotes 4 contracts a side; a fill that takes
    the whole bid pulls the bid (``taken_window_ms``, on by default), the ask stays."""
    from common.domain import Fill, Position, Side
    from common.events import fill_event
    from common.log import get_logger
    from common.messages import encode_event
    from common.quoting import QuotingParams
    from common.runtime import Context

    k = Keys()
    await seed(aredis, k, "KX-A", 4000, 4400)
    thin = BookState("KX-A", YesBook(((4000, 1000),), ((4400, 1000),)), 2, NOW, NOW, False)
    await aredis.hset(k.book("KX-A"), mapping=encode_book(thin))
    clock = ManualClock(NOW)
    ctx = Context("strategy", settings, aredis, k, clock, get_logger("strategy"))
    service = StrategyService(settings, QuotingParams())
    await service.start(ctx)
    await service.step(ctx)
    await published(service)
    first = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
    assert first.bid is not None and (first.bid.price, first.bid.size) == (4100, 400)
    clock.advance(1_000)
    fill = Fill("f1", "o1", "KX-A", Side.BID, 4100, 400, 0, False, NOW + 500)
    event = fill_event(fill, Position("KX-A", 400, 400 * 4100))
    await aredis.xadd(k.stream("fills"), encode_event("fill", event))
    await service.step(ctx)
    await service.stop(ctx)
    t = decode_targets("KX-A", await aredis.hgetall(k.targets("KX-A")))
    assert t.bid is None and t.ask is not None and t.ask.price == 4300
