"""The executor against an in-memory exchange (the Gateway protocol) and a real Redis."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis

from common.book import BookState, YesBook
from common.clock import ManualClock
from common.config import MarketConfig
from common.direct_redis import DirectRedis
from common.domain import (
    MarketMeta,
    MarketStatus,
    Order,
    OrderStatus,
    Quote,
    Side,
    Targets,
    is_own_client_order_id,
)
from common.event_loss import market_loss
from common.grid import PriceGrid
from common.kalshi.errors import OrderRejected, OutcomeUnknown
from common.kalshi.wire.orders import OrderRequest
from common.keys import Keys
from common.log import get_logger
from common.messages import decode_event, encode_event
from common.redis_codec import (
    decode_order,
    encode_book,
    encode_market,
    encode_market_config,
    encode_order,
    encode_targets,
)
from common.runtime import Context
from common.settings import Settings, load_settings
from services.executor.groups import Group
from services.executor.service import ExecutorService, build, executor_name
from services.executor.state import START_FENCE_MS
from tests.support.state import mark_restored

NOW = 1_800_000_000_000


class FakeExchange:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis, self.keys = redis, keys
        self.orders: dict[str, Order] = {}
        self.unknown_next = False
        self.lose_unknown = False
        self.cancel_alls = 0
        self.cancel_owns = 0
        self.recorded_before_send: list[bool] = []
        self.created_groups: list[tuple[int, int]] = []  # (limit, exchange_index)
        self.group_limits: dict[str, int] = {}
        self.ts_ms = NOW  # the exchange's own clock: a tick per change

    def stamp(self) -> int:
        self.ts_ms += 1
        return self.ts_ms

    async def create_group(self, contracts_limit: int, exchange_index: int = 0) -> str:
        self.created_groups.append((contracts_limit, exchange_index))
        return f"grp-{len(self.created_groups)}"

    async def reset_group(self, group_id: str) -> None:
        pass

    async def set_group_limit(self, group_id: str, contracts_limit: int) -> None:
        self.group_limits[group_id] = contracts_limit

    async def place(self, request: OrderRequest) -> Order:
        recorded = await self.redis.hget(self.keys.orders(request.ticker), request.client_order_id)
        self.recorded_before_send.append(recorded is not None)
        order = Order(
            request.ticker,
            request.side,
            request.price,
            request.count,
            request.client_order_id,
            f"ex-{len(self.orders)}",
            OrderStatus.RESTING,
            0,
            request.count,
            order_group_id=request.order_group_id,
            exchange_ms=self.stamp(),
        )
        if not (self.unknown_next and self.lose_unknown):
            self.orders[order.order_id or ""] = order
        if self.unknown_next:
            self.unknown_next = False
            raise OutcomeUnknown(request.client_order_id, "connection reset")
        return order

    async def amend(self, order: Order, price: int, remaining: int) -> Order:
        new = replace(
            self.orders[order.order_id or ""],
            price=price,
            remaining=remaining,
            exchange_ms=self.stamp(),
        )
        self.orders[new.order_id or ""] = new
        return new

    async def decrease(self, order: Order, remaining: int) -> Order:
        return await self.amend(order, order.price, remaining)

    async def cancel(self, order: Order) -> int:
        gone = self.orders.pop(order.order_id or "", None)
        return gone.remaining if gone else 0

    async def cancel_all(self) -> None:
        self.cancel_alls += 1
        self.orders.clear()

    async def cancel_own(self) -> None:
        self.cancel_owns += 1
        for order_id, order in list(self.orders.items()):
            if is_own_client_order_id(order.client_order_id):
                del self.orders[order_id]

    async def open_orders(self) -> list[Order]:
        return list(self.orders.values())

    async def lookup(self, order: Order) -> Order | None:
        return next(
            (o for o in self.orders.values() if o.client_order_id == order.client_order_id), None
        )

    async def aclose(self) -> None:
        pass


async def risk_checked(r: aioredis.Redis, k: Keys, now_ms: int, daily_pnl: int = 0) -> None:
    """The risk process alive and its last check at ``now_ms`` (an older one stops adding)."""
    await r.set(k.hb("risk"), "{}")
    await r.hset(
        k.risk,
        mapping={"last_check_ms": str(now_ms), "daily_pnl": str(daily_pnl), "check_failures": "0"},
    )


async def seed(r: aioredis.Redis, k: Keys, ticker: str) -> None:
    await mark_restored(r, k)
    # the strategy beats as strategy-N when it runs as shards
    for service in ("marketdata", "strategy", "strategy-0", "strategy-1", "fills"):
        await r.set(k.hb(service), "{}")
    await risk_checked(r, k, NOW)
    await r.sadd(k.cfg_markets, ticker)
    config = MarketConfig(
        ticker, enabled=True, max_inventory_yes=2000, max_inventory_no=2000, quote_size=500
    )
    await r.hset(k.cfg_market(ticker), mapping=encode_market_config(config, 1))
    await r.hset(
        k.market(ticker),
        mapping=encode_market(
            MarketMeta(ticker, MarketStatus.ACTIVE, NOW + 10**8, PriceGrid.linear_cent())
        ),
    )
    await r.hset(
        k.book(ticker),
        mapping=encode_book(
            BookState(ticker, YesBook(((4000, 100),), ((4600, 100),)), 1, 0, 0, False)
        ),
    )


async def publish(
    r: aioredis.Redis, k: Keys, ticker: str, bid: int | None, ask: int | None, size: int = 500
) -> None:
    targets = Targets(
        ticker,
        Quote(Side.BID, bid, size) if bid else None,
        Quote(Side.ASK, ask, size) if ask else None,
        "test",
        NOW,
    )
    fields = encode_targets(targets)
    await r.hset(k.targets(ticker), mapping=fields)
    await r.xadd(k.stream("targets"), encode_event("targets", {"ticker": ticker, **fields}))


async def started(
    settings: Settings, r: aioredis.Redis, exchange: FakeExchange, clock: ManualClock | None = None
) -> tuple[ExecutorService, Context]:
    ctx = Context(
        executor_name(settings),
        settings,
        r,
        Keys(),
        clock or ManualClock(NOW),
        get_logger("executor"),
    )
    service = await build(ctx, gateway=exchange)  # type: ignore[arg-type]
    await service.start(ctx)
    ctx.clock.advance(START_FENCE_MS)  # type: ignore[attr-defined]
    await service.safety.check_feeds()  # past the start fence: quoting may begin
    assert service.safety.pulled.reason == ""
    return service, ctx


async def settled(service: ExecutorService) -> None:
    """Until no pass runs (a pass that ends with its side due again starts the next itself)."""
    while service.schedule.inflight:
        await asyncio.gather(*list(service.schedule.inflight.values()))


def passes(service: ExecutorService, ticker: str) -> list[asyncio.Task[None]]:
    return [task for (t, _), task in service.schedule.inflight.items() if t == ticker]


async def steps(service: ExecutorService, ctx: Context, n: int = 6) -> None:
    for _ in range(n):
        await ctx.redis.hset(ctx.keys.risk, "last_check_ms", str(ctx.clock.now_ms()))
        await service.step(ctx)
        await settled(service)
        ctx.clock.advance(300)  # type: ignore[attr-defined]


async def fence_after_start(
    settings: Settings, r: aioredis.Redis, exchange: FakeExchange
) -> tuple[bool, bool]:
    """Whether quoting may begin at once after start, and after START_FENCE_MS."""
    ctx = Context(
        executor_name(settings), settings, r, Keys(), ManualClock(NOW), get_logger("executor")
    )
    service = await build(ctx, gateway=exchange)  # type: ignore[arg-type]
    await service.start(ctx)
    try:
        await service.safety.check_feeds()
        at_once = service.safety.pulled.reason == ""
        ctx.clock.advance(START_FENCE_MS)  # type: ignore[attr-defined]
        await service.safety.check_feeds()
        return at_once, service.safety.pulled.reason == ""
    finally:
        await service.stop(ctx)


async def test_a_first_start_quotes_as_soon_as_the_feeds_are_alive(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    await seed(aredis, Keys(), "KX")
    assert await fence_after_start(settings, aredis, FakeExchange(aredis, Keys())) == (True, True)


async def test_after_a_crash_it_waits_for_creates_that_may_still_land(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The predecessor's heartbeat outlives a kill -9 by its TTL: something may be in flight."""
    k = Keys()
    await seed(aredis, k, "KX")
    await aredis.set(k.hb("executor"), "{}")
    assert await fence_after_start(settings, aredis, FakeExchange(aredis, k)) == (False, True)


