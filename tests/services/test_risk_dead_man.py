"""The dead-man's reads of the exchange: one listing of the open orders per check.

While the executor is silent (or while halted) each check of the risk process looks for orders
still resting and cancels them. It listed them, and then the cancel of dora's own listed them
again to learn their ids: two reads of the read budget where the first already holds the ids.
The exchange here counts its listings; the cancels are the real client's."""

from __future__ import annotations

import redis.asyncio as aioredis

from common.domain import Order, OrderStatus, Side, make_client_order_id
from common.halt import set_halt
from common.kalshi.client import KalshiClient
from common.kalshi.wire.orders import OrderRef
from common.runtime import Context
from common.settings import Settings
from services.risk.service import RiskService
from tests.kalshi.test_wire import ORDER
from tests.services.test_risk import NOW, FakeExchange, check, setup
from tests.support.fake_kalshi import FakeKalshi, fake_kalshi


class CountingExchange(FakeExchange):
    """Every listing of orders counted; ``cancel_own_orders`` is the real client's (it lists
    the ids itself unless given them), over this exchange's listing and batch cancel."""

    cancel_own_orders = KalshiClient.cancel_own_orders

    def __init__(self) -> None:
        super().__init__()
        self.listings = 0
        self.batch_cancelled: list[str] = []

    async def get_open_orders(self, **kw: object) -> list[Order]:
        self.listings += 1
        return await super().get_open_orders(**kw)

    async def get_open_order_refs(self, *_: object, **kw: object) -> list[OrderRef]:
        self.listings += 1
        return await super().get_open_order_refs(**kw)

    async def cancel_orders(self, refs: list[OrderRef]) -> list[object]:
        self.batch_cancelled += [r.order_id for r in refs]
        self.resting = 0  # the fake's own orders are all dora's
        self.orders = [o for o in self.orders if o.order_id not in self.batch_cancelled]
        return [object() for _ in refs]


def _own(i: int) -> Order:
    cid = make_client_order_id("t", "KX", "bid", i)
    return Order("KX", Side.BID, 100, 100, cid, f"own-{i}", OrderStatus.RESTING, 0, 100)


async def counting(
    aredis: aioredis.Redis, settings: Settings
) -> tuple[RiskService, Context, CountingExchange]:
    """A risk service on the counting exchange, the limits' own read of the orders off (it is
    not the dead-man's)."""
    service, ctx, _ = await setup(aredis, settings)
    exchange = CountingExchange()
    service.client = service.watch.client = exchange  # type: ignore[assignment]
    service.watch.limits = None
    return service, ctx, exchange


async def test_a_check_while_the_executor_is_silent_lists_the_orders_once(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, exchange = await counting(aredis, settings)
    by_hand = Order("KX", Side.ASK, 9000, 100, "my-own", "ex-h", OrderStatus.RESTING, 0, 100)
    exchange.orders = [_own(1), by_hand]
    await check(service, ctx, settings.executor_silence_ms)  # silent: dora's cancelled at once
    assert exchange.batch_cancelled == ["own-1"]
    exchange.orders.append(_own(2))  # one of dora's still rests at the next check
    exchange.listings = 0
    await check(service, ctx)
    assert exchange.batch_cancelled == ["own-1", "own-2"]  # still cancelled, the hand's left
    assert exchange.orders == [by_hand]
    assert exchange.listings == 1
    exchange.listings = 0
    await check(service, ctx)  # nothing of dora's rests: a look, no cancel
    assert exchange.listings == 1 and exchange.batch_cancelled == ["own-1", "own-2"]
    await service.stop(ctx)


async def test_a_check_while_halted_lists_the_orders_once(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, exchange = await counting(aredis, settings)
    await aredis.set(ctx.keys.hb("executor"), "{}", px=60_000)
    await set_halt(aredis, ctx.keys, "kill switch", NOW, "cli")
    exchange.orders = [Order("KX", Side.ASK, 9000, 100, "mine", "ex-h", OrderStatus.RESTING, 0, 1)]
    await check(service, ctx)
    assert exchange.cancel_alls == 1 and exchange.orders == []  # whoever placed it
    assert exchange.listings == 1
    await service.stop(ctx)


async def test_the_real_client_reads_the_orders_once_per_check_and_cancels_dora_s(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The same over HTTP: the GETs of ``/portfolio/orders`` each check sends."""
    own = {
        **ORDER,
        "order_id": "o-own",
        "client_order_id": make_client_order_id("t", "KX-1", "ask", 1),
    }
    by_hand = {**ORDER, "order_id": "o-hand", "client_order_id": "my-own"}
    fake = FakeKalshi(orders=[own, by_hand])
    async with fake_kalshi(fake):
        service, ctx, _ = await setup(aredis, settings)
        client = KalshiClient.create(fake.url, None)
        service.client = service.watch.client = client  # type: ignore[assignment]
        service.watch.limits = None
        try:
            await check(service, ctx, settings.executor_silence_ms)  # dora's cancelled
            assert fake.ids() == {"o-hand"}
            fake.orders.append({**own, "order_id": "o-own-2"})  # one of dora's rests again
            before = len(fake.requests)
            await check(service, ctx)
            sent = [(m, p) for m, p, _, _ in fake.requests[before:]]
            assert sent.count(("GET", "/portfolio/orders")) == 1
            assert fake.ids() == {"o-hand"}
        finally:
            await service.stop(ctx)
