"""The account-wide exposure ledger and the shard lease, with the executor against a real Redis.

Every order that adds risk reserves its worst case in ``dora:ledger`` first, in one Lua step shared
by every pass and every shard; a second executor of a shard waits for the lease; a paused old one
cannot write.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace

import pytest
import redis.asyncio as aioredis

from common.clock import ManualClock
from common.config import GlobalConfig
from common.domain import (
    MarketMeta,
    MarketStatus,
    Order,
    OrderStatus,
    Position,
    Side,
    make_client_order_id,
)
from common.event_loss import event_worst_loss, market_loss
from common.grid import PriceGrid
from common.kalshi.wire.orders import OrderRequest
from common.keys import Keys
from common.ledger import NO_CAP, Ledger, field, parse_value, read_event_worst, read_total
from common.log import get_logger
from common.order_diff import Action, ActionKind
from common.redis_codec import encode_global_config, encode_market, encode_position
from common.risk import worst_case_exposure
from common.runtime import Context
from common.settings import Settings, load_settings
from services.executor.lease import Lease
from services.executor.market_pass import lowers_risk
from services.executor.reservations import COST_ROUNDING
from services.executor.service import ExecutorService, build, executor_name
from tests.services.test_executor import (
    NOW,
    FakeExchange,
    count_round_trips,
    publish,
    seed,
    settled,
    started,
    steps,
)

CAP = 12_000_000  # $12


async def set_cap(r: aioredis.Redis, k: Keys, cap: int) -> None:
    config = GlobalConfig(max_total_exposure=cap, max_daily_loss=100_000_000)
    await r.hset(k.cfg_global, mapping=encode_global_config(config, 2))


def at_exchange(*exchanges: FakeExchange) -> int:
    """The worst case of every order resting at the exchange (no positions)."""
    return worst_case_exposure([], [o for e in exchanges for o in e.orders.values()])


async def test_a_burst_of_64_markets_never_reserves_past_the_cap(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """All 64 markets flagged at once (a start, a resume): each pass used to check the same
    exposure snapshot, so together they rested many times the cap."""
    k = Keys()
    tickers = [f"KX-{i:02d}" for i in range(64)]
    for t in tickers:
        await seed(aredis, k, t)
    await set_cap(aredis, k, CAP)
    exchange = FakeExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)
    try:
        for t in tickers:
            await publish(aredis, k, t, 4100, 4500)  # $2.05 + $2.75 a market
        await steps(service, ctx, 3)
        assert exchange.orders  # it did quote
        assert at_exchange(exchange) <= CAP
        # what rests and the room held ahead of it (services/executor/ahead.py), within the cap
        assert at_exchange(exchange) <= await read_total(aredis, k) <= CAP
    finally:
        await service.stop(ctx)


async def test_two_shards_share_one_cap(redis_url: str, aredis: aioredis.Redis) -> None:
    """Each shard used to count only its own markets: two shards, twice the cap."""
    k = Keys()
    tickers = [f"KX-{i:02d}" for i in range(24)]
    for t in tickers:
        await seed(aredis, k, t)
    await set_cap(aredis, k, 80_000_000)  # a little more than one shard's markets want
    clock = ManualClock(NOW)
    shards = []
    for index in (0, 1):
        s = load_settings(
            {"DORA_REDIS_URL": redis_url, "DORA_SHARD_INDEX": str(index), "DORA_SHARD_COUNT": "2"},
            read_file=False,
        )
        exchange = FakeExchange(aredis, k)
        service, ctx = await started(s, aredis, exchange, clock)
        shards.append((service, ctx, exchange))
    try:
        for t in tickers:
            await publish(aredis, k, t, 4100, 4500)
        for service, ctx, _ in shards:  # the first takes all it wants, the second the rest
            await steps(service, ctx, 3)
        await asyncio.gather(*(steps(service, ctx, 3) for service, ctx, _ in shards))
        exchanges = [e for _, _, e in shards]
        assert all(e.orders for e in exchanges)  # both quoted
        assert at_exchange(*exchanges) <= 80_000_000
    finally:
        for service, ctx, _ in shards:
            await service.stop(ctx)


async def test_the_ledger_is_rebuilt_from_the_exchange_before_the_first_order(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Redis lost the ledger (or it was never there): what rests at the exchange and the
    positions count before anything new is placed. (Without the room ahead, so that the ledger
    equals the exchange's worst case.)"""
    settings = replace(settings, executor_ahead_ticks=0)
    k = Keys()
    tickers = [f"KX-{i:02d}" for i in range(8)]
    for t in tickers:
        await seed(aredis, k, t)
    await set_cap(aredis, k, CAP)
    held = Position(tickers[0], 1000, 4_000_000)
    await aredis.hset(k.pos(tickers[0]), mapping=encode_position(held))
    exchange = FakeExchange(aredis, k)
    resting = Order(
        tickers[1], Side.ASK, 4000, 1000, make_client_order_id("old:0:1", tickers[1], Side.ASK, 1),
        "ex-old", OrderStatus.RESTING, 0, 1000,
    )  # fmt: skip
    exchange.orders["ex-old"] = resting
    await aredis.hset(k.ledger, mapping={"total": "0"})  # a stale ledger that knows nothing
    service, ctx = await started(settings, aredis, exchange)
    try:
        ledger = await aredis.hgetall(k.ledger)
        assert parse_value(ledger[field("pos", tickers[0])]) == 4_000_000
        assert parse_value(ledger[field("ask", tickers[1])]) == 6_000_000
        assert int(ledger["total"]) == 10_000_000
        for t in tickers:
            await publish(aredis, k, t, 4100, 4500)
        await steps(service, ctx, 3)
        assert worst_case_exposure([held], exchange.orders.values()) <= CAP
        assert await read_total(aredis, k) == worst_case_exposure([held], exchange.orders.values())
    finally:
        await service.stop(ctx)


