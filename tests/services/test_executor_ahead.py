"""Room held ahead of a resting quote (``services.executor.ahead``, issue 24), with the executor
against a real Redis: an amend toward the market within it goes before any ledger step, and the
limits still hold at the exchange."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
import redis.asyncio as aioredis

from common.domain import OrderStatus, Side
from common.keys import Keys
from common.ledger import field, parse_value, read_event_worst, read_total
from common.log import get_logger
from common.order_diff import ActionKind
from common.runtime import Context
from common.settings import Settings
from services.executor.ahead import ahead_cap, amended, moved_ahead
from services.executor.lease import LEASE_TTL_MS, Lease
from services.executor.service import ExecutorService
from tests.services.test_executor import FakeExchange, publish, seed, settled, started, steps
from tests.services.test_executor_ledger import (
    at_exchange,
    event_worst_at_exchange,
    seed_event,
    set_cap,
)

TICKER = "KX-AHEAD"
TICKS = Settings().executor_ahead_ticks  # the default: 4
AHEAD = 4100 + 100 * TICKS  # the resting bid's room ahead reaches this price


class NotingExchange(FakeExchange):
    """Notes each amend and (through ``watch``) each ledger step, in the order they went."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        super().__init__(redis, keys)
        self.events: list[str] = []

    async def amend(self, order, price, remaining):  # type: ignore[no-untyped-def]
        self.events.append("amend")
        return await super().amend(order, price, remaining)

    def watch(self, service: ExecutorService) -> None:
        step = service.market_pass._ledger_step

        async def noted(*args: object, **kwargs: object) -> object:
            self.events.append("ledger")
            return await step(*args, **kwargs)  # type: ignore[arg-type]

        service.market_pass._ledger_step = noted  # type: ignore[method-assign]


async def resting_bid(
    settings: Settings, aredis: aioredis.Redis
) -> tuple[ExecutorService, object, NotingExchange]:
    """A bid of 5 at 41 c resting and answered, its events cleared."""
    k = Keys()
    await seed(aredis, k, TICKER)
    exchange = NotingExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)
    exchange.watch(service)
    await publish(aredis, k, TICKER, 4100, None)
    await steps(service, ctx, 2)
    await settled(service)
    exchange.events.clear()
    return service, ctx, exchange


async def moved(service: ExecutorService, ctx: object, aredis: aioredis.Redis, bid: int) -> None:
    await publish(aredis, Keys(), TICKER, bid, None)
    await steps(service, ctx, 1)  # type: ignore[arg-type]
    await settled(service)


async def bid_value(aredis: aioredis.Redis) -> int:
    return parse_value(await aredis.hget(Keys().ledger, field("bid", TICKER)))


