"""A cancel-all (a halt, a quote pull, Redis away) answers nothing per order: an order that
executed in part just before it left the book that way, and its fills may not be posted yet.
Taken as cancelled whole, its executed contracts were in neither the position nor the resting
size until their fills posted: room the ledger gave to other markets while the exchange held the
contracts. Each order the cancel-all took is kept as if it all executed until the exchange's
update of it says how much did (or its fills post)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import redis.asyncio as aioredis

from common.domain import Order, OrderStatus, Position
from common.keys import Keys
from common.ledger import read_total
from common.messages import ControlCommand, encode_event
from common.redis_codec import encode_position
from common.risk import worst_case_exposure
from common.runtime import Context
from common.settings import Settings
from services.executor.service import ExecutorService
from tests.services.test_executor import FakeExchange, publish, seed, started, steps
from tests.services.test_executor_order_updates import update_of


async def settled_ledger(service: ExecutorService, ctx: Context) -> int:
    """The ledger's total once what the executor read is in it (a full refresh writes it)."""
    await steps(service, ctx, 2)
    await service.safety.refresh_risk()
    return await read_total(ctx.redis, ctx.keys)


def resting(order: Order, contracts: int) -> int:
    """The worst case of ``contracts`` of ``order`` (held or resting: the same at its price)."""
    return worst_case_exposure([], [replace(order, count=contracts, remaining=contracts)])


async def halted(service: ExecutorService) -> None:
    """A halt: everything cancelled at once, nothing placed after."""
    await service.safety.on_control(ControlCommand("halt", "test"))
    await asyncio.wait_for(service.safety.cancel_all_task, 5)  # type: ignore[arg-type]


async def test_an_execution_just_before_a_cancel_all_stays_counted(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    settings = replace(settings, executor_ahead_ticks=0)  # the ledger exactly what rests
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, None)
        await steps(service, ctx)
        [order] = exchange.orders.values()
        assert await read_total(aredis, k) == resting(order, 500)
        # 3 of the 5 execute at the exchange; the fills process has not posted them yet
        exchange.orders[order.order_id or ""] = replace(order, filled=300, remaining=200)
        await halted(service)
        assert await settled_ledger(service, ctx) >= resting(order, 300)
        assert exchange.orders == {}
        # the exchange's update of the cancel says how many executed: those stay counted
        update = update_of(
            order,
            status=OrderStatus.CANCELED.value,
            filled=300,
            remaining=0,
            exchange_ms=exchange.stamp(),
        )
        await aredis.xadd(k.stream("fills"), encode_event("user_order", update))
        assert await settled_ledger(service, ctx) >= resting(order, 300)
        # their fill posts: the position holds them now, nothing is held for the order
        fill = {
            "ticker": "KX",
            "order_id": order.order_id,
            "client_order_id": order.client_order_id,
            "count": 300,
            "position_after": 300,
        }
        held = Position("KX", 300, cost=resting(order, 300))  # 3 bought at $0.41
        await aredis.hset(k.pos("KX"), mapping=encode_position(held))
        await aredis.xadd(k.stream("fills"), encode_event("fill", fill))
        assert await settled_ledger(service, ctx) >= resting(order, 300)
        assert service.working.in_flight.done == {}
    finally:
        await service.stop(ctx)


async def test_an_order_the_exchange_says_never_executed_frees_its_room_at_once(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The doubt lasts until the exchange says: a cancel with nothing executed holds no room."""
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, None)
        await steps(service, ctx)
        [order] = exchange.orders.values()
        await halted(service)
        assert await settled_ledger(service, ctx) == resting(order, 500)  # not known yet
        assert exchange.orders == {}
        update = update_of(
            order,
            status=OrderStatus.CANCELED.value,
            filled=0,
            remaining=0,
            exchange_ms=exchange.stamp(),
        )
        await aredis.xadd(k.stream("fills"), encode_event("user_order", update))
        assert await settled_ledger(service, ctx) == 0
        assert service.working.in_flight.done == {}
    finally:
        await service.stop(ctx)