async def test_cancel_decrease_and_fill_release_exactly_once(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    settings = replace(settings, executor_ahead_ticks=0)  # the ledger exactly what rests
    k = Keys()
    ticker = "KX-REL"
    await seed(aredis, k, ticker)
    exchange = FakeExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, ticker, 4100, None)  # a bid of 5 contracts: $2.05
        await steps(service, ctx, 2)
        assert await read_total(aredis, k) == 2_050_000
        await publish(aredis, k, ticker, 4100, None, size=200)  # decreased to 2
        await steps(service, ctx, 2)
        assert await read_total(aredis, k) == 820_000
        await publish(aredis, k, ticker, None, None)  # cancelled
        await steps(service, ctx, 2)
        assert await read_total(aredis, k) == 0
        await steps(service, ctx, 2)  # nothing more to release: never below what rests
        assert await read_total(aredis, k) == 0
        # a fill: the order's part moves to the position, the total stays
        await publish(aredis, k, ticker, 4100, None)
        await steps(service, ctx, 2)
        (order,) = exchange.orders.values()
        exchange.orders[order.order_id or ""] = replace(order, remaining=200, filled=300)
        position = Position(ticker, 300, 300 * 4100)
        await aredis.hset(k.pos(ticker), mapping=encode_position(position))
        live = service.working.live(ticker)[0]
        service.working.apply(replace(live, remaining=200, filled=300))
        service.working.in_flight.credit(replace(live, remaining=200, filled=300), NOW)
        ctx.clock.advance(2_000)  # type: ignore[attr-defined]
        await steps(service, ctx, 4)
        assert await read_total(aredis, k) == 2_050_000
        ledger = await aredis.hgetall(k.ledger)
        assert parse_value(ledger[field("pos", ticker)]) == 1_230_000
    finally:
        await service.stop(ctx)


async def test_reservations_from_many_tasks_never_pass_the_cap(aredis: aioredis.Redis) -> None:
    """The Lua step alone: 64 concurrent reservations of $1 each against a $12 cap."""
    k = Keys()
    lease = Lease(aredis, k, "executor", get_logger("executor"))
    assert not await lease.try_acquire()
    ledger = Ledger(aredis, k, lease.key, lambda: lease.token)

    async def reserve(i: int) -> bool:
        values = {field("bid", f"T{i}"): 1_000_000}
        pipe = aredis.pipeline(transaction=False)
        ledger.queue_reserve(pipe, f"T{i}", values, CAP, before={field("bid", f"T{i}"): 0})
        (reply,) = await pipe.execute()
        return ledger.answered(values, reply).ok

    results = await asyncio.gather(*(reserve(i) for i in range(64)))
    assert sum(results) == 12
    assert await read_total(aredis, k) == CAP
    # released twice: the second changes nothing
    for _ in range(2):
        pipe = aredis.pipeline(transaction=False)
        ledger.queue_reserve(pipe, "T0", {field("bid", "T0"): 0}, NO_CAP)
        await pipe.execute()
    assert await read_total(aredis, k) == CAP - 1_000_000


