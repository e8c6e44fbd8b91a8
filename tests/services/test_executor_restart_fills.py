"""What an executor that starts counts as posted of its loaded orders' executions.

The fills process writes a position and its fill event in one transaction, so the fill events on
the stream before the executor reads from it are exactly what the position it starts from holds.
The order records a predecessor left say something else: written lazily, a record can predate a
fill already posted (held a second time, then warned ``fills_never_posted`` of a fill never lost),
and a record can hold an execution the exchange told of before its fill was posted (taken as in
the position, it was in neither the position nor the worst case until the fill came)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis

from common.domain import Order
from common.keys import Keys
from common.messages import encode_event
from common.redis_codec import decode_order, encode_order
from common.settings import Settings
from services.executor.fills_in_flight import IN_FLIGHT_MAX_MS
from tests.services.test_executor import NOW, publish, seed, started, steps
from tests.services.test_executor_failclosed import ExecutingExchange, fill_lands, stand_ins


async def older_fill(r: aioredis.Redis, k: Keys) -> None:
    """A fill of another market an hour before the test's orders: the stream reaches back past
    their creation, so it holds every fill of theirs posted."""
    event = encode_event("fill", {"ticker": "KY", "order_id": "other", "count": 100})
    await r.xadd(k.stream("fills"), event, id=f"{NOW - 3_600_000}-0")


async def restarted_after_an_execution(
    settings: Settings, aredis: aioredis.Redis, exchange: ExecutingExchange
) -> tuple[Order, Any]:
    """A bid quoted and resting at the exchange, the executor stopped (its record of the order:
    nothing executed), 3 of the order's 5 executed at the exchange: the order, and the stopped
    executor's context (its clock goes on in the next start)."""
    k = Keys()
    await older_fill(aredis, k)
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    await publish(aredis, k, "KX", 4100, None)
    await steps(service, ctx)
    [order] = exchange.orders.values()
    await service.stop(ctx)
    exchange.execute(order.order_id or "", 300)
    return order, ctx


async def test_a_fill_posted_before_a_restart_is_counted_once_and_never_warned_of(
    settings: Settings, aredis: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    k, exchange = Keys(), ExecutingExchange(aredis, Keys())
    order, ctx = await restarted_after_an_execution(settings, aredis, exchange)
    await fill_lands(aredis, k, order, 300, 300)
    service, ctx = await started(settings, aredis, exchange, ctx.clock)  # type: ignore[arg-type]
    try:
        await steps(service, ctx, 2)
        mine = service.working.get("KX", order.client_order_id)
        assert mine is not None and (mine.filled, mine.remaining) == (300, 200)
        assert stand_ins(service, "KX") == []  # the 3 are in the position, once
        await publish(aredis, k, "KX", None, None)  # the quote is pulled: the order is done
        await steps(service, ctx, 2)
        assert order.order_id not in exchange.orders
        ctx.clock.advance(IN_FLIGHT_MAX_MS + 1_000)  # type: ignore[attr-defined]
        with caplog.at_level(logging.WARNING, logger="dora.executor"):
            await steps(service, ctx, 2)
        assert "fills_never_posted" not in caplog.messages
    finally:
        await service.stop(ctx)


async def test_an_execution_whose_fill_is_not_posted_stays_held_after_a_restart(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The predecessor heard of 3 executed from the exchange and recorded it; the fills process
    has not posted them. The new executor holds them until their fill comes, then no more."""
    k, exchange = Keys(), ExecutingExchange(aredis, Keys())
    order, ctx = await restarted_after_an_execution(settings, aredis, exchange)
    record = decode_order(await aredis.hget(k.orders("KX"), order.client_order_id))
    told = replace(record, filled=300, remaining=200, updated_ms=ctx.clock.now_ms())
    await aredis.hset(k.orders("KX"), order.client_order_id, encode_order(told))
    service, ctx = await started(settings, aredis, exchange, ctx.clock)  # type: ignore[arg-type]
    try:
        await steps(service, ctx, 2)
        assert stand_ins(service, "KX") == [(order.side, 4100, 300)]
        await fill_lands(aredis, k, order, 300, 300)
        await steps(service, ctx, 2)
        assert stand_ins(service, "KX") == []
    finally:
        await service.stop(ctx)


async def test_a_fill_not_on_the_stream_stays_held(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """An execution the new executor learns of from the exchange, not posted yet: held."""
    exchange = ExecutingExchange(aredis, Keys())
    order, ctx = await restarted_after_an_execution(settings, aredis, exchange)
    service, ctx = await started(settings, aredis, exchange, ctx.clock)  # type: ignore[arg-type]
    try:
        await steps(service, ctx, 2)
        assert stand_ins(service, "KX") == [(order.side, 4100, 300)]
    finally:
        await service.stop(ctx)