async def test_an_amend_toward_the_market_within_the_room_ahead_goes_before_any_ledger_step(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The resting bid (41 c) holds four ticks of room ahead (45 c): moved up to 45 c it goes at
    once, and the ledger step after its answer holds the room ahead of 45 c; moved past that it
    waits for the step, as before."""
    service, ctx, exchange = await resting_bid(settings, aredis)
    try:
        assert await bid_value(aredis) == AHEAD * 500  # what rests, four ticks ahead
        await moved(service, ctx, aredis, AHEAD)
        assert exchange.events == ["amend", "ledger"]
        assert await bid_value(aredis) == (AHEAD + 100 * TICKS) * 500
        exchange.events.clear()
        past = AHEAD + 100 * (TICKS + 1)
        await moved(service, ctx, aredis, past)
        assert exchange.events[:2] == ["ledger", "amend"]
        (order,) = exchange.orders.values()
        assert order.price == past
    finally:
        await service.stop(ctx)  # type: ignore[arg-type]


async def test_with_no_room_ahead_the_ledger_holds_what_rests_and_every_amend_waits(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, exchange = await resting_bid(replace(settings, executor_ahead_ticks=0), aredis)
    try:
        assert await bid_value(aredis) == 4100 * 500
        await moved(service, ctx, aredis, 4300)
        assert exchange.events[:2] == ["ledger", "amend"]
        assert await bid_value(aredis) == 4300 * 500
    finally:
        await service.stop(ctx)  # type: ignore[arg-type]


async def test_no_amend_goes_on_the_room_ahead_while_another_step_of_its_market_is_on_its_way(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The other side's release or the keeper's sync may be lowering what the ledger holds for
    this market (written before this pass began, answered after): until it is answered the
    amend takes the ledger step, which runs after it in Redis."""
    service, ctx, exchange = await resting_bid(settings, aredis)
    try:
        service.ledger.writing[TICKER] += 1  # a step of this market on its way
        await moved(service, ctx, aredis, AHEAD)
        assert exchange.events[:2] == ["ledger", "amend"]
    finally:
        await service.stop(ctx)  # type: ignore[arg-type]


async def test_a_stale_lease_sends_even_a_covered_amend_through_the_fenced_step(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Paused past half its lease (a stopped VM), the executor cannot vouch that the lease is
    still its own: the amend goes the fenced way, and another executor took the shard
    meanwhile, so it is refused and nothing moves at the exchange."""
    service, ctx, exchange = await resting_bid(settings, aredis)
    try:
        service.lease.fresh_until = 0.0  # its clock says the last renewal is too old
        await aredis.delete(Keys().lease("executor"))  # expired while it slept
        other = Lease(aredis, Keys(), "executor", get_logger("executor"), owner="other")
        assert await other.try_acquire() == ""
        await moved(service, ctx, aredis, 4300)
        assert "amend" not in exchange.events and "ledger" in exchange.events
        (order,) = exchange.orders.values()
        assert order.price == 4100
    finally:
        await service.stop(ctx)  # type: ignore[arg-type]


async def test_a_lease_is_fresh_for_half_its_ttl_after_it_was_taken_or_renewed(
    aredis: aioredis.Redis,
) -> None:
    k, log = Keys(), get_logger("executor")
    lease = Lease(aredis, k, "executor", log)
    assert not lease.fresh
    assert await lease.try_acquire() == ""
    assert lease.fresh
    lease.fresh_until -= LEASE_TTL_MS / 2000  # half the TTL passed since (a paused process)
    assert not lease.fresh
    assert await lease.renew() and lease.fresh
    await aredis.delete(k.lease("executor"))  # expired; another took it
    assert await Lease(aredis, k, "executor", log, owner="other").try_acquire() == ""
    assert not await lease.renew() and not lease.fresh


async def test_the_room_ahead_is_held_only_within_nine_tenths_of_the_cap(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """$2.30 cap: the bid ($2.05) fits, its room ahead ($2.25) is past 9/10 of it ($2.07):
    the ledger holds what rests, and the move up waits for the step (which refuses it here:
    until answered the amend counts beside the order it replaces)."""
    k = Keys()
    await set_cap(aredis, k, 2_300_000)
    assert ahead_cap(2_300_000) == 2_070_000
    service, ctx, exchange = await resting_bid(settings, aredis)
    try:
        assert await read_total(aredis, k) == 4100 * 500
        await moved(service, ctx, aredis, 4300)
        assert exchange.events[:1] == ["ledger"] and "amend" not in exchange.events
        assert at_exchange(exchange) <= 2_300_000
    finally:
        await service.stop(ctx)  # type: ignore[arg-type]


async def test_an_idle_sides_room_ahead_stays_until_its_order_goes(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The keeper's sync releases what no longer rests in sides no pass works on: it leaves a
    side's room ahead (reserved, checked) and drops it once the order is gone."""
    service, ctx, _ = await resting_bid(settings, aredis)
    try:
        await service.safety.keeper.sync([TICKER])
        assert await bid_value(aredis) == AHEAD * 500
        (order,) = service.working.live(TICKER)
        service.working.apply(replace(order, status=OrderStatus.CANCELED, remaining=0))
        await service.safety.keeper.sync([TICKER])
        assert await bid_value(aredis) == 0
    finally:
        await service.stop(ctx)  # type: ignore[arg-type]


async def test_in_an_event_each_side_keeps_its_room_ahead_when_the_other_writes(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """A market's pass writes both sides' parts of its event: each writes the other's with its
    room ahead too, so the ask's move toward the market after the bid's pass goes at once."""
    k = Keys()
    await seed_event(aredis, k, [TICKER], "KXEV", True)
    exchange = NotingExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)
    exchange.watch(service)
    try:
        await publish(aredis, k, TICKER, 4100, 4500)
        await steps(service, ctx, 2)
        await publish(aredis, k, TICKER, 4200, 4500)  # a tick: the bid stays (diff tolerance)
        await steps(service, ctx, 2)
        exchange.events.clear()
        await publish(aredis, k, TICKER, 4200, 4300)  # the ask two ticks down
        await steps(service, ctx, 1)
        await settled(service)
        assert exchange.events[:1] == ["amend"]
        assert sorted(o.price for o in exchange.orders.values()) == [4100, 4300]
    finally:
        await service.stop(ctx)


def ticks_moved(rng: random.Random, price: int) -> int:
    return min(9000, max(1000, price + 100 * rng.choice((-3, -2, -1, 1, 2, 3))))


async def walk(
    service: ExecutorService,
    ctx: Context,
    quotes: dict[str, tuple[int, int]],
    rng: random.Random,
    rounds: int,
    check: Callable[[], Awaitable[None]],
) -> None:
    """Each round every market's bid and ask move 1-3 ticks either way; ``check`` after it."""
    for _ in range(rounds):
        for t, (bid, ask) in quotes.items():
            bid = ticks_moved(rng, bid)
            ask = max(bid + 100, ticks_moved(rng, ask))
            quotes[t] = (bid, ask)
            await publish(ctx.redis, ctx.keys, t, bid, ask)
        await steps(service, ctx, 2)
        await settled(service)
        await check()


@pytest.mark.parametrize("seed_", [1, 2])
@pytest.mark.parametrize("cap", [28_000_000, 200_000_000])
async def test_quotes_walking_toward_and_away_from_the_market_never_pass_the_cap(
    settings: Settings, aredis: aioredis.Redis, seed_: int, cap: int
) -> None:
    """Twelve markets quoted both sides under a $28 cap (about half what they want) or a $200
    one, every quote moved 1-3 ticks either way each round: at the exchange the worst case
    never passes the cap, and the ledger never holds less than rests there."""
    k, rng = Keys(), random.Random(seed_)
    tickers = [f"KX-{i:02d}" for i in range(12)]
    for t in tickers:
        await seed(aredis, k, t)
    await set_cap(aredis, k, cap)
    exchange = FakeExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)
    covers = service.market_pass.ahead.covers
    covered: list[bool] = []

    def noted(*args: object) -> bool:
        covered.append(covers(*args))  # type: ignore[arg-type]
        return covered[-1]

    service.market_pass.ahead.covers = noted  # type: ignore[method-assign]

    async def check() -> None:
        worst = at_exchange(exchange)
        assert worst <= cap
        assert worst <= await read_total(aredis, k) <= cap

    try:
        await walk(service, ctx, {t: (4100, 4500) for t in tickers}, rng, 12, check)
        assert not all(covered)
        if cap > 100_000_000:  # room enough to hold ahead: amends went both ways
            assert sum(covered) >= 10
    finally:
        await service.stop(ctx)


@pytest.mark.parametrize("exclusive", [True, False])
async def test_an_events_limit_holds_while_quotes_move_toward_the_market(
    settings: Settings, aredis: aioredis.Redis, exclusive: bool
) -> None:
    k, rng = Keys(), random.Random(7)
    tickers = [f"KXEV-{i}" for i in range(4)]
    await seed_event(aredis, k, tickers, "KXEV", exclusive)
    await aredis.hset(k.cfg_events, mapping={"KXEV": "5", "version": "1"})
    exchange = FakeExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)

    async def check() -> None:
        worst = event_worst_at_exchange(exchange, tickers, exclusive)
        assert worst <= 5_000_000
        assert worst <= await read_event_worst(aredis, k, "KXEV")

    try:
        await walk(service, ctx, {t: (3000, 7000) for t in tickers}, rng, 10, check)
    finally:
        await service.stop(ctx)