@pytest.mark.parametrize("status", [OrderStatus.PENDING, OrderStatus.UNKNOWN])
async def test_a_create_left_in_doubt_holds_quoting_back_for_the_fence(
    settings: Settings, aredis: aioredis.Redis, status: OrderStatus
) -> None:
    """A clean stop whose drain timed out leaves no heartbeat, but the record says it was sent."""
    k = Keys()
    await seed(aredis, k, "KX")
    sent = Order("KX", Side.BID, 4100, 500, "c-1", status=status, remaining=500, created_ms=NOW)
    await aredis.hset(k.orders("KX"), sent.client_order_id, encode_order(sent))
    assert await fence_after_start(settings, aredis, FakeExchange(aredis, k)) == (False, True)


async def test_places_records_before_sending_then_amends_and_cancels(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, 4500)
        await steps(service, ctx)
        assert sorted((o.side, o.price) for o in exchange.orders.values()) == [
            (Side.ASK, 4500),
            (Side.BID, 4100),
        ]
        assert exchange.recorded_before_send == [True, True]
        stored = [decode_order(v) for v in (await aredis.hgetall(k.orders("KX"))).values()]
        assert {o.status for o in stored} == {OrderStatus.RESTING}
        await publish(aredis, k, "KX", 3800, None)
        await steps(service, ctx)
        assert [(o.side, o.price) for o in exchange.orders.values()] == [
            (Side.BID, 3800)
        ]  # amended in place
        assert len(await aredis.hgetall(k.orders("KX"))) == 1
    finally:
        await service.stop(ctx)


