"""What risk reads of the exchange is never one moment, and a read that straddles a fill must not
halt a healthy bot.

The limits at the exchange read positions and orders in separate requests: a fill between
them must not look like a breach. The positions are read before the orders, so a position
closed (and its room re-used by a new order) while the orders are read is counted twice; an
order read before it fills and its position read after is counted twice too. Either is one
read, not the exchange's state: a breach halts only when the positions read on both sides of
the orders agree it is one.

The positions reconcile compares dora's positions with the exchange's: dora's are read again
after the exchange's, so a fill posted meanwhile is not an offset."""

from __future__ import annotations

import orjson
import redis.asyncio as aioredis

from common.domain import Order, OrderStatus, Position, Side
from common.kalshi.wire.portfolio import ExchangePosition
from common.keys import Keys
from common.redis_codec import decode_risk, encode_position
from common.settings import Settings
from services.risk.watch import MISMATCH_CHECKS_TO_HALT, RECONCILE_EVERY_MS
from tests.services.test_risk import FakeExchange, check, setup

EVENT = "KXR"
LIMIT = "10"  # dollars


Held = dict[str, tuple[int, int]]  # ticker -> (position, exposure)


class MovingExchange(FakeExchange):
    """An exchange that moves while its open orders are read, as fills and the executor do:
    each read of the orders answers the orders as they were, then applies the next move."""

    def __init__(self) -> None:
        super().__init__()
        self.moves: list[tuple[Held, list[Order]]] = []
        self.order_reads = 0

    def hold(self, held: Held) -> None:
        self.positions = {t: p for t, (p, _) in held.items()}
        self.exposures = {t: e for t, (_, e) in held.items()}

    async def get_open_orders(self, **kw: object) -> list[Order]:
        self.order_reads += 1
        orders = await super().get_open_orders(**kw)
        if self.moves:
            held, self.orders = self.moves.pop(0)
            self.hold(held)
        return orders


async def _event_setup(aredis: aioredis.Redis, settings: Settings) -> tuple:
    service, ctx, _ = await setup(aredis, settings)
    exchange = MovingExchange()
    service.client = exchange  # type: ignore[assignment]
    service.watch.client = exchange  # type: ignore[assignment]
    assert service.watch.limits is not None
    service.watch.limits.client = exchange  # type: ignore[assignment]
    await aredis.set(ctx.keys.hb("executor"), "{}", px=60_000)
    for t in ("KXR-A", "KXR-B"):
        await aredis.hset(ctx.keys.market(t), mapping={"event_ticker": EVENT})
    await aredis.hset(ctx.keys.cfg_events, mapping={EVENT: LIMIT, "version": "1"})
    return service, ctx, exchange


def _bid(ticker: str, price: int, count: int, cid: str) -> Order:
    return Order(ticker, Side.BID, price, count, cid, f"ex-{cid}", OrderStatus.RESTING, 0, count)