async def test_a_second_executor_waits_and_a_stale_token_is_refused(
    aredis: aioredis.Redis,
) -> None:
    k = Keys()
    log = get_logger("executor")
    first = Lease(aredis, k, "executor", log, owner="first")
    second = Lease(aredis, k, "executor", log, owner="second")
    assert await first.try_acquire() == ""
    stop = asyncio.Event()
    waiting = asyncio.create_task(second.acquire(stop, poll_s=0.05))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # waits while the first holds it
    old = Ledger(aredis, k, first.key, lambda: first.token)
    await aredis.delete(first.key)  # the first paused past its TTL: the lease expired
    assert await asyncio.wait_for(waiting, 2)
    assert second.token > first.token
    values = {field("bid", "T"): 1_000_000}
    pipe = aredis.pipeline(transaction=False)
    old.queue_reserve(pipe, "T", values, CAP, before={field("bid", "T"): 0})
    (reply,) = await pipe.execute()
    answer = old.answered(values, reply)
    assert answer.outcome == "fenced" and "second" in answer.detail
    assert await read_total(aredis, k) == 0
    assert not await first.renew() and first.lost  # it notices, and adds nothing from then on


async def seed_event(
    r: aioredis.Redis, k: Keys, tickers: list[str], event: str, exclusive: bool
) -> None:
    for t in tickers:
        await seed(r, k, t)
        meta = MarketMeta(
            t,
            MarketStatus.ACTIVE,
            NOW + 10**8,
            PriceGrid.linear_cent(),
            event_ticker=event,
            mutually_exclusive=exclusive,
        )
        await r.hset(k.market(t), mapping=encode_market(meta))


def event_worst_at_exchange(exchange: FakeExchange, tickers: list[str], exclusive: bool) -> int:
    orders = list(exchange.orders.values())
    losses = [market_loss(0, 0, [o for o in orders if o.ticker == t]) for t in tickers]
    return event_worst_loss(losses, exclusive)


@pytest.mark.parametrize("exclusive", [True, False])
async def test_an_events_worst_loss_never_passes_its_limit(
    settings: Settings, aredis: aioredis.Redis, exclusive: bool
) -> None:
    """Four markets of one event, each quoted both sides: together they would risk $8.90
    (exclusive) or $11.00 (not); the event's override is $5."""
    k = Keys()
    tickers = [f"KXEV-{i}" for i in range(4)]
    await seed_event(aredis, k, tickers, "KXEV", exclusive)
    await aredis.hset(k.cfg_events, mapping={"KXEV": "5", "version": "1"})
    exchange = FakeExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)
    try:
        assert service.configs.event_limit("KXEV") == 5_000_000
        for t in tickers:
            await publish(aredis, k, t, 4100, 4500)
        await steps(service, ctx, 3)
        assert exchange.orders  # it quoted
        worst = event_worst_at_exchange(exchange, tickers, exclusive)
        assert worst <= 5_000_000 and len(exchange.orders) < 8  # some were held back
        # the ledger holds what rests and the room ahead of it (services/executor/ahead.py)
        assert worst <= await read_event_worst(aredis, k, "KXEV") <= 5_000_000
    finally:
        await service.stop(ctx)