@pytest.mark.parametrize("exists", [True, False])
async def test_an_unknown_outcome_is_resolved_by_lookup(
    settings: Settings, aredis: aioredis.Redis, exists: bool
) -> None:
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        exchange.unknown_next, exchange.lose_unknown = True, not exists
        await publish(aredis, k, "KX", 4100, None)
        await steps(service, ctx, 2)
        [order] = [decode_order(v) for v in (await aredis.hgetall(k.orders("KX"))).values()]
        assert order.status is OrderStatus.UNKNOWN
        await steps(service, ctx, 2)
        assert len(exchange.orders) == (1 if exists else 0)  # nothing placed while it is unknown
        ctx.clock.advance(20_000)  # type: ignore[attr-defined]
        await service.reconciler.reconcile()
        await steps(service, ctx, 3)
        resting = [o for o in exchange.orders.values() if o.side is Side.BID]
        assert len(resting) == 1  # found and kept, or known absent and placed once
    finally:
        await service.stop(ctx)


async def test_halt_cancels_everything_and_places_nothing(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, 4500)
        await steps(service, ctx)
        assert len(exchange.orders) == 2
        from common.messages import ControlCommand

        await service.safety.on_control(ControlCommand("halt", "test"))
        await asyncio.wait_for(service.safety.cancel_all_task, 5)  # type: ignore[arg-type]
        await publish(aredis, k, "KX", 4200, 4400)
        await steps(service, ctx)
        assert exchange.cancel_alls == 1 and exchange.orders == {}
        assert await aredis.hget(k.risk, "halted") == "1"  # a heard halt is made durable
    finally:
        await service.stop(ctx)


async def test_each_shard_acts_only_on_its_markets(redis_url: str, aredis: aioredis.Redis) -> None:
    from common.sharding import shard_of

    k = Keys()
    tickers = [f"KX-{i}" for i in range(6)]
    for t in tickers:
        await seed(aredis, k, t)
    exchanges = []
    clock = ManualClock(NOW)  # one time line: the second shard starts after the first traded
    for index in (0, 1):
        s = load_settings(
            {"DORA_REDIS_URL": redis_url, "DORA_SHARD_INDEX": str(index), "DORA_SHARD_COUNT": "2"},
            read_file=False,
        )
        exchange = FakeExchange(aredis, k)
        service, ctx = await started(s, aredis, exchange, clock)
        for t in tickers:
            await publish(aredis, k, t, 4100, 4500)
        await steps(service, ctx)
        await service.stop(ctx)
        exchanges.append(exchange)
    for index, exchange in enumerate(exchanges):
        traded = {o.ticker for o in exchange.orders.values()}
        assert traded == {t for t in tickers if shard_of(t, 2) == index}
    # and neither touched the other's working orders in Redis
    for t in tickers:
        assert len(await aredis.hgetall(k.orders(t))) == 2, t


