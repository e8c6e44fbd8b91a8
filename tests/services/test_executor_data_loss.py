"""The executor when Redis loses its data (issue 19.1) and when it meets an order it did not make
(issue 19.4): it stops adding risk until the data is back and positions were checked against the
exchange, then writes its working orders back; a foreign order is never adopted or touched."""

from __future__ import annotations

import redis.asyncio as aioredis

from common.domain import Order, OrderStatus, Side
from common.keys import Keys
from common.restore import mark_positions_synced
from common.runtime import Context
from common.settings import Settings
from services.executor.gate import STATE_CHECK_MS
from services.executor.service import ExecutorService
from tests.services.test_executor import NOW, FakeExchange, publish, seed, started, steps

K = Keys()


async def refresh(service: ExecutorService, ctx: Context) -> None:
    """The gate's next look at Redis (it reads it once a second)."""
    ctx.clock.advance(STATE_CHECK_MS)  # type: ignore[attr-defined]
    await service.gate.refresh()


async def test_redis_losing_its_data_stops_adding_until_positions_are_synced(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    exchange = FakeExchange(aredis, K)
    await seed(aredis, K, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, K, "KX", 4100, 4500)
        await steps(service, ctx)
        assert len(exchange.orders) == 2 and len(await aredis.hgetall(K.orders("KX"))) == 2
        await aredis.flushall()
        await refresh(service, ctx)
        assert service.safety.account_risk().halted  # nothing added into an empty Redis
        assert "Redis lost its data" in service.safety.blocked.reason
        await seed(aredis, K, "KX")  # the persister restored: a new restore ...
        await aredis.set(K.restored, '{"ts_ms": 2}')
        await refresh(service, ctx)
        assert "checked against the exchange" in service.safety.blocked.reason  # ... not synced
        await mark_positions_synced(aredis, K, 2, NOW, [])
        await refresh(service, ctx)
        assert service.safety.blocked.reason == ""
        assert len(await aredis.hgetall(K.orders("KX"))) == 2  # working orders written back
    finally:
        await service.stop(ctx)


async def test_an_order_dora_did_not_make_is_never_adopted_amended_or_cancelled(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Measured before: a manual order (1 contract bid at $0.02, a client order id dora did not
    make) in a market dora quotes was changed or gone within 20 s: the reconcile adopted it."""
    exchange = FakeExchange(aredis, K)
    await seed(aredis, K, "KX")
    manual = Order("KX", Side.BID, 200, 100, "my-own-bid", "ex-manual", OrderStatus.RESTING, 0, 100)
    exchange.orders["ex-manual"] = manual
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, K, "KX", 4100, 4500)
        for _ in range(5):
            await steps(service, ctx)
            service.schedule.reconcile_soon()
        assert exchange.orders["ex-manual"] == manual  # untouched
        assert "my-own-bid" not in await aredis.hgetall(K.orders("KX"))
        assert sorted(o.price for o in exchange.orders.values()) == [200, 4100, 4500]
    finally:
        await service.stop(ctx)