async def test_a_position_closed_while_the_orders_are_read_is_not_a_breach(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Long 20 YES of A at $0.50 ($10 lost if it resolves NO, the limit). It is sold; the room
    goes to a bid of 20 at $0.50 in B. Positions read before the sale, orders after the bid:
    $20 in one read, $10 at the exchange at every moment."""
    service, ctx, exchange = await _event_setup(aredis, settings)
    exchange.hold({"KXR-A": (2000, 10_000_000)})
    exchange.orders = [_bid("KXR-B", 5000, 2000, "b")]
    exchange.moves = [({}, exchange.orders)]  # A's position sold while the orders were read
    await check(service, ctx, 1_000)
    state = decode_risk(await aredis.hgetall(ctx.keys.risk))
    assert not state.halted, state.reason
    events = orjson.loads(await aredis.hget(ctx.keys.risk, "events") or "{}")
    assert events[EVENT]["worst_loss"] == 10_000_000
    await service.stop(ctx)


async def test_fills_both_ways_in_one_read_are_not_a_breach(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """$20 limit, markets resolving on their own. Long 20 YES of A at $0.50 ($10), sold, its
    room given to a bid of 20 at $0.50 in B ($10); and a bid of 20 at $0.50 in C ($10) that
    fills as the orders are read. The first read has A's position (before the sale) and C's bid
    (before its fill): $30; positions read after it have C's fill and not A's: still $30 with
    those orders. Neither is the exchange at any moment ($20): the orders are read again
    between two position reads that agree."""
    service, ctx, exchange = await _event_setup(aredis, settings)
    await aredis.hset(ctx.keys.cfg_events, mapping={EVENT: "20", "version": "2"})
    exchange.hold({"KXR-A": (2000, 10_000_000)})
    b, c = _bid("KXR-B", 5000, 2000, "b"), _bid("KXR-C", 5000, 2000, "c")
    await aredis.hset(ctx.keys.market("KXR-C"), mapping={"event_ticker": EVENT})
    exchange.orders = [b, c]
    exchange.moves = [({"KXR-C": (2000, 10_000_000)}, [b])]
    await check(service, ctx, 1_000)
    state = decode_risk(await aredis.hgetall(ctx.keys.risk))
    assert not state.halted, state.reason
    assert exchange.order_reads == 2
    events = orjson.loads(await aredis.hget(ctx.keys.risk, "events") or "{}")
    assert events[EVENT]["worst_loss"] == 20_000_000
    await service.stop(ctx)


async def test_a_real_breach_halts_while_another_market_never_keeps_still(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """$30 of worst loss against $10 held still, while a market of another event fills on
    every read: the positions never agree, and the smaller figures still pass the limit."""
    service, ctx, exchange = await _event_setup(aredis, settings)
    await aredis.hset(ctx.keys.market("KXO-Z"), mapping={"event_ticker": "KXO"})
    still = {"KXR-A": (2000, 10_000_000), "KXR-B": (2000, 10_000_000)}
    exchange.hold({**still, "KXO-Z": (100, 50_000)})
    exchange.orders = [_bid("KXR-B", 5000, 2000, "b")]
    exchange.moves = [
        ({**still, "KXO-Z": (100 * (i + 2), 50_000 * (i + 2))}, exchange.orders) for i in range(8)
    ]
    await check(service, ctx, 1_000)
    state = decode_risk(await aredis.hgetall(ctx.keys.risk))
    assert state.halted and state.reason.startswith(f"event_loss_breach: {EVENT}")
    assert "$30.00" in state.reason
    await service.stop(ctx)


async def test_a_breach_the_positions_read_again_agree_on_halts(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Long 20 YES of A at $0.50 and a bid of 20 at $0.50 in B, nothing moving: $20 > $10."""
    service, ctx, exchange = await _event_setup(aredis, settings)
    exchange.hold({"KXR-A": (2000, 10_000_000)})
    exchange.orders = [_bid("KXR-B", 5000, 2000, "b")]
    await check(service, ctx, 1_000)
    state = decode_risk(await aredis.hgetall(ctx.keys.risk))
    assert state.halted and state.reason.startswith(f"event_loss_breach: {EVENT}")
    assert "$20.00" in state.reason
    await service.stop(ctx)


async def test_an_account_cap_passed_only_in_one_read_is_not_a_breach(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The account's cap (max_total_exposure) is read the same way: the same position closed
    and its room re-used while the orders are read is not past it."""
    from common.config import GlobalConfig
    from common.redis_codec import encode_global_config

    service, ctx, exchange = await _event_setup(aredis, settings)
    await aredis.hset(ctx.keys.cfg_events, mapping={EVENT: "1000", "version": "3"})
    await aredis.hset(
        ctx.keys.cfg_global,
        mapping=encode_global_config(
            GlobalConfig.from_item({"max_daily_loss": "100", "max_total_exposure": "10"}), 2
        ),
    )
    exchange.hold({"KXR-A": (2000, 10_000_000)})
    exchange.orders = [_bid("KXR-B", 5000, 2000, "b")]
    exchange.moves = [({}, exchange.orders)]
    await check(service, ctx, 1_000)
    state = decode_risk(await aredis.hgetall(ctx.keys.risk))
    assert not state.halted, state.reason
    await service.stop(ctx)


class PostingExchange(FakeExchange):
    """A market filled every few seconds, each fill posted to dora's Redis while the exchange's
    positions are being read: the check's snapshot of dora is always one fill behind."""

    def __init__(self, redis: aioredis.Redis, ticker: str) -> None:
        super().__init__()
        self.redis, self.ticker = redis, ticker
        self.fill_next = False

    async def get_positions(self, **kw: object) -> list[ExchangePosition]:
        if self.fill_next:
            self.fill_next = False
            held = self.positions.get(self.ticker, 0) - 500
            self.positions[self.ticker] = held
            await self.redis.hset(
                Keys().pos(self.ticker), mapping=encode_position(Position(self.ticker, held, 0))
            )
        return await super().get_positions(**kw)


async def test_fills_posted_while_the_exchange_is_read_are_not_a_mismatch(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Three comparisons in a row, each with one more fill than the check's snapshot of dora
    held when it began: the same offset every time, and yet dora is never behind the exchange
    by more than a fill being posted."""
    service, ctx, _ = await setup(aredis, settings)
    exchange = PostingExchange(aredis, "KXP")
    for part in (service, service.watch, service.watch.limits):  # type: ignore[union-attr]
        part.client = exchange  # type: ignore[union-attr]
    await aredis.set(ctx.keys.hb("executor"), "{}", px=60_000)
    for _ in range(MISMATCH_CHECKS_TO_HALT + 1):
        exchange.fill_next = True
        await check(service, ctx, RECONCILE_EVERY_MS)
        state = decode_risk(await aredis.hgetall(ctx.keys.risk))
        assert not state.halted, state.reason
    await service.stop(ctx)


async def test_a_fill_dora_never_posts_still_halts(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The same market with the fill never reaching dora: the offset persists and it halts."""
    service, ctx, _ = await setup(aredis, settings)
    exchange = PostingExchange(aredis, "KXP")
    for part in (service, service.watch, service.watch.limits):  # type: ignore[union-attr]
        part.client = exchange  # type: ignore[union-attr]
    await aredis.set(ctx.keys.hb("executor"), "{}", px=60_000)
    exchange.positions = {"KXP": -500}  # executed, lost on its way to dora
    for _ in range(MISMATCH_CHECKS_TO_HALT):
        await check(service, ctx, RECONCILE_EVERY_MS)
    state = decode_risk(await aredis.hgetall(ctx.keys.risk))
    assert state.halted and state.reason.startswith("position mismatch in KXP")
    await service.stop(ctx)