class GroupExchange(FakeExchange):
    """Order groups as Kalshi runs them: a fired group rejects new orders until reset."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        super().__init__(redis, keys)
        self.groups: dict[str, bool] = {}  # id -> fired
        self.resets = 0
        self.requests: list[OrderRequest] = []

    async def create_group(self, contracts_limit: int, exchange_index: int = 0) -> str:  # type: ignore[override]
        group_id = f"g{len(self.groups)}"
        self.groups[group_id] = False
        return group_id

    async def reset_group(self, group_id: str) -> None:
        self.groups[group_id] = False
        self.resets += 1

    async def place(self, request: OrderRequest) -> Order:
        from common.kalshi.errors import OrderRejected

        self.requests.append(request)
        if request.order_group_id and self.groups[request.order_group_id]:
            raise OrderRejected(
                "invalid order", status=400, code="invalid_order", details="order group triggered"
            )
        return await super().place(request)


async def group_fired(
    redis_url: str, aredis: aioredis.Redis
) -> tuple[ExecutorService, Context, GroupExchange]:
    """KX quoted on both sides in its order group g0, which the exchange then fires (too many
    contracts in 15 s) and so cancels its orders; the executor has reconciled since."""
    k = Keys()
    await seed(aredis, k, "KX")
    s = load_settings(
        {"DORA_REDIS_URL": redis_url, "DORA_EXECUTOR_ORDER_GROUP_CONTRACTS": "20"}, read_file=False
    )
    exchange = GroupExchange(aredis, k)
    service, ctx = await started(s, aredis, exchange)
    await publish(aredis, k, "KX", 4100, 4500)
    await steps(service, ctx)
    exchange.groups["g0"] = True
    exchange.orders.clear()
    await service.reconciler.reconcile()
    return service, ctx, exchange


async def test_orders_join_a_market_order_group_and_a_fired_group_cools_down(
    redis_url: str, aredis: aioredis.Redis
) -> None:
    service, ctx, exchange = await group_fired(redis_url, aredis)
    try:
        assert {r.order_group_id for r in exchange.requests} == {"g0"}
        stored = Group.decode(await aredis.hget(Keys().order_groups, "KX"))
        assert stored is not None and stored.group_id == "g0"
        await steps(service, ctx)
        placed_while_fired = len(exchange.orders)
        assert placed_while_fired == 0 and service.groups.cooldown_until_ms
        ctx.clock.advance(31_000)  # type: ignore[attr-defined]
        await service.reconciler.reconcile()
        await steps(service, ctx)
        assert exchange.resets == 1 and len(exchange.orders) == 2  # reset, quoting again
    finally:
        await service.stop(ctx)


async def test_a_place_held_back_by_a_cooling_group_records_and_logs_nothing(
    redis_url: str, aredis: aioredis.Redis
) -> None:
    """A fired order group cools down before quoting again: a place in the cooldown is not
    sent, so it is not recorded either (a PENDING record would block its side after the
    cooldown), and the trade log never gets a cancel for an order that never existed."""
    k = Keys()
    service, ctx, exchange = await group_fired(redis_url, aredis)
    try:
        await steps(service, ctx)  # both places rejected by the fired group: it cools down
        assert service.groups.cooldown_until_ms and not exchange.orders
        ctx.clock.advance(27_000)  # late in the cooldown, new targets come
        await publish(aredis, k, "KX", 4200, 4600)
        await steps(service, ctx, 2)
        assert await aredis.hgetall(k.orders("KX")) == {}  # not sent, so not recorded
        ctx.clock.advance(3_000)  # the cooldown is over: both sides quote at once
        await steps(service, ctx)
        assert sorted((o.side, o.price) for o in exchange.orders.values()) == [
            (Side.ASK, 4600),
            (Side.BID, 4200),
        ]
        ctx.clock.advance(20_000)
        await service.reconciler.reconcile()
        await steps(service, ctx)
        sent = {r.client_order_id for r in exchange.requests}
        logged = [decode_event(fields)[1] for _, fields in await aredis.xrange(k.stream("orders"))]
        assert logged and {e["client_order_id"] for e in logged} <= sent
    finally:
        await service.stop(ctx)


async def test_one_order_group_per_market_even_when_both_sides_place_at_once(
    redis_url: str, aredis: aioredis.Redis
) -> None:
    k = Keys()
    for t in ("KX-A", "KX-B", "KX-C"):
        await seed(aredis, k, t)
    s = load_settings(
        {"DORA_REDIS_URL": redis_url, "DORA_EXECUTOR_ORDER_GROUP_CONTRACTS": "20"}, read_file=False
    )
    exchange = GroupExchange(aredis, k)
    service, ctx = await started(s, aredis, exchange)
    try:
        for t in ("KX-A", "KX-B", "KX-C"):
            await publish(aredis, k, t, 4100, 4500)
        await steps(service, ctx)
        assert len(exchange.requests) == 6 and len(exchange.groups) == 3
        by_market = {r.ticker: set() for r in exchange.requests}
        for r in exchange.requests:
            by_market[r.ticker].add(r.order_group_id)
        assert all(len(ids) == 1 for ids in by_market.values())
    finally:
        await service.stop(ctx)


async def test_a_create_that_lands_after_a_cancel_all_is_not_forgotten(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The race the chaos soak found: a quote pull (cancel-all) while a create is in flight.
    The order that lands after the cancel-all still rests; the executor must keep tracking it
    rather than mark it cancelled and quote the same side twice."""
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, None)
        await steps(service, ctx)
        [order] = exchange.orders.values()
        landed_late = service.working.get("KX", order.client_order_id)
        assert landed_late is not None
        # it was answered after the cancel-all went out: updated later than the send
        await service.working.save(replace(landed_late, updated_ms=ctx.clock.now_ms() + 5))

        async def cancel_all_before_it_landed() -> None:
            exchange.cancel_alls += 1  # the exchange cancelled what rested then: not this one

        exchange.cancel_all = cancel_all_before_it_landed  # type: ignore[method-assign]
        service.safety.start_cancel_all("feeds silent")
        await asyncio.wait_for(service.safety.cancel_all_task, 5)  # type: ignore[arg-type]
        assert service.working.get("KX", order.client_order_id) is not None
        await steps(service, ctx)
        assert [o.side for o in exchange.orders.values()] == [Side.BID]  # never two bids
    finally:
        await service.stop(ctx)