@pytest.mark.parametrize("exclusive", [True, False])
async def test_a_position_of_an_unquoted_market_counts_in_its_event_after_a_restart(
    settings: Settings, aredis: aioredis.Redis, exclusive: bool
) -> None:
    """An executor restarts (kill -9): its rebuild of the ledger dropped every part of its
    markets from their events and put back only those whose market it had read, and at start it
    had read none for a market it only holds a position in. The $4 held in KXEV-0 vanished from
    its event until the next full refresh, and the first wave quoted the other markets up to the
    $7 limit on top of it (one way for the short chaos run to see an event past its limit just
    after the executor was killed)."""
    k = Keys()
    tickers = [f"KXEV-{i}" for i in range(4)]
    await seed_event(aredis, k, tickers, "KXEV", exclusive)
    await aredis.hset(k.cfg_events, mapping={"KXEV": "7", "version": "1"})
    held = Position(tickers[0], 1000, 4_000_000)  # 10 YES at $0.40: $4 lost if NO
    await aredis.hset(k.pos(tickers[0]), mapping=encode_position(held))
    exchange = FakeExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)
    try:
        # $4, and the exchange's rounding of a cost basis (COST_ROUNDING)
        assert await read_event_worst(aredis, k, "KXEV") == 4_000_000 + COST_ROUNDING
        for t in tickers[1:]:  # KXEV-0 is not quoted (the strategy holds back, say)
            await publish(aredis, k, t, 4100, 4500)
        await steps(service, ctx, 3)
        assert exchange.orders  # it quoted
        orders = list(exchange.orders.values())
        losses = [market_loss(held.position, held.cost, [])]
        losses += [market_loss(0, 0, [o for o in orders if o.ticker == t]) for t in tickers[1:]]
        assert event_worst_loss(losses, exclusive) <= 7_000_000
    finally:
        await service.stop(ctx)


async def test_a_stale_value_in_the_ledger_never_lets_a_new_order_past_the_cap(
    aredis: aioredis.Redis,
) -> None:
    """A bid filled: its exposure moved to the position, but the side's old value is still in
    the ledger (its pass is working). A new bid of the same size does not raise the side's
    value above the stale one, yet it adds what it costs: it is held to the cap. Seen on the
    event scenario, where such a re-quote took an event past its limit."""
    k = Keys()
    lease = Lease(aredis, k, "executor", get_logger("executor"))
    assert not await lease.try_acquire()
    ledger = Ledger(aredis, k, lease.key, lambda: lease.token)

    async def write(values: dict[str, int], before: dict[str, int], cap: int) -> str:
        pipe = aredis.pipeline(transaction=False)
        ledger.queue_reserve(pipe, "T", values, cap, before=before)
        (reply,) = await pipe.execute()
        return ledger.answered(values, reply).outcome

    pos, bid = field("pos", "T"), field("bid", "T")
    assert await write({pos: 0, bid: 6_000_000}, {pos: 0, bid: 0}, 10_000_000) == "ok"
    assert await write({pos: 6_000_000}, {pos: 6_000_000}, NO_CAP) == "ok"  # the fill
    assert await read_total(aredis, k) == 12_000_000  # overstated until the side is released
    new_bid = await write({pos: 6_000_000, bid: 6_000_000}, {pos: 6_000_000, bid: 0}, 10_000_000)
    assert new_bid == "denied"
    assert await write({bid: 0}, {bid: 0}, NO_CAP) == "ok"  # released: exactly what rests
    assert await read_total(aredis, k) == 6_000_000


class CountingExchange(FakeExchange):
    """Notes how many Redis round trips had gone out when each create leaves."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, sent: Counter[str]) -> None:
        super().__init__(redis, keys)
        self.sent = sent
        self.before_send: list[dict[str, int]] = []

    async def place(self, request: OrderRequest) -> Order:
        self.before_send.append(dict(self.sent))
        return await super().place(request)


async def test_one_redis_round_trip_between_the_targets_and_the_create(
    settings: Settings, aredis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard read, the ledger reservation and the pending record are one Lua step: after
    the read that brings the targets, one round trip and the request leaves (it took two: the
    guard's read, then the record)."""
    k, sent = Keys(), Counter[str]()
    ticker = "KX-RTT"
    await seed(aredis, k, ticker)
    exchange = CountingExchange(aredis, k, sent)
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, ticker, 4100, None)
        await steps(service, ctx, 2)  # the market is known; its bid rests
        now = ctx.clock.monotonic_ms()
        service.schedule.last_risk_ms = service.schedule.last_reconcile_ms = now
        await publish(aredis, k, ticker, 4100, 4500)  # an ask to place
        counted = count_round_trips(monkeypatch)
        exchange.sent = counted
        load_scripts = aioredis.client.Pipeline.load_scripts

        async def asks_first(self: aioredis.client.Pipeline) -> None:
            counted["SCRIPT EXISTS"] += 1  # a round trip of its own before the pipeline's
            await load_scripts(self)

        monkeypatch.setattr(aioredis.client.Pipeline, "load_scripts", asks_first)
        await service.step(ctx)
        await settled(service)
        monkeypatch.undo()
        (at_send,) = exchange.before_send[-1:]
        assert at_send == {"XREAD": 1, "pipeline": 1}, at_send
        assert exchange.recorded_before_send[-1]  # the order was in Redis before it left
    finally:
        await service.stop(ctx)


