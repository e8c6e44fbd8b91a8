"""The exchange's order updates (``user_order`` on the fills stream) reach the executor after its
own REST answers: an update sent before an amend can arrive after the amend's answer. Applied,
it would put the order back at its old, smaller size; the next pass writes that to the ledger,
and the room it frees goes to another market while the amended size still rests at the exchange
(a limit passed at the exchange by that much). An update the exchange stamped before the change
the executor's record holds is not news; a later one always is, whatever its price (a record
restored with an amend in flight is the older one)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import redis.asyncio as aioredis

from common.domain import Order, OrderStatus
from common.keys import Keys
from common.ledger import read_total
from common.messages import encode_event
from common.settings import Settings
from tests.services.test_executor import FakeExchange, publish, seed, started, steps
from tests.services.test_executor_ledger import at_exchange


def update_of(order: Order, **changes: Any) -> dict[str, Any]:
    """The fills service's ``user_order`` event for ``order`` as the exchange sent it."""
    return {
        "ticker": order.ticker,
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "status": OrderStatus.RESTING.value,
        "price": order.price,
        "filled": order.filled,
        "remaining": order.remaining,
        "exchange_ms": order.exchange_ms,
        **changes,
    }


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
        # the exchange's update of the order as it was before the amend (stamped then), e.g.
        # after 3 of the 5 were cancelled by a decrease, only now read off the fills stream
        stale = update_of(order, remaining=200)
        await aredis.xadd(k.stream("fills"), encode_event("user_order", stale))
        await steps(service, ctx, 2)
        mine = service.working.get("KX", order.client_order_id)
        assert mine is not None and (mine.price, mine.remaining) == (4300, 500)
        assert await read_total(aredis, k) >= at_exchange(exchange)
    finally:
        await service.stop(ctx)


async def test_an_update_newer_than_the_record_applies_at_any_price(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The record is the older one (an amend the executor never heard answered: a restart while
    it was in flight): the exchange's newer update of the amended order is the truth."""
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, None)
        await steps(service, ctx)
        [order] = exchange.orders.values()
        amended = await exchange.amend(order, 4300, 300)  # behind the executor's back
        service.inbox.on_event("user_order", update_of(amended))
        mine = service.working.get("KX", order.client_order_id)
        assert mine is not None and (mine.price, mine.remaining) == (4300, 300)
        assert mine.exchange_ms == amended.exchange_ms
        await steps(service, ctx, 2)  # back to its targets, the ledger never below the exchange
        [now_there] = exchange.orders.values()
        mine = service.working.get("KX", order.client_order_id)
        assert mine is not None and (mine.price, mine.remaining) == (4100, 500)
        assert (now_there.price, now_there.remaining) == (4100, 500)
        assert await read_total(aredis, k) >= at_exchange(exchange)
    finally:
        await service.stop(ctx)


async def test_an_update_without_its_time_applies(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """An exchange that does not stamp its updates (or a record that holds no time) cannot tell
    old from new: the update is applied, as it was before the exchange's times were kept."""
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, None)
        await steps(service, ctx)
        [order] = exchange.orders.values()
        exchange.orders[order.order_id or ""] = replace(order, remaining=200)
        update = update_of(order, remaining=200, exchange_ms=0)
        await aredis.xadd(k.stream("fills"), encode_event("user_order", update))
        await steps(service, ctx, 2)
        mine = service.working.get("KX", order.client_order_id)
        assert mine is not None and mine.remaining == 200
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
        update = update_of(
            order,
            status=OrderStatus.CANCELED.value,
            remaining=0,
            exchange_ms=exchange.stamp(),
        )
        exchange.orders.clear()
        await aredis.xadd(k.stream("fills"), encode_event("user_order", update))
        await steps(service, ctx, 1)
        gone = service.working.get("KX", order.client_order_id)
        assert gone is None or gone.status is OrderStatus.CANCELED
    finally:
        await service.stop(ctx)