async def test_a_fill_counted_twice_never_makes_it_forget_a_resting_order(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The other race the chaos soak found: an amend's answer already reflected a fill, then the
    fill event arrives and the arithmetic says 'fully executed' while 2 contracts still rest."""
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, None)
        await steps(service, ctx)
        [order] = exchange.orders.values()
        exchange.orders[order.order_id or ""] = replace(
            order, filled=300, remaining=200
        )  # the truth
        mine = service.working.get("KX", order.client_order_id)
        await service.working.save(replace(mine, filled=300, remaining=200))  # type: ignore[arg-type]
        fill = {
            "ticker": "KX",
            "order_id": order.order_id,
            "client_order_id": order.client_order_id,
            "count": 300,
            "position_after": 300,
        }
        await aredis.xadd(k.stream("fills"), encode_event("fill", fill))  # the same fill, again
        service.schedule.last_reconcile_ms = (
            ctx.clock.monotonic_ms()
        )  # no reconcile to clean up after us
        for _ in range(2):
            await service.step(ctx)
            await settled(service)
        assert service.working.get("KX", order.client_order_id) is not None
        assert [o.side for o in exchange.orders.values()] == [Side.BID]  # never a second bid
    finally:
        await service.stop(ctx)


class ReduceByExchange(FakeExchange):
    """Decreases as Kalshi's ``reduce_by`` does (the gateway's): from what rests at the exchange,
    answered with the resting size alone (the decrease ack carries no fill count)."""

    async def decrease(self, order: Order, remaining: int) -> Order:
        truth = self.orders[order.order_id or ""]
        left = truth.remaining - (order.remaining - remaining)
        if left < 0:
            raise OrderRejected("reduce beyond the order's size", status=400)
        self.orders[order.order_id or ""] = replace(truth, remaining=left)
        return replace(order, remaining=left)


async def test_a_decrease_answered_short_keeps_the_execution_counted(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """2 of the bid's 5 executed, neither the fill nor the order update read yet, and the
    strategy asks for 4: the decrease answers 2 resting. Recording that answer left the 2
    executed in neither the position nor the resting size: the worst case (and the ledger) held
    less than the exchange until the fill was posted, seconds at 500 markets. The order is looked
    up instead and its execution stands in the worst case until its fill is posted."""
    k, exchange = Keys(), ReduceByExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, None)
        await steps(service, ctx)
        [order] = exchange.orders.values()
        exchange.orders[order.order_id or ""] = replace(order, filled=200, remaining=300)
        await publish(aredis, k, "KX", 4100, None, size=400)
        service.schedule.last_reconcile_ms = ctx.clock.monotonic_ms()  # no reconcile to help
        await service.step(ctx)
        await settled(service)
        truth = exchange.orders[order.order_id or ""]
        assert (truth.filled, truth.remaining) == (200, 200)
        held = market_loss(200, 200 * 4100, [truth])  # 2 executed at $0.41, 2 resting
        mine = market_loss(0, 0, service.working.counted("KX"))
        assert mine.if_no >= held.if_no and mine.if_yes >= held.if_yes
    finally:
        await service.stop(ctx)


class StaleListingExchange(FakeExchange):
    """Lists the open orders as they were when asked, answering only once let go."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        super().__init__(redis, keys)
        self.listing_gate = asyncio.Event()
        self.listing_gate.set()

    async def open_orders(self) -> list[Order]:
        listed = list(self.orders.values())
        await self.listing_gate.wait()
        return listed