async def test_a_second_executor_of_a_shard_waits_until_the_first_stops(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k = Keys()
    ticker = "KX-LEASE"
    await seed(aredis, k, ticker)
    first_exchange, second_exchange = FakeExchange(aredis, k), FakeExchange(aredis, k)
    first, ctx = await started(settings, aredis, first_exchange)
    second_ctx = Context(
        executor_name(settings), settings, aredis, Keys(), ManualClock(NOW), get_logger("executor")
    )
    second = await build(second_ctx, gateway=second_exchange)  # type: ignore[arg-type]
    starting = asyncio.create_task(second.start(second_ctx))
    await asyncio.sleep(0.5)
    assert not starting.done()  # waits: the first holds shard "executor"
    holder = await aredis.get(k.lease("executor"))
    assert holder is not None and holder.endswith(first.lease.owner)
    await publish(aredis, k, ticker, 4100, 4500)
    await steps(first, ctx, 2)
    assert len(first_exchange.orders) == 2 and not second_exchange.orders
    await first.stop(ctx)  # a clean stop hands the lease over at once
    await asyncio.wait_for(starting, 5)
    assert second.lease.token > first.lease.token
    await second.stop(second_ctx)


async def test_an_old_executor_that_wakes_up_cannot_place(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Paused past its lease (a stopped VM, a long GC): another executor took the shard. Its
    next pass is refused by the ledger's Lua step before anything is recorded or sent."""
    k = Keys()
    ticker = "KX-WAKE"
    await seed(aredis, k, ticker)
    exchange = FakeExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)
    try:
        other = Lease(aredis, k, "executor", get_logger("executor"), owner="other")
        await aredis.delete(k.lease("executor"))  # expired while it slept
        assert await other.try_acquire() == ""
        await publish(aredis, k, ticker, 4100, 4500)
        await steps(service, ctx, 2)
        assert exchange.orders == {}  # nothing sent
        assert await aredis.hgetall(k.orders(ticker)) == {}  # nothing recorded
    finally:
        await service.stop(ctx)


async def test_a_settled_position_is_released(settings: Settings, aredis: aioredis.Redis) -> None:
    """A market that settled leaves the live positions (its hash is removed): its exposure
    leaves the ledger, though nothing quotes it any more."""
    k = Keys()
    held = Position("KX-SET", 1000, 4_000_000, last_fill_ms=NOW - 1_000)
    await aredis.hset(k.pos("KX-SET"), mapping=encode_position(held))
    await seed(aredis, k, "KX-OTHER")
    service, ctx = await started(settings, aredis, FakeExchange(aredis, k))
    try:
        assert await read_total(aredis, k) == 4_000_000
        await aredis.delete(k.pos("KX-SET"))  # settled: closed out by fills
        ctx.clock.advance(2_000)  # type: ignore[attr-defined]
        await steps(service, ctx, 4)
        assert await read_total(aredis, k) == 0
        assert "KX-SET" not in service.markets.positions
    finally:
        await service.stop(ctx)


async def test_a_redis_that_forgot_the_scripts_still_takes_reservations(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Reservations go by the script's hash alone; a Redis that restarted or flushed its
    scripts answers NOSCRIPT, and the script is loaded again."""
    k = Keys()
    await seed(aredis, k, "KX-NOSCRIPT")
    exchange = FakeExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)
    try:
        await aredis.script_flush()
        await publish(aredis, k, "KX-NOSCRIPT", 4100, 4500)
        await steps(service, ctx, 3)
        assert len(exchange.orders) == 2
        # $4.80 rests; four ticks ahead of it: 5 at 45 c and 5 at 41 c ($2.25 + $2.95)
        assert await read_total(aredis, k) == 5_200_000
    finally:
        await service.stop(ctx)


async def test_an_executor_of_another_shard_count_waits_while_the_others_run(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """One executor for every market (1 shard) and one configured for shard 0 of 2 would hold
    different leases over overlapping markets: the second waits while the first's layout lives."""
    from dataclasses import replace

    k = Keys()
    await seed(aredis, k, "KX-LAYOUT")
    first, ctx = await started(settings, aredis, FakeExchange(aredis, k))
    sharded = replace(settings, shard_count=2, shard_index=0)
    second_ctx = Context(
        executor_name(sharded), sharded, aredis, Keys(), ManualClock(NOW), get_logger("executor")
    )
    second = await build(second_ctx, gateway=FakeExchange(aredis, k))  # type: ignore[arg-type]
    starting = asyncio.create_task(second.start(second_ctx))
    try:
        await asyncio.sleep(0.5)
        waited = not starting.done()  # waits: its lease is free, but a 1-shard layout runs
        lease_taken = await aredis.get(k.lease("executor-0"))
    finally:
        await first.stop(ctx)
        await aredis.delete(k.lease_layout)  # the layout's TTL ran out after the last one stopped
        await asyncio.wait_for(starting, 5)
        layout = await aredis.get(k.lease_layout)
        await second.stop(second_ctx)
    assert waited and lease_taken is None
    assert layout == "2"


class SigningExchange(FakeExchange):
    """Notes when the executor asks for a request to be signed ahead, and what the executor
    knew of the order then (``service.working``: whether the ledger step had been answered)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        super().__init__(redis, keys)
        self.events: list[tuple[str, str]] = []
        self.service: ExecutorService | None = None

    def presign(self, order: Order | None) -> None:
        assert self.service is not None
        known = {o.client_order_id for o in self.service.working.live("KX-SIGN")}
        self.events.append(("presign", "amend" if order else f"create, {len(known)} known"))

    async def place(self, request: OrderRequest) -> Order:
        assert self.service is not None
        known = self.service.working.live(request.ticker)
        self.events.append(("place", f"{len(known)} known"))
        return await super().place(request)

    async def amend(self, order: Order, price: int, remaining: int) -> Order:
        self.events.append(("amend", order.client_order_id))
        return await super().amend(order, price, remaining)


async def test_the_request_is_signed_while_redis_answers_the_ledger_step(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Signing (an RSA-2048 signature is ~0.4 ms here) was on the path after the ledger step's
    answer; now the create and the amend are signed while Redis answers it, before the executor
    knows the step passed, and the request that follows is sent signed."""
    k, ticker = Keys(), "KX-SIGN"
    await seed(aredis, k, ticker)
    exchange = SigningExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)
    exchange.service = service
    try:
        await publish(aredis, k, ticker, 4100, None)
        await steps(service, ctx, 2)
        await settled(service)
        assert exchange.events[-2:] == [("presign", "create, 0 known"), ("place", "1 known")]
        # the bid moves up past the room it holds ahead (45 c): an amend the ledger step clears
        await publish(aredis, k, ticker, 4600, None)
        await steps(service, ctx)
        await settled(service)
        assert [e[0] for e in exchange.events[-2:]] == ["presign", "amend"]
    finally:
        await service.stop(ctx)


async def amended_after(
    settings: Settings, aredis: aioredis.Redis, bid: int, size: int = 500
) -> tuple[list[str], int]:
    """A bid at 41 c resting, then the targets move it to ``bid`` (``size``): the order in
    which the ledger step and the amend went, and the bid side's ledger value after."""
    k, ticker = Keys(), "KX-SIGN"
    await seed(aredis, k, ticker)
    exchange = SigningExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)
    exchange.service = service
    step = service.market_pass._ledger_step

    async def noted(*args: object, **kwargs: object) -> object:
        exchange.events.append(("ledger", ""))
        return await step(*args, **kwargs)  # type: ignore[arg-type]

    service.market_pass._ledger_step = noted  # type: ignore[method-assign]
    try:
        await publish(aredis, k, ticker, 4100, None)
        await steps(service, ctx, 2)
        await settled(service)
        exchange.events.clear()
        await publish(aredis, k, ticker, bid, None, size)
        await steps(service, ctx)
        await settled(service)
        order = next(iter(exchange.orders.values()))
        assert (order.price, order.remaining) == (bid, size)
        value = parse_value(await aredis.hget(k.ledger, field("bid", ticker)))
        return [e[0] for e in exchange.events if e[0] != "presign"], value
    finally:
        await service.stop(ctx)


