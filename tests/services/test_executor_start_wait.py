"""At start the executor looks for the feeds' heartbeats more often than it refreshes later."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import redis.asyncio as aioredis

from common.clock import ManualClock
from common.domain import Side, make_client_order_id
from common.kalshi.wire.orders import OrderRequest
from common.keys import Keys
from common.log import get_logger
from common.runtime import Context
from common.settings import Settings
from services.executor.loop import RISK_REFRESH_MS, STARTING_REFRESH_MS
from services.executor.service import build, executor_name
from services.executor.state import START_FENCE_MS
from tests.services.test_executor import NOW, FakeExchange, seed


async def test_the_feeds_are_looked_for_every_50_ms_until_quoting_starts(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k = Keys()
    await seed(aredis, k, "KX")
    await aredis.delete(k.hb("marketdata"))  # marketdata has not beaten yet
    clock = ManualClock(NOW)
    ctx = Context(executor_name(settings), settings, aredis, k, clock, get_logger("executor"))
    service = await build(ctx, gateway=FakeExchange(aredis, k))  # type: ignore[arg-type]
    await service.start(ctx)
    clock.advance(START_FENCE_MS)
    checks = 0
    check = service.safety.check_feeds

    async def counted() -> None:
        nonlocal checks
        checks += 1
        await check()

    service.safety.check_feeds = counted  # type: ignore[method-assign]

    async def step_after(ms: int) -> None:
        clock.advance(ms)
        await service.step(ctx)
        await asyncio.gather(*service.loop.background())

    try:
        await step_after(0)
        assert (checks, service.safety.pulled.reason) == (1, "starting")
        await step_after(STARTING_REFRESH_MS)  # still waiting: looked again 50 ms later
        assert (checks, service.safety.pulled.reason) == (2, "starting")
        await aredis.set(k.hb("marketdata"), "{}")
        await step_after(STARTING_REFRESH_MS)
        assert (checks, service.safety.pulled.reason) == (3, "")  # quoting
        await step_after(STARTING_REFRESH_MS)  # from now on every RISK_REFRESH_MS
        assert checks == 3
        await step_after(RISK_REFRESH_MS - STARTING_REFRESH_MS)
        assert checks == 4
    finally:
        await service.stop(ctx)


async def test_cancel_on_start_takes_dora_s_leftover_orders_and_leaves_the_trader_s(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """DESIGN.md §5: dora never cancels an order it did not create, except the kill switches.
    ``DORA_EXECUTOR_CANCEL_ON_START`` is a start option, not a kill switch: it used to cancel
    the whole subaccount (the trader's own orders with dora's)."""
    k = Keys()
    await seed(aredis, k, "KX")
    exchange = FakeExchange(aredis, k)
    ours = make_client_order_id("left-by-a-crash", "KX", Side.BID, 1)
    await exchange.place(OrderRequest("KX", Side.BID, 4000, 100, ours, post_only=True))
    by_hand = await exchange.place(
        OrderRequest("KX", Side.ASK, 6000, 100, "my-own-order", post_only=True)
    )
    settings = replace(settings, executor_cancel_on_start=True)
    ctx = Context(executor_name(settings), settings, aredis, k, ManualClock(NOW), get_logger("x"))
    service = await build(ctx, gateway=exchange)  # type: ignore[arg-type]
    await service.start(ctx)
    try:
        assert list(exchange.orders) == [by_hand.order_id]
        assert exchange.cancel_alls == 0 and exchange.cancel_owns == 1
    finally:
        await service.stop(ctx)