async def test_an_order_cancelled_while_the_listing_was_on_its_way_is_not_adopted(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """A reconcile asks for the open orders; the bid is cancelled (answered) before the listing
    comes back, still showing it. Adopting it rested it again in memory and took its fills so
    far as posted (the diag at 500 markets saw it a few times a minute): an execution not
    posted yet dropped out of the worst case."""
    k, exchange = Keys(), StaleListingExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, None)
        await steps(service, ctx)
        [order] = exchange.orders.values()
        exchange.listing_gate.clear()
        listing = asyncio.create_task(service.reconciler.reconcile())
        await asyncio.sleep(0)  # the listing is asked for
        await publish(aredis, k, "KX", None, None)  # no quote: the bid is cancelled
        service.schedule.last_reconcile_ms = ctx.clock.monotonic_ms()
        await service.step(ctx)
        await settled(service)
        assert not exchange.orders
        exchange.listing_gate.set()
        await listing
        assert service.working.get("KX", order.client_order_id) is None
        assert service.working.live("KX") == []
    finally:
        exchange.listing_gate.set()
        await service.stop(ctx)


async def test_a_first_fill_read_while_the_positions_are_read_is_not_undone(
    settings: Settings, aredis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The market's first fill is read from the stream while the risk refresh's read of the
    position hashes is on its way, asked before the fill made the hash: the empty answer was
    taken for a closed position and the fill's 5 contracts left the worst case (and the
    ledger) until the next refresh, while the executor placed on top of them (the diag at 500
    markets: the exchange an executed order above the ledger for about a second)."""
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, None)
        await steps(service, ctx)
        fill = {
            "ticker": "KX",
            "order_id": "ex-9",
            "count": 500,
            "ts_ms": NOW,
            "position_after": -500,
            "record": {"position": -500, "cost": -2_000_000, "last_fill_ms": NOW, "version": 1},
        }
        real = aredis.pipeline

        def pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = real(*args, **kwargs)
            execute = pipe.execute

            async def answered_then_fill_read(*a: Any, **kw: Any) -> Any:
                positions_read = any(k.pos("KX") in str(c) for c in pipe.command_stack)
                replies = await execute(*a, **kw)  # asked before the fills process wrote
                if positions_read:
                    await aredis.hset(k.pos("KX"), mapping={"position": "-500"})
                    service.inbox.on_event("fill", fill)  # ...and read while this was on its way
                return replies

            pipe.execute = answered_then_fill_read  # type: ignore[method-assign]
            return pipe

        monkeypatch.setattr(aredis, "pipeline", pipeline)
        await service.safety.refresh_risk(full=True)
        monkeypatch.setattr(aredis, "pipeline", real)
        assert service.markets.positions["KX"].position == -500
        await service.safety.refresh_risk(full=True)  # asked after: the hash holds the fill
        assert service.markets.positions["KX"].position == -500
    finally:
        await service.stop(ctx)


class SlowLookupExchange(FakeExchange):
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        super().__init__(redis, keys)
        self.lookup_gate = asyncio.Event()
        self.lookups = 0

    async def lookup(self, order: Order) -> Order | None:
        self.lookups += 1
        await self.lookup_gate.wait()
        return await super().lookup(order)


async def test_fills_never_hold_up_the_read_loop(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """A fill that completes an order needs a lookup (an HTTP round trip): it runs in that
    market's next pass, before the pass decides, not inline in the loop that reads the targets
    of every market. Partial fills change memory at once and reach Redis with the next pass."""
    k, exchange = Keys(), SlowLookupExchange(aredis, Keys())
    for ticker in ("KX", "KY", "KZ"):
        await seed(aredis, k, ticker)
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, None)
        await publish(aredis, k, "KZ", 4100, None)
        await steps(service, ctx)
        x_order = next(o for o in exchange.orders.values() if o.ticker == "KX")
        z_order = next(o for o in exchange.orders.values() if o.ticker == "KZ")
        service.schedule.last_reconcile_ms = ctx.clock.monotonic_ms()  # no reconcile in the way
        for order, count, after in ((x_order, 500, 500), (z_order, 200, 200)):
            fill = {
                "ticker": order.ticker,
                "order_id": order.order_id,
                "client_order_id": order.client_order_id,
                "count": count,
                "position_after": after,
            }
            await aredis.xadd(k.stream("fills"), encode_event("fill", fill))
        exchange.orders.pop(x_order.order_id or "")  # KX's order is fully executed
        await publish(aredis, k, "KY", 4200, None)
        await asyncio.wait_for(service.step(ctx), 2)  # returns while KX's lookup is pending
        await asyncio.wait_for(asyncio.gather(*passes(service, "KY")), 2)
        assert any(o.ticker == "KY" for o in exchange.orders.values())
        assert exchange.lookups == 1 and not service.schedule.inflight[("KX", Side.BID)].done()
        partial = service.working.get("KZ", z_order.client_order_id)
        assert partial is not None and partial.remaining == 300  # in memory at once
        await asyncio.gather(*passes(service, "KZ"))
        mirrored = await aredis.hget(k.orders("KZ"), z_order.client_order_id)
        assert mirrored is not None and decode_order(mirrored).remaining == 300
        exchange.lookup_gate.set()
        await asyncio.wait_for(settled(service), 2)
        assert service.working.get("KX", x_order.client_order_id) is None  # resolved: gone
    finally:
        await service.stop(ctx)


class GatedAmendExchange(FakeExchange):
    """Amends of bids wait for ``gate``: the exchange is slow to answer them."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        super().__init__(redis, keys)
        self.gate = asyncio.Event()
        self.amends: list[tuple[Side, int]] = []

    async def amend(self, order: Order, price: int, remaining: int) -> Order:
        self.amends.append((order.side, price))
        if order.side is Side.BID:
            await self.gate.wait()
        return await super().amend(order, price, remaining)