def test_moved_ahead_and_amended_are_what_the_ledger_step_would_count() -> None:
    from common.domain import Order
    from common.grid import PriceGrid
    from common.order_diff import Action

    grid = PriceGrid.linear_cent()
    bid = Order("KX", Side.BID, 4100, 5, "b", "1", OrderStatus.RESTING, 0, 5)
    ask = Order("KX", Side.ASK, 9800, 5, "a", "2", OrderStatus.RESTING, 0, 5)
    in_flight = replace(bid, client_order_id="in-flight:b")
    ahead = moved_ahead([bid, ask, in_flight], Side.BID, grid, 2)
    assert [o.price for o in ahead] == [4300, 9800, 4100]  # executions keep their price
    assert [o.price for o in moved_ahead([ask], Side.ASK, grid, 2)] == [9600]
    top = replace(bid, price=9800)
    assert [o.price for o in moved_ahead([top], Side.BID, grid, 3)] == [9900]  # the grid's end
    amend = Action(ActionKind.AMEND, "KX", Side.BID, 4200, 3, bid)
    after = amended([bid, ask], [amend])
    assert after is not None and (after[0].price, after[0].resting_size) == (4200, 3)
    partly = replace(bid, filled=2, remaining=3)  # quoted 5, 2 filled: amended back to 5
    (room,) = moved_ahead([partly], Side.BID, grid, 1, size=5)
    assert (room.price, room.resting_size) == (4200, 5)
    place = Action(ActionKind.PLACE, "KX", Side.BID, 4200, 3)
    assert amended([bid, ask], [place]) is None  # a new order is recorded by the step
