"""The executor fails closed (issue 18 items 3 and 4): no risk added on a risk state it cannot
trust, and every fill counted once and always somewhere in the worst case."""

from __future__ import annotations

from dataclasses import replace

import redis.asyncio as aioredis

from common.config import MarketConfig
from common.domain import Order, OrderStatus, Position, Side
from common.keys import Keys
from common.messages import decode_event, encode_event
from common.redis_codec import encode_market_config, encode_position
from common.runtime import Context
from common.settings import Settings
from services.executor.safety import REFRESH_CHUNK
from services.executor.service import ExecutorService
from tests.services.test_executor import FakeExchange, publish, seed, settled, started, steps


class ExecutingExchange(FakeExchange):
    """Orders execute at the exchange before dora hears of it; a done order is still found by
    a lookup, and an amend is sized as Kalshi sizes it (count = filled + remaining wanted)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        super().__init__(redis, keys)
        self.done: dict[str, Order] = {}
        self.amended_from: list[Order] = []  # the order each amend was sent for

    def execute(self, order_id: str, count: int) -> None:
        order = self.orders[order_id]
        after = replace(order, filled=order.filled + count, remaining=order.remaining - count)
        if after.remaining:
            self.orders[order_id] = after
        else:
            del self.orders[order_id]
            self.done[order_id] = replace(after, status=OrderStatus.EXECUTED)

    async def cancel(self, order: Order) -> int:
        gone = self.orders.pop(order.order_id or "", None)
        if gone is None:
            return 0  # Kalshi's reduced_by 0: nothing was resting any more
        self.done[gone.order_id or ""] = replace(gone, status=OrderStatus.CANCELED, remaining=0)
        return gone.remaining

    async def amend(self, order: Order, price: int, remaining: int) -> Order:
        self.amended_from.append(order)
        truth = self.orders[order.order_id or ""]
        count = order.filled + remaining  # what the client sends: our filled + wanted
        new = replace(truth, price=price, count=count, remaining=count - truth.filled)
        self.orders[order.order_id or ""] = new
        return new

    async def lookup(self, order: Order) -> Order | None:
        found = await super().lookup(order)
        if found is None:
            found = next(
                (o for o in self.done.values() if o.client_order_id == order.client_order_id),
                None,
            )
        return found


async def fill_lands(r: aioredis.Redis, k: Keys, order: Order, count: int, after: int) -> None:
    """What the fills process does with an execution: the position, then the fill event."""
    await r.hset(k.pos(order.ticker), mapping=encode_position(Position(order.ticker, after)))
    fill = {
        "ticker": order.ticker,
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "count": count,
        "position_after": after,
    }
    await r.xadd(k.stream("fills"), encode_event("fill", fill))


def stand_ins(service: ExecutorService, ticker: str) -> list[tuple[Side, int, int]]:
    return [
        (o.side, o.price, o.remaining)
        for o in service.working.counted(ticker)
        if o.client_order_id.startswith("in-flight:")
    ]


async def logged(r: aioredis.Redis, k: Keys) -> list[dict[str, object]]:
    return [decode_event(fields)[1] for _, fields in await r.xrange(k.stream("orders"))]


# ---- the risk state must be fresh and passing ----------------------------------------------


async def quoting(
    settings: Settings, r: aioredis.Redis
) -> tuple[ExecutorService, Context, FakeExchange]:
    k, exchange = Keys(), FakeExchange(r, Keys())
    await seed(r, k, "KX")
    service, ctx = await started(settings, r, exchange)
    await publish(r, k, "KX", 4100, 4500)
    await steps(service, ctx)
    assert len(exchange.orders) == 2
    return service, ctx, exchange


async def test_a_stale_risk_state_adds_nothing_and_pulls_the_quotes(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Risk stopped checking (down, stuck, or unable to write): the daily PnL the executor reads
    may be anything. Past risk_stale_ms nothing that adds risk is sent, the quotes are cancelled
    (they could not be moved), and quoting resumes once risk checks again."""
    service, ctx, exchange = await quoting(settings, aredis)
    k = ctx.keys
    try:
        ctx.clock.advance(settings.risk_stale_ms + 1)  # type: ignore[attr-defined]
        await service.safety.refresh_risk()
        await service.safety.check_feeds()
        assert "risk state" in service.safety.pulled.reason
        await service.safety.cancel_all_task  # type: ignore[misc]
        assert exchange.cancel_owns == 1 and exchange.orders == {}
        await publish(aredis, k, "KX", 4200, 4600)
        for _ in range(3):  # no steps(): they would say risk checked
            await service.step(ctx)
            await settled(service)
        assert exchange.orders == {} and service.counts["denied"] >= 2
        await steps(service, ctx, 3)  # risk checks again
        assert sorted(o.price for o in exchange.orders.values()) == [4200, 4600]
    finally:
        await service.stop(ctx)