async def test_one_side_never_waits_for_the_other_sides_answer(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The bid's amend is slow to be answered; a new ask target is sent at once all the same
    (a market's two sides are separate orders with separate worst cases)."""
    k, exchange = Keys(), GatedAmendExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, 4500)
        await steps(service, ctx)
        await publish(aredis, k, "KX", 4000, 4500)  # the bid moves: its amend hangs
        await service.step(ctx)
        await asyncio.sleep(0.05)
        assert exchange.amends == [(Side.BID, 4000)]
        await publish(aredis, k, "KX", 4000, 4300)  # now the ask moves
        await service.step(ctx)
        await asyncio.wait_for(asyncio.gather(*[service.schedule.inflight[("KX", Side.ASK)]]), 2)
        assert exchange.amends == [(Side.BID, 4000), (Side.ASK, 4300)]
        assert not service.schedule.inflight[
            ("KX", Side.BID)
        ].done()  # still waiting for its answer
        exchange.gate.set()
        await asyncio.wait_for(settled(service), 2)
        assert sorted((o.side, o.price) for o in exchange.orders.values()) == [
            (Side.ASK, 4300),
            (Side.BID, 4000),
        ]
    finally:
        exchange.gate.set()
        await service.stop(ctx)


async def test_targets_that_arrive_during_a_pass_are_answered_when_it_ends(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """New targets for a side whose pass is waiting on the exchange are acted on the moment
    that pass ends, not at the next read of the streams (which may block for a while)."""
    k, exchange = Keys(), GatedAmendExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, None)
        await steps(service, ctx)
        await publish(aredis, k, "KX", 4000, None)
        await service.step(ctx)
        await asyncio.sleep(0.05)
        await publish(aredis, k, "KX", 3900, None)  # read while the first amend hangs
        await service.step(ctx)
        assert exchange.amends == [(Side.BID, 4000)]
        exchange.gate.set()  # the answer comes; no further step() call
        await asyncio.wait_for(settled(service), 2)
        assert exchange.amends == [(Side.BID, 4000), (Side.BID, 3900)]
        assert [(o.side, o.price) for o in exchange.orders.values()] == [(Side.BID, 3900)]
    finally:
        exchange.gate.set()
        await service.stop(ctx)


def count_round_trips(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Commands sent alone (by name) and pipelines sent ("pipeline"; the read loop's "XREAD"),
    from now on."""
    sent: Counter[str] = Counter()
    command, pipeline = aioredis.Redis.execute_command, aioredis.client.Pipeline.execute

    async def one(self: aioredis.Redis, *args: Any, **options: Any) -> Any:
        sent[str(args[0])] += 1
        return await command(self, *args, **options)

    async def many(self: aioredis.client.Pipeline, *args: Any, **options: Any) -> Any:
        stack = self.command_stack
        # the read loop's XREAD with its script behind it (common.stream_read.BurstRead): a read
        sent["XREAD" if stack and stack[0][0][0] == "XREAD" else "pipeline"] += 1
        return await pipeline(self, *args, **options)

    async def direct(self: DirectRedis, pipe: Any, **options: Any) -> Any:
        stack = pipe.command_stack  # the same, on a connection of the caller's own
        sent["XREAD" if stack and stack[0][0][0] == "XREAD" else "pipeline"] += 1
        return await direct_execute(self, pipe, **options)

    direct_execute = DirectRedis.execute
    monkeypatch.setattr(aioredis.Redis, "execute_command", one)
    monkeypatch.setattr(aioredis.client.Pipeline, "execute", many)
    monkeypatch.setattr(DirectRedis, "execute", direct)
    return sent


async def test_a_burst_of_passes_shares_its_redis_round_trips(
    settings: Settings, aredis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Targets for twenty markets at once: forty passes, each re-reading its book, recording
    its order before sending it and recording the answer; 120 round trips if each went alone.
    The passes run side by side, so they share pipelines."""
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    tickers = [f"K{i:02d}" for i in range(20)]
    for ticker in tickers:
        await seed(aredis, k, ticker)
        # their order groups exist (created once, in an earlier burst)
        await aredis.hset(k.order_groups, ticker, Group(f"g-{ticker}", 0, 4 * 500).encode())
    service, ctx = await started(settings, aredis, exchange)
    try:
        for ticker in tickers:
            await publish(aredis, k, ticker, 4100, 4500)
        sent = count_round_trips(monkeypatch)
        await steps(service, ctx, 1)
        assert len(exchange.orders) == 40
        assert exchange.recorded_before_send == [True] * 40
        assert sent.pop("HGET") == 40  # the fake exchange's own check of each record
        # shared, not one each: 120 alone (160 with each side's room ahead held after its
        # answer: services/executor/ahead.py); ~20 on a quiet box, a few more when the lease's
        # renewal or a heartbeat lands between the passes' turns of the event loop
        assert sum(sent.values()) <= 26, sent
        monkeypatch.undo()
        stored = {t: await aredis.hgetall(k.orders(t)) for t in tickers}
        assert all(len(orders) == 2 for orders in stored.values())
    finally:
        await service.stop(ctx)


@pytest.mark.parametrize(("every_ms", "logged"), [("1000", 2), ("0", 0)])
async def test_decisions_are_logged_at_most_once_per_market_per_interval(
    redis_url: str, aredis: aioredis.Redis, every_ms: str, logged: int
) -> None:
    """Three targets changes in one market within a second: with the default interval one
    decision (the first) is logged, a second one after the interval; with 0, none (only denials
    would be). The trade log has every order either way."""
    settings = load_settings(
        {"DORA_REDIS_URL": redis_url, "DORA_DECISION_LOG_EVERY_MS": every_ms}, read_file=False
    )
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        for bid in (4100, 4300, 4500):
            await publish(aredis, k, "KX", bid, None)
            await service.step(ctx)
            await settled(service)
            ctx.clock.advance(100)  # type: ignore[attr-defined]
        ctx.clock.advance(1_000)  # type: ignore[attr-defined]
        await publish(aredis, k, "KX", 4700, None)
        await service.step(ctx)
        await settled(service)
        assert await aredis.xlen(k.stream("decisions")) == logged
        assert await aredis.xlen(k.stream("orders")) == 4  # placed, then three amends
    finally:
        await service.stop(ctx)


async def test_targets_lag_is_the_wait_of_the_oldest_entry_read(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Targets published 300, 120 and 10 ms ago and read in one batch: the heartbeat's
    targets_lag_ms is 300, the longest any of them waited, not the newest one's 10."""
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        now = ctx.clock.now_ms()
        for age_ms, bid in ((300, 4100), (120, 4000), (10, 4100)):
            targets = Targets("KX", Quote(Side.BID, bid, 500), None, "test", now)
            fields = {"ticker": "KX", **encode_targets(targets)}
            await aredis.xadd(
                k.stream("targets"), encode_event("targets", fields), id=f"{now - age_ms}-0"
            )
        ctx.status.pop("targets_lag_ms", None)
        await service.step(ctx)
        await settled(service)
        assert ctx.status["targets_lag_ms"] == 300
    finally:
        await service.stop(ctx)


async def test_the_passes_batch_goes_out_before_the_next_read(
    settings: Settings, aredis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read loop used to build and send its next read before the passes it had just
    started ran: every tick's ledger step waited behind that read (~0.4 ms on a busy box). Now
    the passes decide and their batch is written first."""
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, None)
        await steps(service, ctx)
        await settled(service)
        sent: list[str] = []
        execute = DirectRedis.execute

        async def noted(self: DirectRedis, pipe: Any, **options: Any) -> Any:
            names = [str(c[0][0]) for c in pipe.command_stack]
            sent.append("read" if names[0] == "XREAD" else "+".join(sorted(set(names))))
            return await execute(self, pipe, **options)

        monkeypatch.setattr(DirectRedis, "execute", noted)
        now = ctx.clock.monotonic_ms()  # no housekeeping in these steps
        service.schedule.last_risk_ms = service.schedule.last_reconcile_ms = now
        await publish(aredis, k, "KX", 4100, 4500)  # an ask to place: a ledger step
        await service.step(ctx)  # the read that brings it
        await service.step(ctx)  # the next read
        monkeypatch.undo()
        await settled(service)
        # before: the read, the next read, then the ledger step
        assert sent[:3] == ["read", "EVALSHA", "read"], sent
    finally:
        await service.stop(ctx)
