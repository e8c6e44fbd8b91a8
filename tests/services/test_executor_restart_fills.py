"""An executor that starts after a fill was posted counts it once. Its predecessor writes an
order's record lazily, so a record can predate a fill whose event is on the fills stream and
whose contracts are in the position the new executor reads. Taking the record's count as all
that was posted, the new executor held those contracts a second time as "executed, fill not
posted" for a minute (room denied) and then warned ``fills_never_posted`` of a fill that was
never lost. The fill events already on the stream at start are credited as posted."""

from __future__ import annotations

import redis.asyncio as aioredis

from common.domain import Position
from common.keys import Keys
from common.messages import encode_event
from common.redis_codec import encode_position
from common.settings import Settings
from tests.services.test_executor import publish, seed, started, steps
from tests.services.test_executor_failclosed import ExecutingExchange, stand_ins


async def test_a_fill_posted_before_a_restart_is_not_held_twice(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k, exchange = Keys(), ExecutingExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    await publish(aredis, k, "KX", 4100, None)
    await steps(service, ctx)
    [order] = exchange.orders.values()
    await service.stop(ctx)  # its record of the order: nothing executed
    # 3 of the 5 execute; the fills process posts them (position and event in one step)
    exchange.execute(order.order_id or "", 300)
    await aredis.hset(k.pos("KX"), mapping=encode_position(Position("KX", 300, 1_230_000)))
    fill = {
        "ticker": "KX",
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "count": 300,
        "position_after": 300,
    }
    await aredis.xadd(k.stream("fills"), encode_event("fill", fill))
    service, ctx = await started(settings, aredis, exchange, ctx.clock)  # type: ignore[arg-type]
    try:
        await steps(service, ctx, 2)
        mine = service.working.get("KX", order.client_order_id)
        assert mine is not None and (mine.filled, mine.remaining) == (300, 200)
        assert stand_ins(service, "KX") == []  # the 3 are in the position, once
    finally:
        await service.stop(ctx)


async def test_a_fill_not_on_the_stream_stays_held(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """An execution whose fill is not posted yet is still held until it is."""
    k, exchange = Keys(), ExecutingExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    await publish(aredis, k, "KX", 4100, None)
    await steps(service, ctx)
    [order] = exchange.orders.values()
    await service.stop(ctx)
    exchange.execute(order.order_id or "", 300)  # the fills process has not posted it
    service, ctx = await started(settings, aredis, exchange, ctx.clock)  # type: ignore[arg-type]
    try:
        await steps(service, ctx, 2)
        assert stand_ins(service, "KX") == [(order.side, 4100, 300)]
    finally:
        await service.stop(ctx)