async def test_pulled_quotes_leave_an_order_placed_by_hand_alone_and_a_halt_clears_it(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Pulling quotes (here: risk stale) is not a kill switch: only dora's own orders are
    cancelled, never the trader's manual one (and not with the subaccount-wide cancel-all, whose
    one-minute rule would also cancel the quotes placed right after it). A halt, arriving while
    that pull is still cancelling, clears the whole subaccount."""
    service, ctx, exchange = await quoting(settings, aredis)
    manual = Order("KX", Side.BID, 200, 100, "manual-1", "ex-manual", OrderStatus.RESTING)
    exchange.orders["ex-manual"] = replace(manual, remaining=100)
    try:
        ctx.clock.advance(settings.risk_stale_ms + 1)  # type: ignore[attr-defined]
        await service.safety.refresh_risk()
        await service.safety.check_feeds()
        await service.safety.cancel_all_task  # type: ignore[misc]
        assert exchange.cancel_alls == 0 and list(exchange.orders) == ["ex-manual"]
        service.safety.start_cancel_all("pulled again", own_only=True)
        from common.messages import ControlCommand

        await service.safety.on_control(ControlCommand("halt", "test"))
        await service.safety.cancel_all_task  # type: ignore[misc]
        assert exchange.cancel_alls == 1 and exchange.orders == {}
    finally:
        await service.stop(ctx)


async def test_a_risk_state_that_never_changes_is_stale_whatever_its_clock_says(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """A risk process whose clock runs ahead writes a last check that always looks recent; it
    is stale all the same once it has not changed for risk_stale_ms."""
    service, ctx, _ = await quoting(settings, aredis)
    try:
        ahead = ctx.clock.now_ms() + 3_600_000
        await aredis.hset(ctx.keys.risk, "last_check_ms", str(ahead))
        await service.safety.refresh_risk()
        assert service.safety.risk_problem() == ""
        ctx.clock.advance(settings.risk_stale_ms + 1)  # type: ignore[attr-defined]
        await service.safety.refresh_risk()
        assert "old" in service.safety.risk_problem()
    finally:
        await service.stop(ctx)


async def test_a_failing_risk_check_makes_the_executor_reduce_only(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, exchange = await quoting(settings, aredis)
    k = ctx.keys
    try:
        await aredis.hset(
            k.risk,
            mapping={"check_failures": "1", "check_error": "dora:pos:KBAD skipped: bad"},
        )
        await publish(aredis, k, "KX", 4200, 4600)
        await steps(service, ctx, 3)
        assert service.safety.account_risk().halted
        assert "risk check failing (1): dora:pos:KBAD" in service.safety.account_risk().halt_reason
        assert exchange.orders == {}  # pulled, and nothing new
        await aredis.hset(k.risk, mapping={"check_failures": "0", "check_error": ""})
        await steps(service, ctx, 3)
        assert sorted(o.price for o in exchange.orders.values()) == [4200, 4600]
    finally:
        await service.stop(ctx)


async def test_an_unreadable_risk_state_pulls_the_quotes(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, exchange = await quoting(settings, aredis)
    try:
        await aredis.hset(ctx.keys.risk, "daily_pnl", "a lot")
        await service.loop._housekeeping(full=False)
        assert "risk state unreadable" in service.safety.pulled.reason
        await service.safety.cancel_all_task  # type: ignore[misc]
        assert exchange.orders == {}
    finally:
        await service.stop(ctx)


async def test_a_risk_state_that_cannot_be_read_any_more_grows_old(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The refresh keeps failing (Redis answers, but not that read): what was read last ages and
    the quotes are pulled all the same."""
    service, ctx, _ = await quoting(settings, aredis)
    try:

        async def failing(full: bool = True) -> None:
            raise ConnectionError("no answer to this read")

        service.safety.refresh_risk = failing  # type: ignore[method-assign]
        ctx.clock.advance(settings.risk_stale_ms + 1)  # type: ignore[attr-defined]
        await service.loop._housekeeping(full=True)
        assert (
            "risk state" in service.safety.pulled.reason and "old" in service.safety.pulled.reason
        )
    finally:
        await service.stop(ctx)