async def test_a_quote_moved_away_from_the_market_is_amended_before_any_ledger_step(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """A bid moved down (an ask up) leaves less at risk in every outcome: it goes at once, as a
    decrease does, not a Redis round trip later (the tick path's one round trip, issue 24). The
    ledger counted the order as it rested meanwhile (more than the exchange), and is released
    to what rests after the answer, and the room ahead of it (four ticks up: 43 c)."""
    events, value = await amended_after(settings, aredis, 3900)
    assert events == ["amend", "ledger"]
    assert value == 4300 * 500


async def test_an_amend_that_adds_risk_still_waits_for_the_ledger_step(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Up (toward the market) past the room the side holds ahead (four ticks: 45 c), or down
    with more contracts: reserved (and recorded) first. The value after is what rests and the
    room ahead of it."""
    events, value = await amended_after(settings, aredis, 4600)
    assert events[:2] == ["ledger", "amend"] and value == 5000 * 500
    await aredis.flushall()
    events, value = await amended_after(settings, aredis, 3900, 700)
    assert events[:2] == ["ledger", "amend"] and value == 4300 * 700


async def test_a_side_the_ledger_refused_is_not_signed_for_again(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """An event or the account at its limit refuses a side at every book change: each would
    cost a signature made for nothing (~0.4 ms with an RSA key). After the ledger refused it,
    the side's next attempts are not signed ahead."""
    k, ticker = Keys(), "KX-SIGN"
    await seed(aredis, k, "KX-A")
    await seed(aredis, k, ticker)
    await set_cap(aredis, k, 5_000_000)  # $5: two 5-contract bids at 41 c fit, alone
    exchange = SigningExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)
    exchange.service = service
    try:
        await publish(aredis, k, "KX-A", 4100, None)
        await steps(service, ctx, 2)
        await settled(service)
        assert [e[0] for e in exchange.events] == ["presign", "place"]
        exchange.events.clear()
        # another shard's $2 in the ledger, not yet in this executor's view of the account
        await aredis.hincrby(k.ledger, "total", 2_000_000)
        await publish(aredis, k, ticker, 4100, None)
        await steps(service, ctx, 2)
        await settled(service)
        assert exchange.events == [("presign", "create, 0 known")]  # signed, then refused
        assert service.market_pass.last_denials[(ticker, Side.BID)] == "max_total_exposure"
        for bid in (4000, 3900):
            await publish(aredis, k, ticker, bid, None)
            await steps(service, ctx)
            await settled(service)
        assert exchange.events == [("presign", "create, 0 known")]  # refused, never signed
    finally:
        await service.stop(ctx)


@pytest.mark.parametrize(
    ("side", "price", "size", "status", "at_once"),
    [
        (Side.BID, 3900, 500, MarketStatus.ACTIVE, True),  # a bid lower
        (Side.BID, 3900, 300, MarketStatus.ACTIVE, True),  # lower and smaller
        (Side.BID, 4300, 500, MarketStatus.ACTIVE, False),  # a bid higher: more at risk
        (Side.BID, 3900, 700, MarketStatus.ACTIVE, False),  # lower but larger
        (Side.BID, 3900, 500, MarketStatus.INACTIVE, False),  # paused: the guard decides
        (Side.ASK, 6300, 500, MarketStatus.ACTIVE, True),  # an ask higher
        (Side.ASK, 5900, 500, MarketStatus.ACTIVE, False),  # an ask lower
    ],
)
def test_which_amends_lower_the_risk(
    side: Side, price: int, size: int, status: MarketStatus, at_once: bool
) -> None:
    resting = 4100 if side is Side.BID else 6100
    order = Order("KX", side, resting, 500, "c", status=OrderStatus.RESTING, remaining=500)
    action = Action(ActionKind.AMEND, "KX", side, price, size, order)
    meta = MarketMeta("KX", status, 0, PriceGrid.linear_cent())
    assert lowers_risk(action, meta) is at_once
    cancel = Action(ActionKind.CANCEL, "KX", side, resting, 0, order)
    assert lowers_risk(cancel, meta)  # always, open or not
