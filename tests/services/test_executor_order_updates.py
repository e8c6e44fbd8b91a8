"""The exchange's order updates (``user_order`` on the fills stream) reach the executor after its
own REST answers: an update sent before an amend can arrive after the amend's answer. Applied,
it would put the order back at its old, smaller size; the next pass writes that to the ledger,
and the room it frees goes to another market while the amended size still rests at the exchange
(a limit passed at the exchange by that much). An update from before the executor's last
answer is not news."""

from __future__ import annotations

import redis.asyncio as aioredis

from common.domain import OrderStatus
from common.keys import Keys
from common.ledger import read_total
from common.messages import encode_event
from common.settings import Settings
from tests.services.test_executor import FakeExchange, publish, seed, started, steps
from tests.services.test_executor_ledger import at_exchange


async def test_an_update_from_before_an_amend_does_not_shrink_the_order(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, None)
        await steps(service, ctx)
        [order] = exchange.orders.values()
        assert (order.price, order.remaining) == (4100, 500)
        await publish(aredis, k, "KX", 4300, None)  # amended in place: $0.43 x 5
        await steps(service, ctx)
        [amended] = exchange.orders.values()
        assert (amended.price, amended.remaining) == (4300, 500)
        # the exchange's update of the order as it was before the amend, e.g. after 3 of
        # the 5 were cancelled by a decrease, only now read off the fills stream
        stale = {
            "ticker": "KX",
            "order_id": order.order_id,
            "client_order_id": order.client_order_id,
            "status": OrderStatus.RESTING.value,
            "price": 4100,
            "filled": 0,
            "remaining": 200,
        }
        await aredis.xadd(k.stream("fills"), encode_event("user_order", stale))
        await steps(service, ctx, 2)
        mine = service.working.get("KX", order.client_order_id)
        assert mine is not None and (mine.price, mine.remaining) == (4300, 500)
        assert await read_total(aredis, k) >= at_exchange(exchange)
    finally:
        await service.stop(ctx)


async def test_an_update_at_the_orders_price_still_applies(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The exchange's own news of the order as it rests (a decrease it made, a cancel) is kept."""
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, None)
        await steps(service, ctx)
        [order] = exchange.orders.values()
        update = {
            "ticker": "KX",
            "order_id": order.order_id,
            "client_order_id": order.client_order_id,
            "status": OrderStatus.CANCELED.value,
            "price": 4100,
            "filled": 0,
            "remaining": 0,
        }
        exchange.orders.clear()
        await aredis.xadd(k.stream("fills"), encode_event("user_order", update))
        await steps(service, ctx, 1)
        gone = service.working.get("KX", order.client_order_id)
        assert gone is None or gone.status is OrderStatus.CANCELED
    finally:
        await service.stop(ctx)