async def test_a_silent_risk_process_pulls_the_quotes(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, exchange = await quoting(settings, aredis)
    try:
        await aredis.delete(ctx.keys.hb("risk"))  # its heartbeat expired
        await steps(service, ctx, 2)
        assert "risk silent" in service.safety.pulled.reason and exchange.orders == {}
    finally:
        await service.stop(ctx)


# ---- every fill counted once and always somewhere ------------------------------------------


async def test_a_cancel_that_finds_the_order_executed_counts_it_as_executed(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The bid executed at the exchange before our cancel reached it: the cancel took nothing
    off the book (reduced_by 0). It is logged as executed, not cancelled, and its 5 contracts
    stay in the worst case until their fill is in the position. The ask had 2 of 5 executed:
    cancelled with its executed part."""
    k, exchange = Keys(), ExecutingExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, 4500)
        await steps(service, ctx)
        bid = next(o for o in exchange.orders.values() if o.side is Side.BID)
        ask = next(o for o in exchange.orders.values() if o.side is Side.ASK)
        exchange.execute(bid.order_id or "", 500)
        exchange.execute(ask.order_id or "", 200)
        service.schedule.last_reconcile_ms = ctx.clock.monotonic_ms()  # no reconcile first
        await publish(aredis, k, "KX", None, None)
        await service.step(ctx)
        await settled(service)
        events = {e["client_order_id"]: e for e in await logged(aredis, k)}
        assert events[bid.client_order_id]["event"] == "filled"
        assert (
            events[bid.client_order_id]["filled"],
            events[bid.client_order_id]["cancelled"],
        ) == (500, 0)
        assert events[ask.client_order_id]["event"] == "canceled"
        assert (
            events[ask.client_order_id]["filled"],
            events[ask.client_order_id]["cancelled"],
        ) == (200, 300)
        assert sorted(stand_ins(service, "KX")) == [(Side.ASK, 4500, 200), (Side.BID, 4100, 500)]
        await fill_lands(aredis, k, bid, 500, 500)
        await fill_lands(aredis, k, ask, 200, 300)
        await steps(service, ctx, 1)
        assert stand_ins(service, "KX") == []
    finally:
        await service.stop(ctx)


async def test_reconcile_keeps_an_executed_order_in_the_worst_case_until_its_fill_lands(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """A bid of 5 (cap 8 YES) executes; reconcile learns it from the exchange before the fill
    reaches the position. Dropping it would let a new bid of 5 go out: 10 YES at worst. It is
    kept until the fill lands (position 5); then a bid of 3 fits and goes."""
    k, exchange = Keys(), ExecutingExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    config = MarketConfig(
        "KX", enabled=True, max_inventory_yes=800, max_inventory_no=800, quote_size=500
    )
    await aredis.hset(k.cfg_market("KX"), mapping=encode_market_config(config, 2))
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, None)
        await steps(service, ctx)
        [bid] = exchange.orders.values()
        exchange.execute(bid.order_id or "", 500)
        await service.reconciler.reconcile()
        assert service.working.get("KX", bid.client_order_id) is None  # no longer resting
        await publish(aredis, k, "KX", 4100, None)
        await steps(service, ctx)
        assert exchange.orders == {}  # 0 + 5 executed + 5 new > 8: denied
        assert stand_ins(service, "KX") == [(Side.BID, 4100, 500)]
        await fill_lands(aredis, k, bid, 500, 500)
        await steps(service, ctx, 2)
        assert stand_ins(service, "KX") == [] and exchange.orders == {}  # 5 + 5 > 8 still
        await publish(aredis, k, "KX", 4100, None, size=300)
        await steps(service, ctx)
        assert [(o.side, o.remaining) for o in exchange.orders.values()] == [(Side.BID, 300)]
    finally:
        await service.stop(ctx)


async def test_an_amend_answer_and_the_fill_event_are_not_counted_twice(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """A bid of 10; 3 execute; the next amend's answer says filled 3, remaining 7; then the
    fill event of those 3 arrives. Counted twice (filled 6), the amend after that asks Kalshi for
    6 + 10 = 16 contracts of which 3 are filled: 13 would rest where risk approved 10."""
    k, exchange = Keys(), ExecutingExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, None, size=1000)
        await steps(service, ctx)
        [bid] = exchange.orders.values()
        exchange.execute(bid.order_id or "", 300)
        await publish(aredis, k, "KX", 4000, None, size=1000)
        await steps(service, ctx, 1)
        assert exchange.orders[bid.order_id or ""].remaining == 700  # sent for filled 0 + 10
        await fill_lands(aredis, k, bid, 300, 300)
        await steps(service, ctx, 1)
        mine = service.working.get("KX", bid.client_order_id)
        assert mine is not None and (mine.filled, mine.remaining) == (300, 700)
        await publish(aredis, k, "KX", 3900, None, size=1000)
        await steps(service, ctx, 1)
        assert exchange.amended_from[-1].filled == 300
        assert exchange.orders[bid.order_id or ""].remaining == 1000  # what risk approved
    finally:
        await service.stop(ctx)


async def test_the_full_refresh_reads_every_market_when_it_reads_them_in_chunks(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The full risk refresh reads the positions a few markets per round trip (the passes run
    between them): every market of every chunk is read, the last partial one too."""
    k = Keys()
    tickers = [f"KX{i:02d}" for i in range(2 * REFRESH_CHUNK + 5)]
    for ticker in tickers:
        await seed(aredis, k, ticker)
    service, ctx = await started(settings, aredis, FakeExchange(aredis, k))
    try:
        for i, ticker in enumerate(tickers):
            service.markets.positions[ticker] = Position(ticker)  # held: the refresh reads it
            await aredis.hset(k.pos(ticker), mapping=encode_position(Position(ticker, i + 1)))
        await service.safety.refresh_risk(full=True)
        assert {t: p.position for t, p in service.markets.positions.items()} == {
            t: i + 1 for i, t in enumerate(tickers)
        }
    finally:
        await service.stop(ctx)
