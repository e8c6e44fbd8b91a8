"""Redis stops answering (issue 18 item 5): the executor cancels its own orders at the exchange
(never one it did not make: this is no kill switch, DESIGN.md §5), sends nothing else while Redis
is away, and quotes again only once Redis answers and its orders are
reconciled with the exchange. (tests/e2e/test_redis_freeze.py does it to a real redis-server.)"""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis

from common.domain import OrderStatus, Side
from common.kalshi.errors import OrderRejected
from common.kalshi.wire.orders import OrderRequest
from common.keys import Keys
from common.runtime import Context
from common.settings import Settings
from services.executor.outage import PROBE_TIMEOUT_S, RECANCEL_EVERY_MS, RedisWatch
from services.executor.service import ExecutorService
from tests.services.test_executor import FakeExchange, publish, seed, started, steps
from tests.support.frozen import frozen_redis


class Probe:
    """Redis as the watch sees it: answering or not."""

    def __init__(self) -> None:
        self.up = True

    async def __call__(self) -> bool:
        if not self.up:
            raise ConnectionError("no answer")
        return True


async def quoting(
    settings: Settings, r: aioredis.Redis
) -> tuple[ExecutorService, Context, FakeExchange, Probe]:
    k, exchange = Keys(), FakeExchange(r, Keys())
    await seed(r, k, "KX")
    service, ctx = await started(settings, r, exchange)
    for task in service.tasks:  # the test drives the watch itself, on the test's clock
        if task.get_name() == "redis_watch":
            task.cancel()
    probe = Probe()
    service.redis_watch.probe = probe
    await publish(r, k, "KX", 4100, 4500)
    await steps(service, ctx)
    assert len(exchange.orders) == 2
    await service.redis_watch.tick()  # Redis answers now
    return service, ctx, exchange, probe


async def redis_goes_away(service: ExecutorService, ctx: Context, probe: Probe) -> None:
    """Redis stops answering for the outage delay, as the watch sees it."""
    probe.up = False
    await service.redis_watch.tick()
    ctx.clock.advance(ctx.settings.redis_outage_cancel_s * 1000)  # type: ignore[attr-defined]
    await service.redis_watch.tick()
    assert service.safety.pulled.blind


async def test_redis_silent_for_the_outage_delay_cancels_its_quotes_and_sends_nothing(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, exchange, probe = await quoting(settings, aredis)
    watch, k = service.redis_watch, ctx.keys
    try:
        probe.up = False
        await watch.tick()
        ctx.clock.advance(settings.redis_outage_cancel_s * 1000 - 1)  # type: ignore[attr-defined]
        await watch.tick()
        assert exchange.cancel_owns == 0 and not service.safety.pulled.blind  # not yet
        ctx.clock.advance(1)  # type: ignore[attr-defined]
        await watch.tick()
        assert exchange.cancel_owns == 1 and exchange.orders == {}
        assert service.safety.pulled.blind == "redis unreachable"
        assert service.working.all_live() == []  # cancelled in memory, written when Redis is back
        # nothing that adds risk is sent: not by a pass, not by a pass already past its checks
        await publish(aredis, k, "KX", 4200, 4600)
        for _ in range(3):
            await service.step(ctx)  # (this test's Redis does answer the loop)
        assert exchange.orders == {}
        request = OrderRequest("KX", Side.BID, 4200, 500, "c-x", post_only=True)
        with pytest.raises(OrderRejected, match="not sent: redis unreachable"):
            await service.gateway.place(request)
        # while Redis stays away, the cancel is repeated for a create already on its way
        ctx.clock.advance(RECANCEL_EVERY_MS)  # type: ignore[attr-defined]
        await watch.tick()
        assert exchange.cancel_owns == 2 and exchange.cancel_alls == 0
    finally:
        await service.stop(ctx)


async def test_an_order_placed_by_hand_in_the_subaccount_outlives_the_outage(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """DESIGN.md §5: dora never cancels an order it did not create, except the kill switches
    (halt, cancel-all). A Redis outage pulls dora's quotes, not the trader's own orders."""
    service, ctx, exchange, probe = await quoting(settings, aredis)
    try:
        by_hand = await exchange.place(
            OrderRequest("KX", Side.BID, 3000, 100, "my-own-order", post_only=True)
        )
        await redis_goes_away(service, ctx, probe)
        assert list(exchange.orders) == [by_hand.order_id]
        assert exchange.cancel_alls == 0
    finally:
        await service.stop(ctx)


async def test_quoting_resumes_only_once_redis_answers_and_the_orders_are_reconciled(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, exchange, probe = await quoting(settings, aredis)
    watch, k = service.redis_watch, ctx.keys
    try:
        await redis_goes_away(service, ctx, probe)
        assert exchange.orders == {}
        reconciles = 0
        reconcile = service.reconciler.reconcile

        async def counted() -> None:
            nonlocal reconciles
            reconciles += 1
            await reconcile()

        service.reconciler.reconcile = counted  # type: ignore[method-assign]
        probe.up = True
        await watch.tick()
        assert reconciles == 1 and not service.safety.pulled.blind
        assert await aredis.hgetall(k.orders("KX")) == {}  # the cancels written at last
        await steps(service, ctx)
        assert sorted((o.side, o.status) for o in exchange.orders.values()) == [
            (Side.ASK, OrderStatus.RESTING),
            (Side.BID, OrderStatus.RESTING),
        ]
    finally:
        await service.stop(ctx)


async def test_a_reconcile_that_fails_when_redis_is_back_keeps_the_executor_blind(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, exchange, probe = await quoting(settings, aredis)
    watch = service.redis_watch
    try:
        await redis_goes_away(service, ctx, probe)

        async def exchange_down() -> list[object]:
            raise ConnectionError("exchange unreachable")

        exchange.open_orders = exchange_down  # type: ignore[assignment,method-assign]
        probe.up = True
        await watch.tick()
        assert service.safety.pulled.blind  # not reconciled: still blind
        del exchange.open_orders
        await watch.tick()
        assert not service.safety.pulled.blind
    finally:
        await service.stop(ctx)


async def test_a_frozen_redis_is_a_silent_one(settings: Settings, aredis: aioredis.Redis) -> None:
    """SIGSTOP leaves the socket open and the server mute: the probe gives up after its
    timeout instead of waiting for ever."""
    service, ctx, _, _ = await quoting(settings, aredis)
    try:
        async with frozen_redis() as port:
            frozen = aioredis.Redis(host="127.0.0.1", port=port)
            service.redis_watch.probe = frozen.ping
            started = time.monotonic()
            assert not await service.redis_watch._answers()
            assert time.monotonic() - started < PROBE_TIMEOUT_S + 0.5
            await frozen.aclose()
    finally:
        await service.stop(ctx)


async def test_the_executor_runs_the_watch(settings: Settings, aredis: aioredis.Redis) -> None:
    k = Keys()
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, FakeExchange(aredis, k))
    try:
        [task] = [t for t in service.tasks if t.get_name() == "redis_watch"]
        assert not task.done() and isinstance(service.redis_watch, RedisWatch)
    finally:
        await service.stop(ctx)
